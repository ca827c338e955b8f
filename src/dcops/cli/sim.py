"""`dcops sim run` and `dcops sim sweep`: replay a job trace under scheduling policies,
offline (no server), and report JCT, queueing, utilization, goodput and fairness.

Bad input (a missing file, an unknown format or policy, a bad date or cluster size) is one
line on stderr and exit code 2."""

from __future__ import annotations

import functools
import itertools
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer
from rich.markup import escape

from dcops.cli.common import err, out
from dcops.core.errors import DcopsError, Invalid

if TYPE_CHECKING:
    from dcops.simulation.report import Report
    from dcops.simulation.sweep import Scenario, TraceSource
    from dcops.simulation.traces import Format, TimeBound, Trace

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(help="Replay job traces under scheduling policies (offline).",
                  no_args_is_help=True)

PHILLY_FILE = "philly_jobs_pollux.csv.gz"
PHILLY_VCS_FILE = "philly_vc_nodes_helios.csv"
PHILLY_WINDOW = ("2017-10-01", "2017-11-30")
"""The Helios Philly setup: jobs submitted in these days, in the VCs of PHILLY_VCS_FILE."""
LLAMA3_FILE = "llama3_interruptions.csv"
PROBLEMS_SHOWN = 5
TRANSPOSE_UP_TO = 5

TraceOpt = typer.Option("philly", "--trace", help="'philly' (the shared Philly job list) "
                        "or a trace file (CSV or .csv.gz)")
FormatOpt = typer.Option(None, "--format", help="philly, helios, pai or openb "
                         "(default: told by the header)")
NodesOpt = typer.Option(80, "--nodes", help="nodes in the simulated cluster")
GpusOpt = typer.Option(8, "--gpus-per-node", help="GPUs per node")
StartOpt = typer.Option(None, "--start", help="first submit day or time kept (YYYY-MM-DD, "
                        "ISO time, or seconds; philly: 2017-10-01)")
EndOpt = typer.Option(None, "--end", help="last submit day kept, inclusive (philly: "
                      "2017-11-30)")
FaultsOpt = typer.Option("none", "--faults", help="'llama3' (Llama 3 interruption mix), "
                         "a component,category,count table, or 'none'")
MultiplierOpt = typer.Option(1.0, "--fault-multiplier", help="times the table's fault rates")
OutOpt = typer.Option(None, "--out", help="write report.json and report.html here")


