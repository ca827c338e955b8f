"""GPU jobs: submit, list, show, cancel and release them; the queue in the policy's order
and each tenant's share of the cluster.

``POST /api/v1/jobs``, ``GET /api/v1/jobs``, ``GET|DELETE /api/v1/jobs/{id}``,
``POST /api/v1/jobs/{id}/release``, ``GET /api/v1/jobs/{id}/log``, ``GET /api/v1/queue``,
``GET /api/v1/fairness``. Reading needs the viewer role, changing the operator role; every
change is audited with the token that made it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from dcops.access.model import AuditRecord, Role, Token
from dcops.api.auth import require
from dcops.core.errors import NotFound
from dcops.scheduling.model import Job, JobSpec, JobState
from dcops.scheduling.service import JobService
from dcops.wiring import Services

router = APIRouter(prefix="/api/v1", tags=["jobs"])
viewer = Depends(require(Role.VIEWER))
operator = Depends(require(Role.OPERATOR))

MAX_LOG_LINES = 10_000


class JobIn(BaseModel):
    """A job to run: a gang of `tasks` tasks started together, each with
    `gpus_per_task` GPUs, for `tenant`."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    tenant: str = Field("default", min_length=1, max_length=200)
    gpus_per_task: int = Field(1, ge=0, le=10_000)
    tasks: int = Field(1, ge=1, le=100_000)
    cpus_per_task: int = Field(1, ge=0, le=100_000)
    memory_mb_per_task: int = Field(1024, ge=0)
    priority: int = 0
    duration_estimate_s: float | None = Field(None, gt=0)
    checkpoint_interval_s: float | None = Field(None, gt=0)
    preemptible: bool = True
    command: list[str] = Field(default_factory=list, max_length=10_000)
    """The program and its arguments, run without a shell."""

    def spec(self) -> JobSpec:
        return JobSpec(name=self.name, tenant=self.tenant, gpus_per_task=self.gpus_per_task,
                       tasks=self.tasks, cpus_per_task=self.cpus_per_task,
                       memory_mb_per_task=self.memory_mb_per_task, priority=self.priority,
                       duration_estimate_s=self.duration_estimate_s,
                       checkpoint_interval_s=self.checkpoint_interval_s,
                       preemptible=self.preemptible, command=tuple(self.command))


def job_json(job: Job, now: float, *, events: bool = False) -> dict[str, Any]:
    spec = job.spec
    running = job.state is JobState.RUNNING and job.last_start_s is not None
    body: dict[str, Any] = {
        "id": job.id, "name": spec.name, "tenant": spec.tenant, "state": job.state.value,
        "gpus": spec.gpus, "gpus_per_task": spec.gpus_per_task, "tasks": spec.tasks,
        "cpus_per_task": spec.cpus_per_task, "memory_mb_per_task": spec.memory_mb_per_task,
        "priority": spec.priority, "preemptible": spec.preemptible,
        "command": list(spec.command), "duration_estimate_s": spec.duration_estimate_s,
        "checkpoint_interval_s": spec.checkpoint_interval_s,
        "submit_s": job.submit_s, "start_s": job.start_s, "end_s": job.end_s,
        "placement": [{"node": n, "gpus": g} for n, g in job.placement.nodes]
        if job.placement is not None and job.state is JobState.RUNNING else [],
        "reason": job.reason,
        "run_s": job.run_s + (now - job.last_start_s if running and job.last_start_s
                              is not None else 0.0),
        "gpu_service_s": job.service_s(now), "preemptions": job.preemptions,
        "restarts": job.restarts, "predicted_s": job.predicted_s,
    }
    if events:
        body["events"] = [{"at_s": at, "what": what} for at, what in job.events]
    return body


def _jobs(request: Request) -> JobService:
    services: Services = request.app.state.services
    return services.jobs


def _now(request: Request) -> float:
    services: Services = request.app.state.services
    return services.clock.now()


def _audit(request: Request, action: str, job: Job, **details: Any) -> None:
    token: Token = request.state.token
    services: Services = request.app.state.services
    services.audit.record(AuditRecord(services.clock.now(), f"token:{token.name}", action,
                                      f"job/{job.id}", details))


