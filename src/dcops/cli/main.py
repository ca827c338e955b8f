"""The `dcops` command: `dcops up` starts everything; most of the rest talk to a running
server (`dcops sim` and `dcops rules` work offline)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import typer

import dcops
from dcops.cli import (
    alerts,
    backup,
    detect,
    inventory,
    jobs,
    notify,
    remediate,
    rules,
    silences,
    sim,
    tokens,
)
from dcops.cli.common import friendly, out
from dcops.settings import DemoSettings, Settings, load_settings

app = typer.Typer(name="dcops", no_args_is_help=True, add_completion=False,
                  help="Operations control plane for GPU datacenters.")
app.add_typer(inventory.app, name="inventory")
app.add_typer(tokens.app, name="token")
app.add_typer(rules.app, name="rules")
app.add_typer(alerts.app, name="alerts")
app.add_typer(silences.app, name="silence")
app.add_typer(notify.app, name="notify")
app.add_typer(jobs.app, name="jobs")
app.add_typer(sim.app, name="sim")
app.add_typer(remediate.app, name="remediate")
app.add_typer(remediate.incidents_app, name="incidents")
app.command("health")(remediate.health)
app.add_typer(detect.app, name="detect")
app.add_typer(backup.app, name="backup")
config_app = typer.Typer(help="Configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigOpt = typer.Option(None, "--config", "-c", envvar="DCOPS_CONFIG",
                         help="YAML config file [default: built-in defaults]")
DataDirOpt = typer.Option(None, "--data-dir", envvar="DCOPS_DATA_DIR",
                          help="where state and metrics live [default: ~/.local/share/dcops]")


def _settings(config: Path | None, data_dir: Path | None, port: int | None,
              host: str | None = None) -> Settings:
    settings = load_settings(config, data_dir)
    server = settings.server.model_copy(update={
        k: v for k, v in (("port", port), ("host", host)) if v is not None})
    return settings.model_copy(update={"server": server})


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _run(settings: Settings, demo: bool, local_agent: bool) -> None:
    from dcops.access.model import Role
    from dcops.api.server import RunOptions, serve
    from dcops.wiring import ADMIN_TOKEN_FILE, build_services, ensure_token_file

    services = build_services(settings)
    admin_file = ensure_token_file(services, ADMIN_TOKEN_FILE, "admin", Role.ADMIN)
    secret = admin_file.read_text().strip()

    def ready(base_url: str) -> None:
        out.print(f"[bold green]dcops {dcops.__version__} is up[/bold green]")
        out.print(f"  dashboard    {base_url}/#token={secret}", highlight=False, soft_wrap=True)
        out.print(f"  API docs     {base_url}/docs", highlight=False)
        out.print(f"  metrics      {base_url}/metrics", highlight=False)
        out.print(f"  data         {services.data_dir}", highlight=False)
        out.print(f"  admin token  {admin_file}", highlight=False)
        if demo:
            d = settings.demo
            out.print(f"  demo fleet   {d.racks} racks x {d.nodes_per_rack} nodes x "
                      f"{d.gpus_per_node} GPUs, every {d.interval_s:g}s")
        sched = settings.scheduling
        if sched.enabled:
            out.print(f"  jobs         policy {sched.policy} on the {sched.executor} executor: "
                      "dcops jobs submit --gpus 1 -- COMMAND", highlight=False)
        out.print("Ctrl-C to stop.")

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(services, RunOptions(demo=demo, local_agent=local_agent), ready))
    except KeyboardInterrupt:
        pass
    finally:
        services.close()
        out.print("dcops stopped; data kept in", str(services.data_dir), highlight=False)


@app.command()
@friendly
def up(demo: bool = typer.Option(False, "--demo", help="add a simulated GPU fleet"),
       racks: int | None = typer.Option(None, help="demo: racks"),
       nodes_per_rack: int | None = typer.Option(None, help="demo: nodes per rack"),
       gpus_per_node: int | None = typer.Option(None, help="demo: GPUs per node"),
       agent: bool = typer.Option(True, "--agent/--no-agent",
                                  help="run the local agent for this machine"),
       port: int | None = typer.Option(None, help="HTTP port [default: 9180]"),
       host: str | None = typer.Option(None, help="listen address [default: 127.0.0.1]"),
       config: Path | None = ConfigOpt, data_dir: Path | None = DataDirOpt,
       verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Start the control plane with embedded storage and the local agent."""
    _logging(verbose)
    settings = _settings(config, data_dir, port, host)
    overrides = {k: v for k, v in (("racks", racks), ("nodes_per_rack", nodes_per_rack),
                                   ("gpus_per_node", gpus_per_node)) if v is not None}
    if overrides:
        demo_settings = DemoSettings.model_validate(settings.demo.model_dump() | overrides)
        settings = settings.model_copy(update={"demo": demo_settings})
    _run(settings, demo, agent)


@app.command()
@friendly
def serve(port: int | None = typer.Option(None, help="HTTP port [default: 9180]"),
          host: str | None = typer.Option(None, help="listen address [default: 127.0.0.1]"),
          config: Path | None = ConfigOpt, data_dir: Path | None = DataDirOpt,
          verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Start only the control plane's API (no local agent, no demo fleet)."""
    _logging(verbose)
    _run(_settings(config, data_dir, port, host), demo=False, local_agent=False)


@config_app.command("check")
@friendly
def config_check(path: Path) -> None:
    """Validate a config file and print the settings it gives."""
    settings = load_settings(path)
    out.print_json(settings.model_dump_json())


@app.command()
def version() -> None:
    """Print the dcops version."""
    out.print(dcops.__version__)


def _register_agent() -> None:
    from dcops.cli.agent import agent

    app.command("agent", help="Collect this host's telemetry and push it to the server.")(
        agent)


_register_agent()


def main() -> None:
    app()