def bad_input(func: Callable[P, R]) -> Callable[P, R]:
    """Show a DcopsError (or an unreadable/unwritable path) as one line on stderr and exit
    2, the code of a usage error, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except DcopsError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            err.print(f"[red]error:[/red] {escape(where + str(exc.strerror or exc))}",
                      highlight=False, soft_wrap=True)
        sys.exit(2)

    return wrapper


@app.command("run")
@bad_input
def run(trace: str = TraceOpt, format: str | None = FormatOpt,
        policy: str = typer.Option("fifo", "--policy", help="policy name, or several "
                                   "separated by commas"),
        nodes: int = NodesOpt, gpus_per_node: int = GpusOpt,
        start: str | None = StartOpt, end: str | None = EndOpt,
        faults: str = FaultsOpt, fault_multiplier: float = MultiplierOpt,
        seed: int = typer.Option(0, "--seed", help="seed of the fault draw"),
        out_dir: Path | None = OutOpt,
        jobs: int = typer.Option(1, "--jobs", help="replays run in parallel processes"),
        placement: str = typer.Option("consolidate", "--placement",
                                      help="consolidate, topology or packer")) -> None:
    """Replay a trace under one or more policies and print the summary."""
    from dcops.scheduling.placers import placer
    from dcops.scheduling.policies import names
    from dcops.simulation.sweep import Scenario

    policies = names(policy)
    fault_path = _faults(faults)
    placer(placement)  # a bad name is an error before any work
    scenarios = [Scenario(p, nodes, gpus_per_node, seed, fault_path, fault_multiplier,
                          placement=placement) for p in policies]
    _replay(trace, format, start, end, gpus_per_node, scenarios, jobs, out_dir)


@app.command("sweep")
@bad_input
def sweep(trace: str = TraceOpt, format: str | None = FormatOpt,
          policy: str = typer.Option("fifo", "--policy", help="policy names, by commas"),
          nodes: str = typer.Option("80", "--nodes", help="node counts, by commas"),
          gpus_per_node: int = GpusOpt, start: str | None = StartOpt,
          end: str | None = EndOpt, faults: str = FaultsOpt,
          fault_multiplier: float = MultiplierOpt,
          seeds: str = typer.Option("0", "--seeds", help="fault seeds, by commas (they "
                                    "matter only with --faults)"),
          out_dir: Path | None = OutOpt,
          jobs: int | None = typer.Option(None, "--jobs", help="parallel processes "
                                          "(default: one per CPU)")) -> None:
    """Replay every combination of policies, node counts and seeds, in parallel."""
    from dcops.scheduling.policies import names
    from dcops.simulation.sweep import Scenario

    policies = names(policy)
    sizes = _ints(nodes, "--nodes")
    seed_list = _ints(seeds, "--seeds")
    fault_path = _faults(faults)
    if fault_path is None and len(seed_list) > 1:
        err.print("note: without --faults every seed replays the same; using the first",
                  highlight=False)
        seed_list = seed_list[:1]
    scenarios = [Scenario(p, n, gpus_per_node, s, fault_path, fault_multiplier,
                          label=f"{p} n={n}" + (f" seed={s}" if fault_path else ""))
                 for p, n, s in itertools.product(policies, sizes, seed_list)]
    _replay(trace, format, start, end, gpus_per_node, scenarios,
            jobs if jobs is not None else os.cpu_count() or 1, out_dir)


# -- the work -----------------------------------------------------------------------------


def _replay(trace: str, format: str | None, start: str | None, end: str | None,
            gpus_per_node: int, scenarios: list[Scenario], workers: int,
            out_dir: Path | None) -> None:
    from dcops.scheduling.policies import policy as make_policy
    from dcops.simulation.report import write_report

    for scenario in scenarios:
        scenario.check()
    for name in dict.fromkeys(s.policy for s in scenarios):
        make_policy(name)  # a policy that cannot be made fails here, with its hint
    if workers < 1:
        raise Invalid(f"--jobs {workers}", hint="run 1 or more processes")
    source = _source(trace, format, start, end, gpus_per_node)
    loaded = source.read()
    _describe(loaded)
    if not loaded.jobs:
        raise Invalid(f"no jobs to replay in {loaded.source}",
                      hint="widen --start/--end or check the file")
    if workers == 1 or len(scenarios) == 1:
        reports = _in_process(loaded, scenarios)
    else:
        reports = _in_pool(source, scenarios, workers)
    _table(reports)
    if out_dir is not None:
        json_path, html_path = write_report(out_dir, reports,
                                            title=f"dcops simulation: {loaded.source}")
        out.print(f"wrote {json_path} and {html_path}", highlight=False, markup=False,
                  soft_wrap=True)


def _in_process(trace: Trace, scenarios: Sequence[Scenario]) -> list[Report]:
    from rich.progress import Progress, TaskID

    from dcops.simulation.sweep import run_scenario

    reports: list[Report] = []
    with Progress(console=out) as bar:
        for scenario in scenarios:
            task = bar.add_task(scenario.label or scenario.policy, total=1.0)

            def tick(fraction: float, task: TaskID = task) -> None:
                bar.update(task, completed=fraction)

            reports.append(run_scenario(scenario, trace.jobs, trace.source, tick))
            bar.update(task, completed=1.0)
    return reports


def _in_pool(source: TraceSource, scenarios: Sequence[Scenario],
             workers: int) -> list[Report]:
    from rich.progress import Progress

    from dcops.simulation.sweep import sweep as run_sweep

    done: dict[int, Report] = {}
    with Progress(console=out) as bar:
        task = bar.add_task(f"{len(scenarios)} replays on {min(workers, len(scenarios))} "
                            "processes", total=len(scenarios))
        for index, report in run_sweep(source, scenarios, workers=workers):
            done[index] = report
            bar.advance(task)
    return [done[i] for i in range(len(scenarios))]


# -- input --------------------------------------------------------------------------------


def _source(trace: str, format: str | None, start: str | None, end: str | None,
            gpus_per_node: int) -> TraceSource:
    from dcops.simulation.sweep import TraceSource
    from dcops.simulation.traces import FORMATS, read_vc_nodes

    if format is not None and format not in FORMATS:
        raise Invalid(f"unknown trace format {format!r}", hint=f"use one of {', '.join(FORMATS)}")
    fmt: Format | None = format  # narrowed by the check above
    tenants: frozenset[str] | None = None
    if trace == "philly":
        folder = traces_dir()
        path = folder / PHILLY_FILE
        if not path.is_file():
            raise Invalid(f"no Philly trace at {path}",
                          hint="set DCOPS_TRACES_DIR to the folder holding " + PHILLY_FILE)
        fmt = "philly"
        start = start or PHILLY_WINDOW[0]
        end = end or PHILLY_WINDOW[1]
        vcs = folder / PHILLY_VCS_FILE
        if vcs.is_file():
            tenants = frozenset(read_vc_nodes(vcs))
    else:
        path = Path(trace)
        if not path.is_file():
            raise Invalid(f"no trace file {trace}", hint="give 'philly' or a path to a CSV")
    return TraceSource(path, fmt, _bound(start, "--start"), _bound(end, "--end"), tenants,
                       gpus_per_node)


def traces_dir() -> Path:
    """The shared traces folder: $DCOPS_TRACES_DIR, else ../shared/data/traces beside the
    working directory or the repository."""
    env = os.environ.get("DCOPS_TRACES_DIR")
    if env:
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared" / "data" / "traces"
        if candidate.is_dir():
            return candidate
    raise Invalid("cannot find the shared traces folder (../shared/data/traces)",
                  hint="set DCOPS_TRACES_DIR, or pass --trace PATH")


def _faults(text: str) -> Path | None:
    key = text.strip().lower()
    if key in ("", "none"):
        return None
    if key == "llama3":
        env = os.environ.get("DCOPS_FAILURES_DIR")
        folder = Path(env) if env else _failures_dir()
        path = folder / LLAMA3_FILE
        if not path.is_file():
            raise Invalid(f"no Llama 3 interruption table at {path}",
                          hint="set DCOPS_FAILURES_DIR to the folder holding " + LLAMA3_FILE)
        return path
    path = Path(text)
    if not path.is_file():
        raise Invalid(f"no fault table {text}", hint="give 'llama3', 'none' or a CSV path")
    return path


def _failures_dir() -> Path:
    try:
        return traces_dir().parent / "failures"
    except Invalid:
        raise Invalid("cannot find the shared failures folder (../shared/data/failures)",
                      hint="set DCOPS_FAILURES_DIR, or pass --faults PATH") from None


def _bound(text: str | None, option: str) -> TimeBound:
    """A window bound: a day, an ISO time, or seconds on the trace's clock."""
    if text is None:
        return None
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{option} {text!r} is not a date",
                      hint="use YYYY-MM-DD, an ISO time or seconds") from None


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise Invalid(f"{option} {text!r}", hint="give whole numbers separated by commas"
                      ) from None
    if not values:
        raise Invalid(f"{option} is empty", hint="give whole numbers separated by commas")
    return list(dict.fromkeys(values))


