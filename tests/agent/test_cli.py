"""``dcops agent`` as a Typer command: options over the config file, --once, clear errors."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from dcops.cli.agent import agent, agent_settings
from tests.agent.push_server import PushServer
from tests.fixtures.engines import wait_for

app = typer.Typer()
app.command("agent")(agent)
app.command("noop")(lambda: None)  # two commands, so "agent" is a subcommand as in dcops


def test_once_collects_and_delivers_one_push(
        tmp_path: Path, push_server: PushServer, token_file: Path) -> None:
    result = CliRunner().invoke(app, [
        "agent", "--once", "--server", push_server.url, "--token-file", str(token_file),
        "--node", "n42", "--spool-dir", str(tmp_path / "spool")])
    assert result.exit_code == 0, result.output
    assert push_server.seqs() == [0]
    assert push_server.received[0].body["node"] == "n42"
    assert push_server.received[0].headers["Authorization"] == "Bearer dcops_agent_token_1"


def test_command_line_overrides_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "dcops.yaml"
    config.write_text("agent:\n  server_url: http://ops:9180\n  interval_s: 30\n"
                      "  spool_max_mb: 8\n")
    settings = agent_settings(config, {"interval_s": 5.0, "node_name": None})
    assert settings.server_url == "http://ops:9180"
    assert settings.interval_s == 5.0 and settings.spool_max_mb == 8
    assert settings.node_name is None


def test_bad_interval_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["agent", "--once", "--interval", "0",
                                      "--spool-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "interval_s" in result.output and "Traceback" not in result.output


def test_agent_process_stays_lean() -> None:
    """The agent must not load the server's heavy libraries (memory target: < 60 MB)."""
    code = ("import sys\n"
            "from dcops.cli.agent import keep_agent_lean\n"
            "keep_agent_lean()\n"
            "import dcops.agent.run, dcops.backends.nvml, dcops.agent.__main__\n"
            "print(' '.join(sorted(m for m in ('numpy', 'duckdb', 'fastapi', 'pyarrow', "
            "'sqlalchemy', 'rich', 'pygments') if m in sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == ""


def test_sigint_stops_the_agent_cleanly(
        tmp_path: Path, push_server: PushServer, token_file: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dcops.agent", "--server", push_server.url, "--token-file",
         str(token_file), "--interval", "0.1", "--spool-dir", str(tmp_path / "spool")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(push_server.received) >= 2, 30, "pushes from the agent")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    seqs = push_server.seqs()
    assert seqs == list(range(len(seqs)))
