"""`dcops remediate replay`: the live diagnosis and remediation policy run over a fault
trace on simulated nodes (offline, no server), scored against the trace's truth and in
goodput (ETTR) beside the manual baseline and a perfect responder.

    dcops remediate replay                         # 2,048 nodes x 8 GPUs, 54 days, Llama 3 mix
    dcops remediate replay --nodes 256 --days 7 --mode reboot=auto --json
    dcops remediate replay --trace faults.jsonl    # a trace written with --write-trace

Bad input is one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from dcops.cli.common import err, friendly, out
from dcops.core.errors import Invalid

if TYPE_CHECKING:
    from dcops.remediation.guardrails import GuardrailSettings
    from dcops.remediation.model import ActionKind, Mode
    from dcops.remediation.replay import ReplayResult, ReplaySettings
    from dcops.simulation.faulttrace import FaultTrace
    from dcops.simulation.goodput import GoodputParams, GoodputReport, ManualResponder

DAY_S = 86_400.0
DEFAULT_NODES, DEFAULT_GPUS, DEFAULT_DAYS = 2048, 8, 54.0
SYNTHETIC = ("--failures", "--nodes", "--days", "--seed", "--rate-multiplier", "--no-noise",
             "--write-trace")
"""Options that shape a synthesized trace, and so make no sense with --trace."""
RESPONDERS = ("dcops", "manual", "bound")


@dataclass(frozen=True, slots=True)
class Synthesis:
    """How to synthesize the trace (when no --trace is given)."""

    failures: Path | None
    nodes: int
    gpus_per_node: int
    days: float
    seed: int
    rate_multiplier: float
    noise: bool


@friendly
def replay(
        trace: Path | None = typer.Option(None, "--trace", help="a fault trace (JSON Lines, "
                                          "from --write-trace) instead of a synthesized one"),
        failures: Path | None = typer.Option(None, "--failures", help="component,category,"
                                             "count table [default: the Llama 3 table]"),
        nodes: int | None = typer.Option(None, "--nodes", help="nodes [default: 2048]"),
        gpus_per_node: int | None = typer.Option(None, "--gpus-per-node", help="GPUs a node "
                                                 "(with --trace, for a file without header) "
                                                 "[default: 8]"),
        days: float | None = typer.Option(None, "--days", help="days [default: 54]"),
        seed: int | None = typer.Option(None, "--seed", help="seed of the draw [default: 0]"),
        rate_multiplier: float | None = typer.Option(None, "--rate-multiplier",
                                                     help="times the table's rates "
                                                     "[default: 1.0]"),
        no_noise: bool = typer.Option(False, "--no-noise", help="no benign signals"),
        write_trace: Path | None = typer.Option(None, "--write-trace",
                                                help="save the synthesized trace here"),
        mode: list[str] = typer.Option([], "--mode", help="ACTION=MODE, e.g. reboot=auto "
                                       "(repeatable)"),
        max_out_nodes: int | None = typer.Option(None, "--max-out-nodes",
                                                 help="drain budget in nodes [default: 10]"),
        max_out_fraction: float | None = typer.Option(None, "--max-out-fraction",
                                                      help="drain budget as a share of the "
                                                      "fleet [default: 0.02]"),
        storm_nodes: int | None = typer.Option(None, "--storm-nodes", help="nodes flagged in "
                                               "the storm window that open the breaker "
                                               "[default: 20]"),
        approve_after: float = typer.Option(900.0, "--approve-after",
                                            help="seconds until an operator approves"),
        telemetry_delay: float = typer.Option(15.0, "--telemetry-delay",
                                              help="seconds until a signal is seen"),
        checkpoint_interval: float = typer.Option(1800.0, "--checkpoint-interval",
                                                  help="seconds between checkpoints"),
        checkpoint_write: float = typer.Option(30.0, "--checkpoint-write",
                                               help="seconds a blocking save takes"),
        restart: float = typer.Option(300.0, "--restart", help="seconds a restart takes"),
        spares: float = typer.Option(0.02, "--spares", help="hot spare nodes, a fraction"),
        manual_notice: float = typer.Option(1800.0, "--manual-notice",
                                            help="seconds until operators notice (baseline)"),
        manual_act: float = typer.Option(900.0, "--manual-act",
                                         help="seconds operators take to isolate (baseline)"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object, no tables")) -> None:
    """Replay the remediation policy over a fault trace and report drains, misses and ETTR
    with dcops, with manual operations and with a perfect responder."""
    from dcops.remediation.replay import DcopsResponder, ReplaySettings
    from dcops.remediation.replay import replay as run_replay
    from dcops.simulation.goodput import FixedResponder, ManualResponder, goodput

    given = {"--failures": failures, "--nodes": nodes, "--days": days, "--seed": seed,
             "--rate-multiplier": rate_multiplier, "--no-noise": no_noise or None,
             "--write-trace": write_trace}
    _seconds({"--approve-after": approve_after, "--telemetry-delay": telemetry_delay,
              "--manual-notice": manual_notice, "--manual-act": manual_act})
    settings = ReplaySettings(modes=_modes(mode), guardrails=_guardrails(
        max_out_nodes, max_out_fraction, storm_nodes), telemetry_delay_s=telemetry_delay,
        approve_s=approve_after)
    synthesis = None
    if trace is not None:
        extra = [name for name in SYNTHETIC if given[name] is not None]
        if extra:
            raise Invalid(f"{extra[0]} with --trace", hint="the trace file says its cluster "
                          "and faults; leave out the options that synthesize one")
        loaded = _read(trace, gpus_per_node or DEFAULT_GPUS)
    else:
        synthesis = Synthesis(failures, DEFAULT_NODES if nodes is None else nodes,
                              gpus_per_node or DEFAULT_GPUS,
                              DEFAULT_DAYS if days is None else days, seed or 0,
                              1.0 if rate_multiplier is None else rate_multiplier,
                              not no_noise)
        loaded = _synthesize(synthesis)
        if write_trace is not None:
            from dcops.simulation.signalio import write_trace as write

            write(write_trace, loaded)
    params = _params(loaded, spares, checkpoint_interval, checkpoint_write, restart)
    manual = ManualResponder(manual_notice, manual_act)
    dcops = DcopsResponder(settings, fallback=manual)
    status = err.status(f"replaying {len(loaded.signals):,} signals on {loaded.nodes:,} "
                        f"nodes...") if not as_json else None
    if status is not None:
        status.start()
    try:
        reports = {"dcops": goodput(loaded, dcops, params),
                   "manual": goodput(loaded, manual, params),
                   "bound": goodput(loaded, FixedResponder(0.0, 0.0), params)}
    finally:
        if status is not None:
            status.stop()
    # goodput asks the responder only about items: an empty trace is replayed here
    result = dcops.result if dcops.result is not None else run_replay(loaded, settings)
    found = _summary(trace, synthesis, loaded, result, reports, settings, params, manual)
    if as_json:
        out.print(json.dumps(found), markup=False, highlight=False, soft_wrap=True)
        return
    _show(found, trace is None, write_trace)


# -- the inputs ---------------------------------------------------------------------------


def _modes(given: list[str]) -> dict[ActionKind, Mode]:
    from dcops.remediation.model import ActionKind, Mode
    from dcops.remediation.policy import DEFAULT_MODES

    modes = dict(DEFAULT_MODES)
    actions = ", ".join(kind.value for kind in ActionKind)
    choices = ", ".join(m.value for m in Mode)
    for raw in given:
        action, _, mode = raw.partition("=")
        action, mode = action.strip().lower(), mode.strip().lower()
        if action not in {kind.value for kind in ActionKind}:
            raise Invalid(f"--mode {raw!r}: no action {action!r}",
                          hint=f"ACTION=MODE, ACTION one of {actions}")
        if mode not in {m.value for m in Mode}:
            raise Invalid(f"--mode {raw!r}: no mode {mode!r}",
                          hint=f"ACTION=MODE, MODE one of {choices}")
        modes[ActionKind(action)] = Mode(mode)
    return modes


def _guardrails(max_out_nodes: int | None, max_out_fraction: float | None,
                storm_nodes: int | None) -> GuardrailSettings:
    from dcops.remediation.guardrails import GuardrailSettings

    given = (("max_out_nodes", max_out_nodes), ("max_out_fraction", max_out_fraction),
             ("storm_nodes", storm_nodes))
    chosen: dict[str, Any] = {name: value for name, value in given if value is not None}
    try:
        return replace(GuardrailSettings(), **chosen)
    except Invalid as error:  # name the option, not the setting
        name = (error.where or "").rpartition(".")[2]
        raise Invalid(f"--{name.replace('_', '-')}: {error.message}") from None


def _seconds(given: dict[str, float]) -> None:
    for option, value in given.items():
        if not math.isfinite(value) or value < 0:
            raise Invalid(f"{option} {value}", hint="seconds, 0 or more")


def _read(path: Path, gpus_per_node: int) -> FaultTrace:
    from dcops.simulation.signalio import read_trace

    if gpus_per_node < 1:
        raise Invalid(f"--gpus-per-node {gpus_per_node}", hint="1 or more")
    return read_trace(path, gpus_per_node=gpus_per_node)


def _synthesize(how: Synthesis) -> FaultTrace:
    from dcops.health.lemon import FLEET_INTERRUPTIONS
    from dcops.simulation.failures import FailureModel
    from dcops.simulation.faulttrace import NO_NOISE, Noise, synthesize

    for option, value in (("--nodes", how.nodes), ("--gpus-per-node", how.gpus_per_node)):
        if value < 1:
            raise Invalid(f"{option} {value}", hint="1 or more")
    if not math.isfinite(how.days) or how.days <= 0:
        raise Invalid(f"--days {how.days}", hint="more than 0")
    if not math.isfinite(how.rate_multiplier) or how.rate_multiplier < 0:
        raise Invalid(f"--rate-multiplier {how.rate_multiplier}", hint="0 or more")
    model = FailureModel.from_csv(how.failures or FLEET_INTERRUPTIONS,
                                  multiplier=how.rate_multiplier)
    return synthesize(model, how.nodes, how.gpus_per_node, how.days * DAY_S, how.seed,
                      noise=Noise() if how.noise else NO_NOISE)


def _params(trace: FaultTrace, spares: float, interval: float, write: float,
            restart: float) -> GoodputParams:
    from dcops.simulation.goodput import GoodputParams

    for option, value in (("--checkpoint-interval", interval), ("--checkpoint-write", write),
                          ("--restart", restart)):
        if not math.isfinite(value) or value < 0 or (option == "--checkpoint-interval"
                                                     and value == 0):
            raise Invalid(f"{option} {value}", hint="seconds, 0 or more (the interval "
                          "more than 0)")
    if not 0 <= spares <= 1:
        raise Invalid(f"--spares {spares}", hint="a fraction of the nodes, 0 to 1")
    return GoodputParams(gpus=trace.nodes * trace.gpus_per_node,
                         gpus_per_node=trace.gpus_per_node, horizon_s=trace.horizon_s,
                         spare_fraction=spares, checkpoint_interval_s=interval,
                         checkpoint_write_s=write, restart_s=restart).check()


# -- the figures --------------------------------------------------------------------------


def _summary(path: Path | None, synthesis: Synthesis | None, trace: FaultTrace,
             result: ReplayResult, reports: dict[str, GoodputReport],
             settings: ReplaySettings, params: GoodputParams,
             manual: ManualResponder) -> dict[str, Any]:
    from dcops.simulation.signalio import UNLABELLED

    by_category = Counter(item.fault.category for item in trace.faults
                          if item.fault is not None and item.hardware)
    gpus = params.gpus
    goodputs = {}
    for name, report in reports.items():
        found = report.to_dict()
        found["lost_gpu_h"] = sum(report.lost_h.values()) * gpus
        goodputs[name] = found
    return {
        "trace": {"source": str(path) if path is not None else "synthesized",
                  "nodes": trace.nodes, "gpus_per_node": trace.gpus_per_node,
                  "gpus": gpus, "horizon_s": trace.horizon_s,
                  "days": trace.horizon_s / DAY_S, "items": len(trace.items),
                  "signals": len(trace.signals), "faults": len(trace.faults),
                  "hardware_faults": sum(by_category.values()),
                  "noise": len(trace.items) - len(trace.faults),
                  "truth": not trace.items or any(i.cause != UNLABELLED for i in trace.items),
                  "hardware_by_category": dict(sorted(by_category.items()))},
        "replay": result.to_dict(),
        **{f"ettr_{name}": report.ettr for name, report in reports.items()},
        "goodput": goodputs,
        "parameters": {
            "replay": settings.to_dict(), "goodput": {**asdict(params), "nodes": params.nodes,
                                                      "spares": params.spares},
            "manual": {"notice_s": manual.notice_s, "act_s": manual.act_s},
            "bound": {"detect_s": 0.0, "act_s": 0.0},
            "synthesis": None if synthesis is None else {
                **asdict(synthesis), "failures": str(synthesis.failures or "llama3 (packaged)")},
        },
    }


def _show(found: dict[str, Any], synthesized: bool, written: Path | None) -> None:
    from rich.table import Table

    from dcops.simulation.goodput import CAUSES

    trace, result = found["trace"], found["replay"]
    out.print(f"trace: {trace['source']}: {trace['nodes']:,} nodes x {trace['gpus_per_node']} "
              f"GPUs, {trace['days']:.1f} days; {trace['items']:,} items ({trace['signals']:,} "
              f"signals): {trace['faults']} faults, {trace['hardware_faults']} hardware, "
              f"{trace['noise']} noise", highlight=False, markup=False, soft_wrap=True)
    if trace["hardware_by_category"]:
        out.print("  hardware faults by category: " + ", ".join(
            f"{name} {count}" for name, count in trace["hardware_by_category"].items()),
            highlight=False, markup=False, soft_wrap=True)
    if written is not None and synthesized:
        out.print(f"  wrote {written}", highlight=False, markup=False, soft_wrap=True)
    if not trace["truth"]:
        out.print("  no truth in the file: every item counts as benign, every drain as false",
                  highlight=False, style="yellow")
    view = Table(title="what dcops did")
    for column in ("true drains", "false drains", "missed", "most out (budget)", "requeues",
                   "resets", "reboots", "resumes", "pages", "plans", "replay s"):
        view.add_column(column, justify="right")
    view.add_row(*(str(result[k]) for k in ("true_drains", "false_drains", "missed")),
                 f"{result['max_out']} ({result['budget']})",
                 *(str(result[k]) for k in ("requeues", "resets", "reboots", "resumes",
                                            "pages", "plans")),
                 f"{result['wall_s']:.1f}")
    out.print(view)
    ettr = Table(title=f"goodput of one job on {trace['gpus']:,} GPUs (hours lost by cause)")
    for column in ("responder", "ETTR", *CAUSES, "lost GPU-h", "stops", "false drains"):
        ettr.add_column(column, justify="left" if column == "responder" else "right")
    for name in RESPONDERS:
        report = found["goodput"][name]
        ettr.add_row(name, f"{report['ettr']:.4f}",
                     *(f"{report['lost_h'][cause]:.1f}" for cause in CAUSES),
                     f"{report['lost_gpu_h']:,.0f}", str(report["interruptions"]),
                     str(report["false_drains"]))
    out.print(ettr)
    out.print("parameters: " + json.dumps(found["parameters"], separators=(", ", ": ")),
              highlight=False, markup=False, soft_wrap=True, style="dim")
