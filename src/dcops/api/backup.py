"""Backups: the policies and their runs, running one now, and the repository's snapshots.

``GET /api/v1/backup/policies``: each policy, its latest run and success, when it is next
due and whether it is overdue. ``GET /api/v1/backup/runs?policy=``: runs, newest first.
``POST /api/v1/backup/policies/{name}/run``: queue a run now (202, with its id).
``GET /api/v1/backup/runs/{id}``: one run, with its progress while it runs.
``GET /api/v1/backup/snapshots?policy=``: the repository's snapshots, oldest first.
``GET /api/v1/backup/snapshots/{id}/files``: what a snapshot holds (`backup ls`).
``GET /api/v1/backup/diff?from=&to=``: what changed between two snapshots.

Restore, check, forget and prune are tasks: ``POST /api/v1/backup/restore``, ``/check``,
``/forget`` and ``/prune`` answer 202 with the task, and ``GET /api/v1/backup/tasks/{id}``
shows its progress and, once it ends, its result. ``GET/POST /api/v1/backup/keys`` and
``DELETE /api/v1/backup/keys/{id}`` manage the repository's keys.

A snapshot is named by its id, a unique prefix of it, or ``latest``. Without
``backup.repository`` in the config every route answers 409 saying how to set backups up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dcops.access.model import Role, Token
from dcops.api.auth import require
from dcops.backup.policy import POLICY_NAME, RunStatus
from dcops.backup.repository import Repository
from dcops.backup.service import BackupService
from dcops.backup.tasks import BackupTask, ForgetRequest, PruneRequest, TaskKind
from dcops.core.errors import Conflict, DcopsError, Unavailable
from dcops.wiring import Services

router = APIRouter(prefix="/api/v1/backup", tags=["backup"])
viewer = Depends(require(Role.VIEWER))
POLICY = Path(min_length=1, max_length=100, pattern=POLICY_NAME)
SNAPSHOT = Path(min_length=1, max_length=64, pattern=r"^(latest|[0-9a-f]+)$")
T = TypeVar("T")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RestoreIn(_Body):
    snapshot: str = Field(min_length=1, max_length=64, pattern=r"^(latest|[0-9a-f]+)$")
    target: str = Field(min_length=1, max_length=4096)
    include: list[str] = Field(default_factory=list, max_length=1000)


class CheckIn(_Body):
    read_data: bool = False


class ForgetIn(_Body):
    keep_last: int = Field(0, ge=0)
    keep_hourly: int = Field(0, ge=0)
    keep_daily: int = Field(0, ge=0)
    keep_weekly: int = Field(0, ge=0)
    keep_monthly: int = Field(0, ge=0)
    keep_yearly: int = Field(0, ge=0)
    keep_within: str | None = Field(None, max_length=40)
    keep_tags: list[str] = Field(default_factory=list, max_length=100)
    group_by: str = Field("host,paths", max_length=40)
    policy: str | None = Field(None, max_length=100, pattern=POLICY_NAME)
    """Only the snapshots this policy made."""
    dry_run: bool = False
    prune: bool = False
    unsafe_allow_remove_all: bool = False


class PruneIn(_Body):
    dry_run: bool = False
    max_unused: float = Field(0.05, ge=0.0, le=1.0)
    unindexed: bool = False


class KeyIn(_Body):
    password: str = Field(min_length=1, max_length=1024)


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


async def _on_repository(service: BackupService, what: Callable[[Repository], T]) -> T:
    """`what` on the service's repository, in a worker thread. Failing to open or read
    the repository is the server's trouble (503), not the request's."""
    def opened() -> Repository:
        try:
            return service.repository()
        except DcopsError as exc:
            raise Unavailable(f"cannot read the backup repository: {exc.message}",
                              where=f"backup.repository {service.location}",
                              hint=exc.hint or "check backup.repository and "
                                               "backup.password_file") from None

    def run() -> T:
        return what(opened())

    return await run_in_threadpool(run)


@router.get("/snapshots", dependencies=[viewer])
async def snapshots(request: Request,
                    policy: str | None = Query(None, max_length=100)) -> dict[str, Any]:
    """The repository's snapshots, oldest first; those one policy made, when asked."""
    service = _service(request)
    if policy is not None:
        service.policy(policy)
    found = await _on_repository(service, lambda _: service.snapshots(policy))
    return {"repository": service.location, "snapshots": [s.describe() for s in found],
            "count": len(found)}


