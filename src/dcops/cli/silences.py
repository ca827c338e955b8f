"""`dcops silence ...`: mute alerts for a while, as `amtool silence` does."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from dcops.cli.common import ServerOpt, TokenFileOpt, client, friendly, out, table

app = typer.Typer(help="Silences: mute matching alerts until they expire.",
                  no_args_is_help=True)


def _matchers(texts: list[str]) -> list[dict[str, object]]:
    from dcops.alerts.amcompat import am_matcher
    from dcops.alerts.matchers import parse_matchers

    return [am_matcher(m) for i, text in enumerate(texts)
            for m in parse_matchers(text, f"matcher {i + 1}")]


def _text(matchers: list[dict[str, Any]]) -> str:
    from dcops.alerts.amcompat import from_am_matcher
    from dcops.alerts.matchers import format_matchers

    return format_matchers(from_am_matcher(m["name"], m["value"], m["isRegex"], m["isEqual"])
                           for m in matchers)[1:-1]  # without the braces


@app.command("add")
@friendly
def add(matchers: list[str] = typer.Argument(..., help='e.g. alertname=GpuTooHot node=~"n1.*"'),
        comment: str = typer.Option(..., "--comment", "-c", help="why (required)"),
        duration: str = typer.Option("1h", "--duration", "-d", help="how long: 30m, 2h, 1d"),
        author: str = typer.Option("", "--author", "-a", help="default: your user name"),
        server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Silence alerts matching every matcher, from now for --duration."""
    import getpass

    from dcops.alerts.durations import parse_duration

    seconds = parse_duration(duration, "--duration")
    now = time.time()
    body = {"matchers": _matchers(matchers), "comment": comment,
            "createdBy": author or getpass.getuser(),
            "startsAt": datetime.fromtimestamp(now, UTC).isoformat(),
            "endsAt": datetime.fromtimestamp(now + seconds, UTC).isoformat()}
    made = client(server, token_file).post("/api/v2/silences", json=body)
    out.print(made["silenceID"], highlight=False)


@app.command("list")
@friendly
def list_(expired: bool = typer.Option(False, help="also show expired silences"),
          server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Silences in force (and pending ones), newest change last."""
    found = client(server, token_file).get("/api/v2/silences")
    rows = [{"id": s["id"], "state": s["status"]["state"], "matchers": _text(s["matchers"]),
             "ends": s["endsAt"], "by": s["createdBy"], "comment": s["comment"]}
            for s in found if expired or s["status"]["state"] != "expired"]
    table(rows, ["id", "state", "matchers", "ends", "by", "comment"], title="silences")


@app.command("expire")
@friendly
def expire(silence_ids: list[str] = typer.Argument(..., help="silence ids"),
           server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """End silences now."""
    api = client(server, token_file)
    for silence_id in silence_ids:
        api.delete(f"/api/v2/silence/{silence_id}")
        out.print(f"silence {silence_id} expired", highlight=False)
