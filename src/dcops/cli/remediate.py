"""`dcops remediate ...` and `dcops incidents ...`: what remediation plans to do, is doing
and did, and the incidents behind them.

    dcops remediate plan n12 --xid 79 --gpu 3        # dry run: what would happen now
    dcops remediate list [--live]
    dcops remediate show PLAN | approve PLAN | cancel PLAN [--reason ...]
    dcops remediate breaker [--close]
    dcops remediate replay [--trace FILE] [--nodes 2048] [--days 54] [--mode reboot=auto] [--json]
    dcops incidents list [--open] | show INCIDENT
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from dcops.cli.common import ServerOpt, TokenFileOpt, client, friendly, out, table
from dcops.cli.remediate_replay import replay as replay_command

app = typer.Typer(help="Remediation: dry runs, plans, approvals, the storm breaker, replay.",
                  no_args_is_help=True)
incidents_app = typer.Typer(help="Incidents: one per fault, with its timeline.",
                            no_args_is_help=True)

app.command("replay")(replay_command)

STATE_COLOUR = {"done": "green", "failed": "red", "blocked": "yellow",
                "awaiting_approval": "yellow", "running": "cyan", "skipped": "dim"}


def _when(seconds: float | None) -> str:
    return "" if seconds is None else datetime.fromtimestamp(seconds).strftime(
        "%Y-%m-%d %H:%M:%S")


def print_plan(plan: dict[str, Any]) -> None:
    where = plan["node"] if plan.get("gpu") is None else f"{plan['node']}/{plan['gpu']}"
    out.print(f"[bold]{plan['id']}[/bold]  {where}  {plan['state']}  {plan['cause']}",
              highlight=False)
    if plan.get("reason"):
        out.print(f"  {plan['reason']}", highlight=False)
    for number, step in enumerate(plan["steps"], start=1):
        colour = STATE_COLOUR.get(step["state"], "white")
        mode = "" if step["mode"] == "auto" else f" [{step['mode']}]"
        out.print(f"  {number}. [{colour}]{step['state']:<17}[/{colour}] "
                  f"{step['action']['description']}{mode}", highlight=False)
        if step.get("result"):
            out.print(f"       {step['result']}", highlight=False, style="dim")


@app.command("plan")
@friendly
def plan(node: str = typer.Argument(..., help="the node"),
         xid: int | None = typer.Option(None, "--xid", help="an Xid on the node"),
         kind: str = typer.Option("xid", "--kind",
                                  help="signal kind: xid, ecc_dbe, unreachable, disk_full..."),
         gpu: int | None = typer.Option(None, "--gpu", help="GPU index on the node"),
         job: str | None = typer.Option(None, "--job", help="the job the driver named"),
         detail: str = typer.Option("", "--detail", help="driver text, e.g. Xid 154's action"),
         value: float = typer.Option(1.0, "--value"),
         server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Dry run: the diagnosis a signal would get and the plan it would lead to now, with
    modes and guardrails applied. Nothing is stored or done."""
    signal: dict[str, Any] = {"node": node, "kind": kind, "gpu": gpu, "value": value,
                              "job": job, "detail": detail}
    if xid is not None:
        signal["code"] = xid
    found = client(server, token_file).post("/api/v1/remediation/preview",
                                            json={"signals": [signal]})
    if not found:
        out.print("no diagnosis: nothing would be done", highlight=False)
    for item in found:
        diagnosis = item["diagnosis"]
        out.print(f"diagnosis: {diagnosis['health']}, remedy {diagnosis['remedy']}: "
                  f"{diagnosis['cause']}", highlight=False)
        if item["plan"]["steps"]:
            print_plan(item["plan"])
        else:
            out.print("  no plan: the scheduler only avoids a suspect node", highlight=False)


