"""`dcops remediate replay` on a small synthesized cluster, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcops.cli.main import app
from dcops.health.lemon import FLEET_INTERRUPTIONS
from dcops.remediation.replay import DRAINS, ReplaySettings, _Replay
from dcops.simulation.signalio import read_trace

runner = CliRunner()
WIDE = {"COLUMNS": "200"}
TABLE = FLEET_INTERRUPTIONS
SMALL = ["--nodes", "64", "--days", "7", "--rate-multiplier", "20", "--max-out-fraction",
         "0.2"]
"""64 nodes: the default budget (2% of the fleet) would be one node."""
POLICY = ["--mode", "reboot=auto", "--approve-after", "600", "--spares", "0.05",
          "--checkpoint-interval", "900"]


def run(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["remediate", "replay", *args, "--json"], env=WIDE)
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    path = tmp_path_factory.mktemp("replay") / "trace.jsonl"
    return run(*SMALL, *POLICY, "--write-trace", str(path)), path


def test_the_figures_add_up(written: tuple[dict[str, Any], Path]) -> None:
    found, path = written
    trace, result = found["trace"], found["replay"]
    assert (trace["nodes"], trace["gpus_per_node"], trace["days"]) == (64, 8, 7.0)
    assert trace["hardware_faults"] == result["hardware_faults"] > 0
    assert sum(trace["hardware_by_category"].values()) == trace["hardware_faults"]
    again = _Replay(read_trace(path), _settings(found))
    again.run()
    drains = sum(1 for entry in again.actuator.log if entry[1] in DRAINS)
    assert result["true_drains"] + result["false_drains"] == drains > 0
    assert result["missed"] <= result["hardware_faults"]
    assert 0 < found["ettr_dcops"] <= 1 and 0 < found["ettr_manual"] <= 1
    assert found["ettr_manual"] <= found["ettr_dcops"] <= found["ettr_bound"] <= 1
    for name in ("dcops", "manual", "bound"):
        report = found["goodput"][name]
        assert report["ettr"] == found[f"ettr_{name}"]
        assert report["lost_gpu_h"] == pytest.approx(sum(report["lost_h"].values()) * 512)


def test_the_parameters_are_echoed(written: tuple[dict[str, Any], Path]) -> None:
    params = written[0]["parameters"]
    assert params["replay"]["modes"]["reboot"] == "auto"
    assert params["replay"]["modes"]["drain"] == "auto"
    assert params["replay"]["approve_s"] == 600.0
    assert params["replay"]["telemetry_delay_s"] == 15.0
    assert params["replay"]["guardrails"]["max_out_fraction"] == 0.2
    assert params["goodput"]["spare_fraction"] == 0.05
    assert params["goodput"]["checkpoint_interval_s"] == 900.0
    assert (params["goodput"]["gpus"], params["goodput"]["spares"]) == (512, 3)
    assert params["manual"] == {"notice_s": 1800.0, "act_s": 900.0}
    assert params["synthesis"]["seed"] == 0 and params["synthesis"]["rate_multiplier"] == 20


def test_a_written_trace_replays_to_the_same_figures(
        written: tuple[dict[str, Any], Path]) -> None:
    found, path = written
    again = run("--trace", str(path), *POLICY, "--max-out-fraction", "0.2")
    assert again["trace"]["source"] == str(path)
    assert again["parameters"]["synthesis"] is None
    for name in ("dcops", "manual", "bound"):
        assert again[f"ettr_{name}"] == found[f"ettr_{name}"]
        assert again["goodput"][name]["lost_h"] == found["goodput"][name]["lost_h"]
    drop = {"wall_s"}
    assert {k: v for k, v in again["replay"].items() if k not in drop} == \
        {k: v for k, v in found["replay"].items() if k not in drop}


def test_tables_show_the_trace_the_replay_and_the_ettr(tmp_path: Path) -> None:
    result = runner.invoke(app, ["remediate", "replay", "--nodes", "16", "--days", "2",
                                 "--rate-multiplier", "20", "--failures", str(TABLE)],
                           env=WIDE)
    assert result.exit_code == 0, result.output
    assert "trace: synthesized: 16 nodes x 8 GPUs, 2.0 days" in result.output
    for text in ("what dcops did", "true drains", "most out (budget)", "goodput of one job "
                 "on 128 GPUs", "dcops", "manual", "bound", "lost GPU-h", "parameters:"):
        assert text in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--mode", "reboot=sometimes"], "--mode 'reboot=sometimes': no mode 'sometimes'"),
    (["--mode", "explode=auto"], "no action 'explode'"),
    (["--mode", "reboot"], "no mode ''"),
    (["--max-out-nodes", "0"], "--max-out-nodes: max_out_nodes must be 1 or more"),
    (["--nodes", "0"], "--nodes 0"),
    (["--days", "-1"], "--days -1"),
    (["--telemetry-delay", "-5"], "--telemetry-delay -5"),
    (["--spares", "2"], "--spares 2"),
    (["--trace", "nope.jsonl", "--nodes", "8"], "--nodes with --trace"),
    (["--trace", "nope.jsonl"], "cannot read signal trace"),
    (["--failures", "nope.csv"], "cannot read failure table"),
])
def test_bad_input_is_one_clear_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["remediate", "replay", *args], env=WIDE)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def _settings(found: dict[str, Any]) -> ReplaySettings:
    from dcops.remediation.guardrails import GuardrailSettings
    from dcops.remediation.model import ActionKind, Mode

    echoed = found["parameters"]["replay"]
    return ReplaySettings(
        modes={ActionKind(k): Mode(v) for k, v in echoed["modes"].items()},
        guardrails=GuardrailSettings(**echoed["guardrails"]),
        telemetry_delay_s=echoed["telemetry_delay_s"], approve_s=echoed["approve_s"])
