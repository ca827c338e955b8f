"""The `dcops` executable's entry point.

`dcops agent` runs on every host of the fleet, so it is dispatched before the rest of
the CLI is imported: the agent process never loads the server's libraries. `dcops backup` works on a
repository, not a server, and is dispatched early too: it starts in a third of the time.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["agent"]:
        import typer

        from dcops.cli.agent import agent

        sys.argv = [f"{sys.argv[0]} agent", *sys.argv[2:]]
        typer.run(agent)
        return
    if sys.argv[1:2] == ["backup"]:
        from dcops.cli.backup import app

        sys.argv = [f"{sys.argv[0]} backup", *sys.argv[2:]]
        app()
        return
    from dcops.cli.main import main as full_cli

    full_cli()