# -- output -------------------------------------------------------------------------------


def _describe(trace: Trace) -> None:
    skipped = ", ".join(f"{n:,} {why}" for why, n in sorted(trace.skipped.items()))
    out.print(f"{trace.source}: {len(trace.jobs):,} jobs ({trace.format}"
              + (f"; {trace.duplicates:,} duplicate rows kept" if trace.duplicates else "")
              + (f"; skipped {skipped}" if skipped else "") + ")", highlight=False,
              markup=False, soft_wrap=True)
    if trace.problems:
        err.print(f"{len(trace.problems):,} rows could not be read:", highlight=False)
        for problem in trace.problems[:PROBLEMS_SHOWN]:
            err.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
        if len(trace.problems) > PROBLEMS_SHOWN:
            err.print(f"  ... and {len(trace.problems) - PROBLEMS_SHOWN:,} more",
                      highlight=False)


def _table(reports: Sequence[Report]) -> None:
    """The summary: a column per replay when there are few (it fits a terminal), else a
    row per replay."""
    from rich.table import Table

    from dcops.simulation.charts import COMPACT, SUMMARY

    view = Table(title="simulation summary")
    if len(reports) <= TRANSPOSE_UP_TO:
        view.add_column("")
        for report in reports:
            view.add_column(report.label, justify="right")
        for _, heading, show in SUMMARY[1:]:
            view.add_row(heading, *(show(report) for report in reports))
    else:
        columns = [column for column in SUMMARY if column[0] in COMPACT]
        for key, heading, _ in columns:
            view.add_column(heading, justify="left" if key == "label" else "right")
        for report in reports:
            view.add_row(*(show(report) for _, _, show in columns))
    out.print(view)
    for report in reports:
        if report.left_out:
            err.print(f"{report.label}: {report.left_out:,} jobs left out, larger than the "
                      f"cluster of {report.gpus} GPUs", highlight=False, markup=False)
        if report.errors:
            err.print(f"{report.label}: {report.errors} policy errors (jobs held)", markup=False,
                      highlight=False)
