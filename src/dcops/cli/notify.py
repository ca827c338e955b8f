"""`dcops notify check FILE`: validate a notification file, as `amtool check-config` does."""

from __future__ import annotations

from pathlib import Path

import typer

from dcops.cli.common import friendly, out

app = typer.Typer(help="Notification files (Alertmanager's format).", no_args_is_help=True)


@app.command("check")
@friendly
def check(path: Path = typer.Argument(..., help="the notification file")) -> None:
    """Check routes, receivers, matchers, durations and templates, naming file and line."""
    from dcops.alerts.amconfig import load_notify_file
    from dcops.backends.notifiers import build_notifiers

    config = load_notify_file(path)
    notifiers = build_notifiers(config.receivers)  # templates are checked when built
    routes = len(config.route.walk())
    integrations = sum(len(n) for n in notifiers.values())
    out.print(f"{path}: SUCCESS: {routes} routes, {len(config.receivers)} receivers "
              f"({integrations} integrations), {len(config.inhibit_rules)} inhibit rules",
              highlight=False, soft_wrap=True)
