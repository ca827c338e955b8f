"""Shared CLI plumbing: options, output, and turning errors into clear messages."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from dcops.core.errors import DcopsError

if TYPE_CHECKING:  # the HTTP client and settings load only for commands that talk to a server
    from dcops.cli.client import Client

P = ParamSpec("P")
R = TypeVar("R")

out = Console()
err = Console(stderr=True)

ServerOpt = typer.Option(None, "--server", envvar="DCOPS_SERVER",
                         help="dcops server URL [default: http://127.0.0.1:9180]")
TokenFileOpt = typer.Option(None, "--token-file",
                            help="file holding the API token [default: DATA_DIR/admin.token]")


def client(server: str | None, token_file: Path | None) -> Client:
    from dcops.cli.client import Client

    return Client(server=server, token_file=token_file)


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Show DcopsErrors as one clear line on stderr and exit 1, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except DcopsError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            sys.exit(1)

    return wrapper


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    view = Table(title=title or None)
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(view)