@app.command("list")
@friendly
def list_(live: bool = typer.Option(False, "--live", help="only running or holding a node"),
          server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Remediation plans, newest first."""
    plans = client(server, token_file).get("/api/v1/remediation/plans",
                                           params={"live": str(live).lower()})
    rows = [{**p, "created": _when(p["created_at"]),
             "step": next((s["action"]["kind"] for s in p["steps"]
                           if s["state"] not in {"done", "skipped", "failed"}), ""),
             "out": "yes" if p["node_out"] else ""} for p in plans]
    table(rows, ["id", "node", "state", "step", "cause", "out", "created", "reason"],
          title="remediation plans")


@app.command("show")
@friendly
def show(plan_id: str, server: str | None = ServerOpt,
         token_file: Path | None = TokenFileOpt) -> None:
    """A plan, step by step."""
    print_plan(client(server, token_file).get(f"/api/v1/remediation/plans/{plan_id}"))


@app.command("approve")
@friendly
def approve(plan_id: str, server: str | None = ServerOpt,
            token_file: Path | None = TokenFileOpt) -> None:
    """Approve a plan's steps that wait for an operator."""
    print_plan(client(server, token_file).post(f"/api/v1/remediation/plans/{plan_id}/approve"))


@app.command("cancel")
@friendly
def cancel(plan_id: str, reason: str = typer.Option("", "--reason"),
           server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Stop a plan (a node it drained stays drained)."""
    print_plan(client(server, token_file).post(
        f"/api/v1/remediation/plans/{plan_id}/cancel", json={"reason": reason}))


@app.command("breaker")
@friendly
def breaker(close: bool = typer.Option(False, "--close", help="close an open breaker"),
            server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """The storm circuit breaker, the drain budget and the nodes dcops has out."""
    api = client(server, token_file)
    state = api.post("/api/v1/remediation/breaker/close") if close else api.get(
        "/api/v1/remediation/breaker")
    word = "[red]open[/red]" if state["open"] else "[green]closed[/green]"
    out.print(f"breaker {word}  flagged in window {state['flagged_in_window']}  "
              f"out {len(state['out_nodes'])} of budget {state['budget']}", highlight=False)
    if state["out_nodes"]:
        out.print("  " + " ".join(state["out_nodes"]), highlight=False)


@friendly
def health(node: str | None = typer.Argument(None, help="one node, with its evidence"),
           worst: bool = typer.Option(False, "--worst", help="only nodes not healthy"),
           server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Every node's health, or one node's GPUs and the evidence behind them."""
    api = client(server, token_file)
    if node is None:
        nodes = api.get("/api/v1/health", params={"worst": str(worst).lower()})
        rows = [{**n, "since": _when(n["since"]) if n["since"] else "",
                 "gpus": " ".join(f"{g['index']}:{g['health']}" for g in n["gpus"]
                                  if g["health"] != "healthy")} for n in nodes]
        table(rows, ["node", "health", "remedy", "cause", "gpus", "since"], title="health")
        return
    found = api.get(f"/api/v1/health/nodes/{node}")
    out.print(f"[bold]{found['node']}[/bold]  {found['health']}  remedy {found['remedy']}  "
              f"{found['cause']}", highlight=False)
    for gpu in found["gpus"]:
        out.print(f"  gpu {gpu['index']}: {gpu['health']}  {gpu['remedy']}  {gpu['cause']}",
                  highlight=False)
        for item in gpu.get("evidence", []):
            mark = "" if item["counted"] else " (not counted)"
            out.print(f"      {_when(item['at'])}  {item['summary']}{mark}", highlight=False)
    for item in found.get("evidence", []):
        out.print(f"  {_when(item['at'])}  {item['summary']}", highlight=False)


@incidents_app.command("list")
@friendly
def incidents(open_only: bool = typer.Option(False, "--open", help="only unresolved ones"),
              server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Incidents: open ones first, the most GPU-hours at risk first."""
    found = client(server, token_file).get("/api/v1/incidents",
                                           params={"open": str(open_only).lower()})
    rows = [{**i, "opened": _when(i["opened_at"]), "at risk": f"{i['gpu_hours_at_risk']:.1f}",
             "jobs": ",".join(i["jobs"])} for i in found]
    table(rows, ["id", "node", "state", "cause", "at risk", "jobs", "opened"],
          title="incidents (GPU-hours at risk)")


@incidents_app.command("show")
@friendly
def incident(incident_id: str, server: str | None = ServerOpt,
             token_file: Path | None = TokenFileOpt) -> None:
    """An incident and its timeline."""
    found = client(server, token_file).get(f"/api/v1/incidents/{incident_id}")
    out.print(f"[bold]{found['id']}[/bold]  {found['node']}  {found['state']}  "
              f"{found['cause']}  ({found['gpu_hours_at_risk']:.1f} GPU-hours at risk)",
              highlight=False)
    for entry in found["timeline"]:
        out.print(f"  {_when(entry['at'])}  {entry['kind']:<12} {entry['text']}"
                  f"  [dim]{entry['actor']}[/dim]", highlight=False)
