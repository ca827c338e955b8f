"""`dcops jobs ...`: submit GPU jobs, follow them, and see the queue and each tenant's share.

    dcops jobs submit --gpus 2 --tenant research --name x -- python train.py --lr 3e-4
    dcops jobs list --state running
    dcops jobs show 7 | cancel 7 | release 7 | logs 7
    dcops jobs queue
    dcops jobs fairness
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from dcops.cli.common import ServerOpt, TokenFileOpt, client, friendly, out, table

app = typer.Typer(help="GPU jobs: submit, follow, cancel; the queue and fair share.",
                  no_args_is_help=True)

INTERPRETERS = {"python", "python3", "bash", "sh", "torchrun", "uv", "srun", "env"}


def _when(seconds: float | None) -> str:
    return "" if seconds is None else datetime.fromtimestamp(seconds).strftime(
        "%Y-%m-%d %H:%M:%S")


def _span(seconds: float | None) -> str:
    if seconds is None:
        return ""
    from dcops.alerts.durations import format_duration

    return format_duration(round(seconds))


def _default_name(command: list[str]) -> str:
    """The script or program a command runs: ``python train.py`` is ``train.py``,
    ``python -c ...`` is ``python``."""
    if not command:
        return "job"
    program = Path(command[0]).name
    if program.rstrip("0123456789.") in INTERPRETERS and len(command) > 1 \
            and not command[1].startswith("-"):
        return Path(command[1]).name
    return program.rstrip("0123456789.") or program


def _row(job: dict[str, Any]) -> dict[str, Any]:
    placement = ",".join(f"{p['node']}:{p['gpus']}" for p in job["placement"])
    return {**job, "submitted": _when(job["submit_s"]), "run": _span(job["run_s"]),
            "where": placement, "command": " ".join(job["command"])}


COLUMNS = ["id", "name", "tenant", "state", "gpus", "submitted", "run", "where", "reason"]


@app.command("submit", context_settings={"allow_interspersed_args": False})
@friendly
def submit(command: list[str] = typer.Argument(
               None, help="what to run, after --: dcops jobs submit -- python train.py"),
           name: str | None = typer.Option(None, "--name", "-n",
                                           help="default: the script's name"),
           gpus: int = typer.Option(1, "--gpus", "-g", help="GPUs per task"),
           tasks: int = typer.Option(1, "--tasks", "-t",
                                     help="tasks of the gang, started together"),
           tenant: str = typer.Option("default", "--tenant", "-T", help="team or project"),
           cpus: int = typer.Option(1, "--cpus", help="CPUs per task"),
           memory_mb: int = typer.Option(1024, "--memory-mb", help="memory per task, MB"),
           priority: int = typer.Option(0, "--priority"),
           estimate: str | None = typer.Option(None, "--estimate",
                                               help="expected run time: 30m, 2h"),
           checkpoint_every: str | None = typer.Option(
               None, "--checkpoint-every", help="how often it checkpoints: 10m"),
           preemptible: bool = typer.Option(True, "--preemptible/--no-preempt"),
           server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Submit a job; prints its id."""
    from dcops.alerts.durations import parse_duration

    command = command or []
    body: dict[str, Any] = {
        "name": name or _default_name(command), "tenant": tenant, "gpus_per_task": gpus,
        "tasks": tasks, "cpus_per_task": cpus, "memory_mb_per_task": memory_mb,
        "priority": priority, "preemptible": preemptible, "command": command}
    if estimate:
        body["duration_estimate_s"] = parse_duration(estimate, "--estimate")
    if checkpoint_every:
        body["checkpoint_interval_s"] = parse_duration(checkpoint_every, "--checkpoint-every")
    job = client(server, token_file).post("/api/v1/jobs", json=body)
    out.print(job["id"], highlight=False)


