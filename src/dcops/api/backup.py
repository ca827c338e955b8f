"""Backups: the policies and their runs, running one now, and the repository's snapshots.

``GET /api/v1/backup/policies``: each policy, its latest run and success, when it is next
due and whether it is overdue. ``GET /api/v1/backup/runs?policy=``: runs, newest first.
``POST /api/v1/backup/policies/{name}/run``: queue a run now (202, with its id).
``GET /api/v1/backup/runs/{id}``: one run, with its progress while it runs.
``GET /api/v1/backup/snapshots?policy=``: the repository's snapshots, oldest first.
Without ``backup.repository`` in the config every route answers 409 saying how to set
backups up.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dcops.access.model import Role, Token
from dcops.api.auth import require
from dcops.backup.policy import POLICY_NAME, RunStatus
from dcops.backup.service import BackupService
from dcops.core.errors import Conflict, DcopsError, Unavailable
from dcops.wiring import Services

router = APIRouter(prefix="/api/v1/backup", tags=["backup"])
viewer = Depends(require(Role.VIEWER))
POLICY = Path(min_length=1, max_length=100, pattern=POLICY_NAME)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _service(request: Request) -> BackupService:
    service = _services(request).backup
    if service is None:
        raise Conflict("backups are not configured", where="backup.repository",
                       hint="set backup.repository (a directory or s3:http://host:port/"
                            "bucket/prefix) and backup.password_file in the config file, "
                            "create the repository with `dcops backup init`, and restart")
    return service


@router.get("/policies", dependencies=[viewer])
def policies(request: Request) -> dict[str, Any]:
    """Each policy with its standing."""
    service = _service(request)
    return {"repository": service.location, "policies": service.status()}


@router.get("/runs", dependencies=[viewer])
def runs(request: Request, policy: str | None = Query(None, max_length=100),
         status: RunStatus | None = Query(None),
         limit: int = Query(100, ge=1, le=10_000)) -> dict[str, Any]:
    """Runs, newest first; of one policy, or in one status, when asked."""
    service = _service(request)
    if policy is not None:
        service.policy(policy)
    found = service.runs.list(policy=policy, status=status, limit=limit)
    return {"runs": [r.to_json() for r in found], "count": len(found)}


@router.post("/policies/{name}/run", status_code=202)
def start_run(request: Request, name: str = POLICY,
              token: Token = Depends(require(Role.OPERATOR))) -> JSONResponse:
    """Queue a run of the policy now; 202 with the run's id (409 while one is queued or
    running)."""
    run = _service(request).request(name, f"token:{token.name}")
    return JSONResponse({**run.to_json(), "url": f"/api/v1/backup/runs/{run.id}"},
                        status_code=202, headers={"Location": f"/api/v1/backup/runs/{run.id}"})


@router.get("/runs/{run_id}", dependencies=[viewer])
def get_run(request: Request,
            run_id: str = Path(min_length=1, max_length=64)) -> dict[str, Any]:
    """One run; while it runs, how far it has got."""
    service = _service(request)
    run = service.runs.get(run_id)
    return {**run.to_json(), "progress": service.progress(run.id)}


@router.get("/snapshots", dependencies=[viewer])
async def snapshots(request: Request,
                    policy: str | None = Query(None, max_length=100)) -> dict[str, Any]:
    """The repository's snapshots, oldest first; those one policy made, when asked."""
    service = _service(request)
    if policy is not None:
        service.policy(policy)
    try:
        found = await run_in_threadpool(service.snapshots, policy)
    except DcopsError as exc:  # the repository, not the request, is at fault
        raise Unavailable(f"cannot read the backup repository: {exc.message}",
                          where=f"backup.repository {service.location}",
                          hint=exc.hint or "check backup.repository and "
                                           "backup.password_file") from None
    return {"repository": service.location, "snapshots": [s.describe() for s in found],
            "count": len(found)}
