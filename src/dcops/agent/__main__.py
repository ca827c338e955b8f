"""``python -m dcops.agent``: the agent command without the rest of the CLI (a lean process)."""

from __future__ import annotations

import typer

from dcops.cli.agent import agent


def main() -> None:
    typer.run(agent)


if __name__ == "__main__":
    main()
