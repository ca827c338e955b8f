"""`dcops alerts ...`: the alerts pending and firing now, and what happened to them."""

from __future__ import annotations

from pathlib import Path

import typer

from dcops.cli.common import ServerOpt, TokenFileOpt, client, friendly, table

app = typer.Typer(help="Alerts: the live ones and their history.", no_args_is_help=True)


@app.command("list")
@friendly
def list_(server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Alerts that are pending, firing or nodata now."""
    alerts = client(server, token_file).get("/api/v1/alerts")["data"]["alerts"]
    rows = [{"alertname": a["labels"].get("alertname", ""), "state": a["state"],
             "since": a["activeAt"], "value": a["value"],
             "labels": ", ".join(f"{k}={v}" for k, v in sorted(a["labels"].items())
                                 if k != "alertname")} for a in alerts]
    table(rows, ["alertname", "state", "since", "value", "labels"], title="alerts")


@app.command("history")
@friendly
def history(alertname: str | None = typer.Option(None, help="only this alert"),
            fingerprint: str | None = typer.Option(None, help="only this alert instance"),
            since: str | None = typer.Option(None, help="only this far back: 1h, 7d"),
            limit: int = typer.Option(50, min=1, max=10_000),
            server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """What happened to alerts, newest first: state changes and notifications."""
    params: dict[str, str | int] = {"limit": limit}
    for key, value in (("alertname", alertname), ("fingerprint", fingerprint),
                       ("since", since)):
        if value:
            params[key] = value
    events = client(server, token_file).get("/api/v1/alerts/history",
                                            params=params)["data"]["events"]
    rows = [{**e, "labels": ", ".join(f"{k}={v}" for k, v in sorted(e["labels"].items())
                                      if k != "alertname")} for e in events]
    table(rows, ["at", "alertname", "event", "actor", "fingerprint", "labels"],
          title="alert history")
