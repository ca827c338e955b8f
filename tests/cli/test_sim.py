"""`dcops sim run` and `dcops sim sweep` on the small Philly sample, offline."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcops.cli.main import app

runner = CliRunner()
DATA = Path(__file__).parents[1] / "data"
SAMPLE = DATA / "traces" / "philly_sample.csv"
WIDE = {"COLUMNS": "200"}


def reports(folder: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads((folder / "report.json").read_text())["reports"]
    return found


def test_run_replays_the_sample_and_writes_both_reports(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sim", "run", "--trace", str(SAMPLE), "--format", "philly",
                                 "--policy", "fifo,srtf", "--nodes", "2",
                                 "--out", str(tmp_path)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "philly_sample.csv: 14 jobs (philly; 1 duplicate rows kept)" in result.output
    assert "simulation summary" in result.output and "avg JCT" in result.output
    assert "2 jobs left out, larger than the cluster of 16 GPUs" in result.output
    fifo, srtf = reports(tmp_path)
    assert (fifo["policy"], srtf["policy"]) == ("fifo", "srtf")
    assert (fifo["nodes"], fifo["jobs"], fifo["completed"], fifo["left_out"]) == (2, 12, 12, 2)
    assert fifo["avg_jct_s"] > 0 and 0 < fifo["utilization"] <= 1
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3


def test_run_under_the_packer(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sim", "run", "--trace", str(SAMPLE), "--policy", "dcops",
                                 "--nodes", "4", "--placement", "packer",
                                 "--out", str(tmp_path)], env=WIDE)
    assert result.exit_code == 0, result.output
    (report,) = reports(tmp_path)
    assert (report["policy"], report["jobs"], report["completed"]) == ("dcops", 14, 14)


def test_philly_resolves_from_the_traces_folder_with_its_window_and_vcs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "philly_jobs_pollux.csv.gz").write_bytes(gzip.compress(SAMPLE.read_bytes()))
    (tmp_path / "philly_vc_nodes_helios.csv").write_text("vc,node num\n6214e9,64\n2869ce,16\n")
    monkeypatch.setenv("DCOPS_TRACES_DIR", str(tmp_path))
    result = runner.invoke(app, ["sim", "run", "--trace", "philly", "--nodes", "4",
                                 "--out", str(tmp_path / "out")], env=WIDE)
    assert result.exit_code == 0, result.output
    # 2017-09-29 is before the window; 11cb48 and e13805 are not among the VCs
    assert ("10 jobs (philly; 1 duplicate rows kept; skipped 1 submitted before start, "
            "3 tenant not allowed)") in result.output
    (report,) = reports(tmp_path / "out")
    assert {t["tenant"] for t in report["tenants"]} == {"6214e9", "2869ce"}


def test_faults_from_the_llama3_table_restart_jobs(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCOPS_FAILURES_DIR", str(DATA / "failures"))
    result = runner.invoke(app, ["sim", "run", "--trace", str(SAMPLE), "--nodes", "2",
                                 "--faults", "llama3", "--fault-multiplier", "300",
                                 "--seed", "3", "--out", str(tmp_path)], env=WIDE)
    assert result.exit_code == 0, result.output
    (report,) = reports(tmp_path)
    assert report["faults"] > 0 and report["seed"] == 3
    assert report["completed"] == report["jobs"]
    assert report["goodput"] <= 1.0


def test_unreadable_rows_are_counted_and_shown_with_their_lines(tmp_path: Path) -> None:
    trace = tmp_path / "bad.csv"
    lines = SAMPLE.read_text().splitlines()
    trace.write_text("\n".join([*lines[:2], "2017-10-09 07:01:55,soon,1,1,11cb48",
                                *lines[2:5]]) + "\n")
    result = runner.invoke(app, ["sim", "run", "--trace", str(trace), "--nodes", "1"],
                           env=WIDE)
    assert result.exit_code == 0, result.output
    assert "1 rows could not be read:" in result.output
    assert "bad.csv:3: duration: 'soon' is not a number" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--trace", "/nonexistent/trace.csv"], "no trace file /nonexistent/trace.csv"),
    (["--format", "slurm"], "unknown trace format 'slurm'"),
    (["--policy", "fifo,lottery"], "unknown policy 'lottery'"),
    (["--start", "2017-13-01"], "--start '2017-13-01' is not a date"),
    (["--nodes", "0"], "a cluster of 0 nodes x 8 GPUs"),
    (["--gpus-per-node", "-8"], "a cluster of 80 nodes x -8 GPUs"),
    (["--faults", "/nonexistent/faults.csv"], "no fault table /nonexistent/faults.csv"),
    (["--fault-multiplier", "-1"], "fault multiplier -1.0 must be 0 or more"),
    (["--jobs", "0", "--policy", "fifo,sjf"], "--jobs 0"),
    (["--placement", "random"], "unknown placement 'random'"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    base = ["sim", "run", "--trace", str(SAMPLE)]
    result = runner.invoke(app, [*base, *args], env=WIDE)
    assert result.exit_code == 2, result.output
    assert f"error: {message}" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_missing_philly_folder_says_where_to_point(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCOPS_TRACES_DIR", str(tmp_path))
    result = runner.invoke(app, ["sim", "run", "--trace", "philly"], env=WIDE)
    assert result.exit_code == 2
    assert f"no Philly trace at {tmp_path}/philly_jobs_pollux.csv.gz" in result.output
    assert "DCOPS_TRACES_DIR" in result.output


def test_sweep_runs_every_combination_in_two_processes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sim", "sweep", "--trace", str(SAMPLE), "--policy",
                                 "fifo,sjf", "--nodes", "1,2", "--seeds", "0,1",
                                 "--jobs", "2", "--out", str(tmp_path)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "without --faults every seed replays the same" in result.output
    assert "4 replays on 2 processes" in result.output
    found = reports(tmp_path)
    assert [(r["policy"], r["nodes"]) for r in found] == [
        ("fifo", 1), ("fifo", 2), ("sjf", 1), ("sjf", 2)]
    assert [r["label"] for r in found] == ["fifo n=1", "fifo n=2", "sjf n=1", "sjf n=2"]
    one_node = found[0]
    assert one_node["left_out"] == 3 and one_node["avg_queue_s"] > 0  # 8 GPUs: it queues
    assert (tmp_path / "report.html").read_text().count("<polyline") == 3 * 4