@router.get("/snapshots/{snapshot}/files", dependencies=[viewer])
async def files(request: Request, snapshot: str = SNAPSHOT,
                include: list[str] = Query([], max_length=100),
                limit: int = Query(10_000, ge=1, le=1_000_000)) -> dict[str, Any]:
    """The snapshot's files, directories and links (those `include` selects), up to
    `limit`; `count` is how many there are."""
    from dcops.backup.restorer import included

    def listing(repo: Repository) -> tuple[str, list[dict[str, Any]]]:
        snap = repo.find_snapshot(snapshot)
        entries = [e.to_json() | {"chunks": len(e.chunks)} for e in repo.load_tree(snap)
                   if included(e.path, include)]
        return snap.id, entries

    snap_id, entries = await _on_repository(_service(request), listing)
    return {"snapshot": snap_id, "files": entries[:limit], "count": len(entries)}


@router.get("/diff", dependencies=[viewer])
async def diff(request: Request,
               first: str = Query(..., alias="from", min_length=1, max_length=64),
               second: str = Query(..., alias="to", min_length=1, max_length=64)
               ) -> dict[str, Any]:
    """What changed from snapshot `from` to snapshot `to`."""
    from dcops.backup.diff import diff as compare

    def changes(repo: Repository) -> dict[str, Any]:
        a, b = repo.find_snapshot(first), repo.find_snapshot(second)

        def size(blob_id: bytes) -> int:
            where = repo.index.get(blob_id)
            return where.raw_length if where else 0

        return {"from": a.id, "to": b.id,
                **compare(repo.load_tree(a), repo.load_tree(b), size).to_json()}

    return await _on_repository(_service(request), changes)


# -- tasks ------------------------------------------------------------------------------

def _accepted(task: BackupTask) -> JSONResponse:
    url = f"/api/v1/backup/tasks/{task.id}"
    return JSONResponse({**task.to_json(), "url": url}, status_code=202,
                        headers={"Location": url})


@router.post("/restore", status_code=202)
async def restore(request: Request, body: RestoreIn,
                  token: Token = Depends(require(Role.ADMIN))) -> JSONResponse:
    """Restore a snapshot (or the paths `include` selects) under `target`, which must lie
    under one of `backup.restore_roots`; 202 with the task."""
    service = _service(request)
    task = await _on_repository(service, lambda _: service.tasks.restore(
        body.snapshot, body.target, body.include, f"token:{token.name}"))
    return _accepted(task)


@router.post("/check", status_code=202)
async def check(request: Request, body: CheckIn | None = None,
                token: Token = Depends(require(Role.OPERATOR))) -> JSONResponse:
    """Check the repository (with `read_data`, every byte); 202 with the task. The task
    fails when errors are found; its result names them."""
    service = _service(request)
    read_data = body.read_data if body else False
    task = await _on_repository(service, lambda _: service.tasks.check(
        read_data, f"token:{token.name}"))
    return _accepted(task)