@app.command("list")
@friendly
def list_(state: str | None = typer.Option(None, "--state", "-s",
                                           help="queued, running, held, completed, ..."),
          tenant: str | None = typer.Option(None, "--tenant", "-T"),
          server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Jobs in submission order."""
    params = {k: v for k, v in (("state", state), ("tenant", tenant)) if v}
    jobs = client(server, token_file).get("/api/v1/jobs", params=params)
    table([_row(j) for j in jobs], COLUMNS, title="jobs")


@app.command("show")
@friendly
def show(job_id: str, server: str | None = ServerOpt,
         token_file: Path | None = TokenFileOpt) -> None:
    """A job, where it runs, and its history."""
    job = client(server, token_file).get(f"/api/v1/jobs/{job_id}")
    _print_job(job)


def _print_job(job: dict[str, Any]) -> None:
    row = _row(job)
    for label, key in (("job", "id"), ("name", "name"), ("tenant", "tenant"),
                       ("state", "state"), ("reason", "reason"), ("command", "command"),
                       ("where", "where"), ("submitted", "submitted"), ("run", "run")):
        if row.get(key) not in (None, ""):
            out.print(f"{label:<10} {row[key]}", highlight=False)
    out.print(f"{'gpus':<10} {job['gpus']} ({job['tasks']} x {job['gpus_per_task']})"
              f"   preemptions {job['preemptions']}   restarts {job['restarts']}",
              highlight=False)
    for event in job.get("events", []):
        out.print(f"  {_when(event['at_s'])}  {event['what']}", highlight=False)


@app.command("cancel")
@friendly
def cancel(job_ids: list[str] = typer.Argument(..., help="job ids"),
           server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Cancel jobs: waiting ones leave the queue, running ones are stopped."""
    api = client(server, token_file)
    _each(job_ids, lambda job_id: api.delete(f"/api/v1/jobs/{job_id}"))


@app.command("release")
@friendly
def release(job_ids: list[str] = typer.Argument(..., help="job ids"),
            server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Put held jobs back in the queue."""
    api = client(server, token_file)
    _each(job_ids, lambda job_id: api.post(f"/api/v1/jobs/{job_id}/release"))


def _each(job_ids: list[str], call: Callable[[str], Any]) -> None:
    """Call the API for each job and say where it stands now."""
    for job_id in job_ids:
        job = call(job_id)
        out.print(f"job {job['id']} {job['state']}", highlight=False)


@app.command("logs")
@friendly
def logs(job_id: str, tail: int = typer.Option(200, "--tail", min=1, max=10_000),
         server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """The last lines of a job's output (local executor)."""
    text = client(server, token_file).get_text(f"/api/v1/jobs/{job_id}/log",
                                               params={"tail": tail})
    out.print(text, end="", highlight=False, markup=False)


@app.command("queue")
@friendly
def queue(server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Waiting jobs in the policy's order: position 1 starts next."""
    answer = client(server, token_file).get("/api/v1/queue")
    rows = [_row(j) for j in answer["jobs"]]
    table(rows, ["position", "id", "name", "tenant", "state", "gpus", "submitted"],
          title=f"queue ({answer['policy']}; {answer['gpus_allocated']} of "
                f"{answer['gpus_total']} GPUs in use)")
    for error in answer["errors"][-5:]:
        out.print(f"[yellow]policy error[/yellow] {_when(error['at_s'])}: "
                  f"{error['message']}", highlight=False)


@app.command("fairness")
@friendly
def fairness(server: str | None = ServerOpt, token_file: Path | None = TokenFileOpt) -> None:
    """Per tenant: GPUs in use, quota, share of the cluster against its weighted share."""
    answer = client(server, token_file).get("/api/v1/fairness")
    rows = [{**t, "quota": "-" if t["gpu_quota"] is None else t["gpu_quota"],
             "share": f"{t['share']:.0%}", "fair share": f"{t['weighted_share']:.0%}"}
            for t in answer["tenants"]]
    table(rows, ["name", "gpus_in_use", "quota", "share", "weight", "fair share",
                 "running", "waiting", "held"],
          title=f"fairness ({answer['gpus_allocated']} of {answer['gpus_total']} GPUs)")
