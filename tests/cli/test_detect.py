"""`dcops detect ...`: status and scores from a real `dcops up --demo` process whose
detectors score the simulated fleet; `eval` draws its progress, prints the figures and
writes the report, and says clearly when the evaluator or the data is not there."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcops.cli.main import app
from dcops.detection.model import Progress
from tests.api.process import DcopsProcess
from tests.fixtures.engines import wait_for

runner = CliRunner()
CONFIG = """demo: {interval_s: 1}
detection: {interval_s: 2, delay_s: 0}
scheduling: {enabled: false}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DcopsProcess]:
    config = tmp_path / "dcops.yaml"
    config.write_text(CONFIG)
    proc = DcopsProcess(tmp_path / "data", "up", [
        "--demo", "--racks", "1", "--nodes-per-rack", "3", "--gpus-per-node", "4",
        "--no-agent", "--config", str(config)]).start()
    yield proc
    proc.stop()


def run(*args: str, server: DcopsProcess | None = None) -> tuple[int, str]:
    extra = [] if server is None else ["--server", server.url, "--token-file",
                                       str(server.data_dir / "admin.token")]
    result = runner.invoke(app, [*args, *extra], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_status_and_scores_of_the_demo_fleet(server: DcopsProcess) -> None:
    def scored() -> bool:
        with server.client() as api:
            body = api.get("/api/v1/detection/detectors").json()
        return bool(body["detectors"][0]["series"] == 12)

    wait_for(scored, 30, "the detector to score the demo fleet")
    code, out = run("detect", "status", server=server)
    assert code == 0, out
    assert "gpu-temperature-vs-peers" in out and "fleet" in out and " 12 " in out
    code, out = run("detect", "scores", '{node="node-01-02"}', "--limit", "3", server=server)
    assert code == 0, out
    assert out.count("node=node-01-02") == 3 and "peers' median" in out
    code, out = run("detect", "scores", "{node=", server=server)
    assert code == 1 and "selector" in out
    code, out = run("detect", "scores", "--detector", "nope", server=server)
    assert code == 1 and "detector 'nope' not found" in out


@dataclass
class FakeReport:
    figures: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.figures


def fake_nab(seen: list[Path]) -> types.ModuleType:
    module = types.ModuleType("dcops.detection.eval.nab")

    def evaluate(data_dir: Path, *, progress: Progress | None = None) -> FakeReport:
        seen.append(data_dir)
        for done in range(4):
            if progress is not None:
                progress("scoring NAB files", done + 1, 4)
        return FakeReport({"score": {"standard": 61.234567, "reward_low_FP_rate": 55.5},
                           "files": 58, "detector": "univariate", "per_file": [1, 2]})

    module.evaluate = evaluate  # type: ignore[attr-defined]
    return module


def nab_dir(tmp_path: Path) -> Path:
    data = tmp_path / "nab"
    (data / "data").mkdir(parents=True)
    (data / "labels").mkdir()
    (data / "labels" / "combined_windows.json").write_text("{}")
    return data


def test_eval_prints_the_figures_and_writes_the_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []
    monkeypatch.setitem(sys.modules, "dcops.detection.eval.nab", fake_nab(seen))
    report = tmp_path / "nab.json"
    code, out = run("detect", "eval", "--benchmark", "nab", "--data",
                    str(nab_dir(tmp_path)), "--report", str(report))
    assert code == 0, out
    assert seen == [tmp_path / "nab"]
    assert "scoring NAB files" in out and "100%" in out
    assert "score.standard" in out and "61.23" in out and "per_file" in out
    assert json.loads(report.read_text())["score"]["standard"] == 61.234567


def test_eval_without_its_evaluator_or_its_data_is_a_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dcops.detection.eval.smd", None)
    smd = tmp_path / "smd"
    for name in ("train", "test", "test_label"):
        (smd / name).mkdir(parents=True)
    code, out = run("detect", "eval", "--benchmark", "smd", "--data", str(smd))
    assert code == 1 and "benchmark evaluator not installed" in out
    assert "Traceback" not in out
    code, out = run("detect", "eval", "--benchmark", "nab", "--data", str(tmp_path / "no"))
    assert code == 1 and "no such data folder" in out
    code, out = run("detect", "eval", "--benchmark", "smd", "--data", str(tmp_path))
    assert code == 1 and "missing train, test, test_label" in out
    code, out = run("detect", "eval", "--benchmark", "forecast", "--data", str(smd))
    assert code == 1 and "missing nab/data" in out
    code, out = run("detect", "eval", "--benchmark", "kdd", "--data", str(smd))
    assert code == 1 and "unknown benchmark 'kdd'" in out