@router.post("/jobs", dependencies=[operator], status_code=201)
def submit(request: Request, body: JobIn) -> dict[str, Any]:
    """Submit a job; it is checked at once (a tenant it may not use, more GPUs than the
    cluster or its quota has, no command for the local executor: 400 with the reason)."""
    job = _jobs(request).submit(body.spec())
    _audit(request, "job.submit", job, name=job.spec.name, tenant=job.spec.tenant,
           gpus=job.gpus)
    return job_json(job, _now(request))


@router.get("/jobs", dependencies=[viewer])
def list_jobs(request: Request, state: JobState | None = None, tenant: str | None = None
              ) -> list[dict[str, Any]]:
    """Jobs in submission order, of `state` and `tenant` where given."""
    now = _now(request)
    return [job_json(j, now) for j in _jobs(request).jobs(state, tenant)]


@router.get("/jobs/{job_id}", dependencies=[viewer])
def show(request: Request, job_id: str) -> dict[str, Any]:
    """A job with its history."""
    return job_json(_jobs(request).get(job_id), _now(request), events=True)


@router.delete("/jobs/{job_id}", dependencies=[operator])
def cancel(request: Request, job_id: str) -> dict[str, Any]:
    """Cancel a job: a waiting one leaves the queue, a running one is stopped (SIGTERM,
    then SIGKILL after the grace period). A finished job is left as it is."""
    job = _jobs(request).cancel(job_id, "cancelled by " + request.state.token.name)
    _audit(request, "job.cancel", job)
    return job_json(job, _now(request), events=True)


@router.post("/jobs/{job_id}/release", dependencies=[operator])
def release(request: Request, job_id: str) -> dict[str, Any]:
    """Put a held job back in the queue (after fixing what held it)."""
    job = _jobs(request).release(job_id)
    _audit(request, "job.release", job)
    return job_json(job, _now(request), events=True)


@router.get("/jobs/{job_id}/log", dependencies=[viewer], response_class=PlainTextResponse)
def job_log(request: Request, job_id: str,
            tail: int = Query(200, ge=1, le=MAX_LOG_LINES)) -> PlainTextResponse:
    """The last `tail` lines of the job's output, where the executor keeps it here."""
    path = _jobs(request).log_path(job_id)
    if path is None:
        raise NotFound("log of job", job_id, hint="this executor keeps job output elsewhere")
    try:
        with path.open(errors="replace") as handle:
            lines = deque(handle, maxlen=tail)
    except FileNotFoundError:
        raise NotFound("log of job", job_id, hint="it has not started yet") from None
    return PlainTextResponse("".join(lines))


@router.get("/queue", dependencies=[viewer])
def queue(request: Request) -> dict[str, Any]:
    """Waiting jobs in the policy's order (position 1 starts next), and the policy's
    recent errors."""
    service = _jobs(request)
    now = _now(request)
    allocated, total = service.capacity()
    return {"policy": service.policy.name, "gpus_allocated": allocated, "gpus_total": total,
            "jobs": [job_json(j, now) | {"position": i}
                     for i, j in enumerate(service.queue(), start=1)],
            "errors": [{"at_s": e.at_s, "message": e.message}
                       for e in service.errors()[-20:]]}


@router.get("/fairness", dependencies=[viewer])
def fairness(request: Request) -> dict[str, Any]:
    """Per tenant: GPUs in use against its quota and the cluster, its weight and the share
    it entitles it to, its running, waiting and held jobs."""
    service = _jobs(request)
    allocated, total = service.capacity()
    return {"gpus_allocated": allocated, "gpus_total": total,
            "tenants": [{"name": t.name, "gpus_in_use": t.gpus_in_use,
                         "gpu_quota": t.gpu_quota, "weight": t.weight, "share": t.share,
                         "weighted_share": t.weighted_share, "running": t.running,
                         "waiting": t.waiting, "held": t.held}
                        for t in service.fairness()]}
