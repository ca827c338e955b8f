"""The CLI against a real server process: inventory, tokens, and clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcops.cli.main import app
from tests.api.process import DcopsProcess
from tests.fixtures.engines import free_port

runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DcopsProcess]:
    proc = DcopsProcess(tmp_path_factory.mktemp("cli") / "data").start()
    yield proc
    proc.stop()


def _run(server: DcopsProcess, *args: str) -> tuple[int, str]:
    token_file = server.data_dir / "admin.token"
    result = runner.invoke(app, [*args, "--server", server.url, "--token-file", str(token_file)],
                           env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_inventory_round_trip(server: DcopsProcess) -> None:
    assert _run(server, "inventory", "add-site", "ams1")[0] == 0
    assert _run(server, "inventory", "add-room", "hall-1", "--site", "ams1")[0] == 0
    assert _run(server, "inventory", "add-rack", "r01", "--room", "hall-1")[0] == 0
    code, output = _run(server, "inventory", "add-node", "gpu-001", "--rack", "r01",
                        "--gpu-count", "8", "--gpu-model", "H100")
    assert code == 0, output
    code, output = _run(server, "inventory", "set-state", "gpu-001", "draining",
                        "--reason", "Xid 79")
    assert code == 0 and "draining" in output
    code, output = _run(server, "inventory", "list", "nodes")
    assert code == 0 and "gpu-001" in output and "draining" in output


def test_import_file(server: DcopsProcess, tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text("site,room,rack,node,gpu_model,gpu_count,state\n"
                    "fra1,hall-a,ra1,gpu-900,H100,2,active\n")
    code, output = _run(server, "inventory", "import", str(path))
    assert code == 0, output
    bad = tmp_path / "bad.csv"
    bad.write_text("site,room,rack,node,gpu_model,gpu_count,state\n"
                   "fra1,hall-a,ra1,gpu-901,H100,two,active\n")
    code, output = _run(server, "inventory", "import", str(bad))
    assert code == 1
    assert "bad.csv:2" in output and "Traceback" not in output


def test_tokens(server: DcopsProcess) -> None:
    code, output = _run(server, "token", "create", "grafana", "--role", "viewer")
    assert code == 0 and "dcops_" in output
    code, output = _run(server, "token", "list")
    assert code == 0 and "grafana" in output and "dcops_" not in output.split("grafana")[1]


def test_errors_are_one_clear_line(server: DcopsProcess) -> None:
    code, output = _run(server, "inventory", "list", "switches")
    assert code == 1 and "unknown kind 'switches'" in output
    code, output = _run(server, "inventory", "add-room", "x", "--site", "nowhere")
    assert code == 1 and "nowhere" in output and "Traceback" not in output
    result = runner.invoke(app, ["inventory", "list", "nodes", "--server",
                                 f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1
    assert "cannot reach dcops" in result.output


def test_config_check(tmp_path: Path) -> None:
    good = tmp_path / "ok.yaml"
    good.write_text("server: {port: 9200}\n")
    result = runner.invoke(app, ["config", "check", str(good)])
    assert result.exit_code == 0 and "9200" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: {port: http}\n")
    result = runner.invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == 1 and "server.port" in result.output


def test_silences_add_list_expire(server: DcopsProcess) -> None:
    code, output = _run(server, "silence", "add", "alertname=GpuTooHot", 'node=~"n1.*"',
                        "-c", "swapping the PSU", "-d", "2h", "-a", "alice")
    assert code == 0, output
    silence_id = output.strip()
    code, output = _run(server, "silence", "list")
    assert code == 0 and silence_id in output and "swapping the PSU" in output
    assert 'alertname="GpuTooHot", node=~"n1.*"' in output and "active" in output
    assert _run(server, "silence", "expire", silence_id)[0] == 0
    assert silence_id not in _run(server, "silence", "list")[1]
    assert silence_id in _run(server, "silence", "list", "--expired")[1]
    code, output = _run(server, "silence", "expire", silence_id)
    assert code == 1 and "already expired" in output


def test_bad_silences_are_one_clear_line(server: DcopsProcess) -> None:
    code, output = _run(server, "silence", "add", "node=~(", "-c", "x")
    assert code == 1 and "bad regex" in output and "Traceback" not in output
    code, output = _run(server, "silence", "add", 'node=~".*"', "-c", "x")
    assert code == 1 and "must not match the empty string" in output
    code, output = _run(server, "silence", "add", "node=n1", "-c", "x", "-d", "soon")
    assert code == 1 and "not a duration" in output


def test_alerts_list_and_history_render(server: DcopsProcess) -> None:
    code, output = _run(server, "alerts", "list")
    assert code == 0 and "alerts" in output
    code, output = _run(server, "alerts", "history", "--since", "1h")
    assert code == 0 and "alert history" in output
