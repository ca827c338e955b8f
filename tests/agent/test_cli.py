"""``dcops agent`` as a Typer command: options over the config file, --once, clear errors."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from dcops.cli.agent import agent, agent_settings
from tests.agent.push_server import PushServer

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
