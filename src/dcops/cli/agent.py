"""``dcops agent``: run the host agent in the foreground until Ctrl-C or SIGTERM.

The main CLI registers it with ``app.command("agent")(agent)``. The agent's own modules are
imported only when the command runs, so ``dcops --help`` stays quick, and the agent
process never loads the server's heavy libraries.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from dcops.core.errors import DcopsError, Invalid
from dcops.settings import AgentSettings, load_settings


def agent_settings(config: Path | None, overrides: dict[str, Any]) -> AgentSettings:
    """The ``agent`` section of the config file with command-line values on top."""
    base = load_settings(config).agent
    data = {**base.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return AgentSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Invalid(first["msg"], where=f"command line: {where}") from None


def keep_agent_lean() -> None:
    """Keep httpx's own command-line client (rich, pygments: about 5 MB) out of the agent.

    httpx imports it only if it can; a None entry in sys.modules makes that import fail,
    which httpx handles. Nothing in the agent uses it. No-op once httpx is loaded.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def agent(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="YAML config file (default: $DCOPS_CONFIG, else defaults)")] = None,
    server: Annotated[str | None, typer.Option(
        help="dcops server URL, e.g. http://ops.example:9180")] = None,
    token_file: Annotated[Path | None, typer.Option(
        help="file holding the agent's API token")] = None,
    interval: Annotated[float | None, typer.Option(
        help="seconds between collections (default 15)")] = None,
    node: Annotated[str | None, typer.Option(
        help="node name to report (default: short hostname)")] = None,
    spool_dir: Annotated[Path | None, typer.Option(
        help="directory for pushes waiting for the server")] = None,
    once: Annotated[bool, typer.Option(
        "--once", help="collect once, try to deliver, and exit")] = False,
) -> None:
    """Collect this host's CPU, memory, disk, network and GPU metrics and push them."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = agent_settings(config, {
            "server_url": server, "token_file": token_file, "interval_s": interval,
            "node_name": node, "spool_dir": spool_dir})
    except DcopsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    keep_agent_lean()
    from dcops.agent.run import run_agent

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run_agent(settings, stop, once=once)
    except DcopsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