@router.post("/forget", status_code=202)
async def forget(request: Request, body: ForgetIn,
                 token: Token = Depends(require(Role.ADMIN))) -> JSONResponse:
    """Forget the snapshots a retention policy does not keep (restic's rules; only one
    backup policy's snapshots with `policy`), and prune afterwards with `prune`."""
    from dcops.backup.retention import RetentionPolicy, parse_duration

    service = _service(request)
    if body.policy is not None:
        service.policy(body.policy)
    retention = RetentionPolicy(
        keep_last=body.keep_last, keep_hourly=body.keep_hourly, keep_daily=body.keep_daily,
        keep_weekly=body.keep_weekly, keep_monthly=body.keep_monthly,
        keep_yearly=body.keep_yearly,
        keep_within=parse_duration(body.keep_within) if body.keep_within else None,
        keep_tags=tuple(body.keep_tags), allow_remove_all=body.unsafe_allow_remove_all)
    ask = ForgetRequest(retention, group_by=body.group_by, policy=body.policy,
                        dry_run=body.dry_run, prune=body.prune)
    task = await _on_repository(service, lambda _: service.tasks.forget(
        ask, f"token:{token.name}"))
    return _accepted(task)


@router.post("/prune", status_code=202)
async def prune(request: Request, body: PruneIn | None = None,
                token: Token = Depends(require(Role.ADMIN))) -> JSONResponse:
    """Free the data no snapshot needs; 202 with the task."""
    service = _service(request)
    body = body or PruneIn()
    ask = PruneRequest(dry_run=body.dry_run, max_unused_fraction=body.max_unused,
                       unindexed=body.unindexed)
    task = await _on_repository(service, lambda _: service.tasks.prune(
        ask, f"token:{token.name}"))
    return _accepted(task)


@router.get("/tasks", dependencies=[viewer])
def tasks(request: Request, kind: TaskKind | None = Query(None),
          limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """Restores, checks, forgets and prunes, newest first (those since the server
    started)."""
    found = _service(request).tasks.list(kind, limit)
    return {"tasks": [t.to_json() for t in found], "count": len(found)}


@router.get("/tasks/{task_id}", dependencies=[viewer])
def get_task(request: Request,
             task_id: str = Path(min_length=1, max_length=64)) -> dict[str, Any]:
    """One task; while it runs, how far it has got."""
    service = _service(request)
    task = service.tasks.get(task_id)
    return {**task.to_json(), "progress": service.tasks.progress(task.id)}


# -- keys -------------------------------------------------------------------------------

@router.get("/keys", dependencies=[Depends(require(Role.ADMIN))])
async def keys(request: Request) -> dict[str, Any]:
    """The keys that open the repository; `current` is the server's."""
    from dcops.backup.keys import list_keys

    found = await _on_repository(_service(request),
                                 lambda repo: list_keys(repo.storage, repo.key_name))
    return {"keys": found, "count": len(found)}


@router.post("/keys", status_code=201)
async def add_key(request: Request, body: KeyIn,
                  token: Token = Depends(require(Role.ADMIN))) -> dict[str, Any]:
    """Add a password that opens the repository."""
    from dcops.backup.keys import Credential, describe
    from dcops.backup.keys import add_key as add
    from dcops.core.secret import Secret

    service = _service(request)

    def added(repo: Repository) -> dict[str, Any]:
        name = add(repo.storage, repo.master, Credential(password=Secret(body.password)))
        return describe(repo.storage.load("keys", name), name) | {"current": False}

    key = await _on_repository(service, added)
    _audit_key(service, token, "backup.key.add", key["id"])
    return key


@router.delete("/keys/{key_id}")
async def remove_key(request: Request,
                     key_id: str = Path(min_length=4, max_length=64, pattern=r"^[0-9a-f]+$"),
                     token: Token = Depends(require(Role.ADMIN))) -> dict[str, Any]:
    """Remove a key (given by its id or a unique prefix); never the server's own."""
    from dcops.backup.keys import remove_key as remove

    service = _service(request)
    name = await _on_repository(service, lambda repo: remove(
        repo.storage, repo.master, repo.key_name, key_id))
    _audit_key(service, token, "backup.key.remove", name)
    return {"removed": name}


def _audit_key(service: BackupService, token: Token, action: str, name: str) -> None:
    from dcops.access.model import AuditRecord

    if service.audit is not None:
        service.audit.record(AuditRecord(service.clock.now(), f"token:{token.name}", action,
                                         f"backup-key/{name}", {}))
