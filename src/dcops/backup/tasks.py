"""The repository work the API starts besides backups: restore, check, forget and prune.

Each task runs in its own thread on its own handle on the repository (`Repository.reopen`),
beside the backup runs, under the locks the operation takes (a prune waits out no one: it
fails while a backup holds its shared lock, and says so). One task runs at a time. Tasks
are kept in memory (the latest `KEEP`); each start and end is audited with who asked.

A restore writes only under the configured restore roots: the API must not become a way to
write any file the server can.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from dcops.access.model import AuditRecord
from dcops.access.store import AuditLog
from dcops.backup.policy import POLICY_TAG
from dcops.backup.progress import Progress, ProgressFn
from dcops.backup.repository import Repository
from dcops.backup.retention import RetentionPolicy
from dcops.core.clock import Clock
from dcops.core.errors import Conflict, DcopsError, Invalid, NotFound

log = logging.getLogger(__name__)

KEEP = 200
"""Finished tasks kept for the API."""


class TaskKind(StrEnum):
    RESTORE = "restore"
    CHECK = "check"
    FORGET = "forget"
    PRUNE = "prune"


class TaskStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class BackupTask:
    """One task: what was asked, by whom, and how it ended (`result`, or `error`). A check
    that finds damage, or a restore with files it could not restore, ends failed with
    its full result."""

    id: str
    kind: TaskKind
    actor: str
    params: dict[str, Any]
    started_at: float
    status: TaskStatus = TaskStatus.RUNNING
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind.value, "actor": self.actor,
                "params": self.params, "status": self.status.value,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "result": self.result, "error": self.error}


@dataclass(frozen=True)
class ForgetRequest:
    retention: RetentionPolicy
    group_by: str = "host,paths"
    policy: str | None = None  # only the snapshots this policy made
    dry_run: bool = False
    prune: bool = False


@dataclass(frozen=True)
class PruneRequest:
    dry_run: bool = False
    max_unused_fraction: float = 0.05
    unindexed: bool = False


Work = Callable[[Repository, ProgressFn], tuple[bool, dict[str, Any]]]
"""A task's body: on a repository handle, showing its progress; (ok, result)."""


@dataclass
class BackupTasks:
    """Tasks over the repository `repository` gives (the backup service's)."""

    repository: Callable[[], Repository]
    clock: Clock
    restore_roots: Sequence[Path]
    audit: AuditLog | None = None
    workers: int | None = None
    _tasks: OrderedDict[str, BackupTask] = field(default_factory=OrderedDict)
    _progress: dict[str, Progress] = field(default_factory=dict)
    _running: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    # -- questions --------------------------------------------------------------------

    def get(self, task_id: str) -> BackupTask:
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            raise NotFound("backup task", task_id, hint="GET /api/v1/backup/tasks lists them")
        return task

    def list(self, kind: TaskKind | None = None, limit: int = 100) -> list[BackupTask]:
        """Tasks, newest first."""
        with self._lock:
            found = [t for t in reversed(self._tasks.values()) if kind in (None, t.kind)]
        return found[:limit]

    def progress(self, task_id: str) -> dict[str, object] | None:
        with self._lock:
            progress = self._progress.get(task_id)
        return None if progress is None else progress.snapshot()

    # -- starting -----------------------------------------------------------------------

    def restore_target(self, target: str) -> Path:
        """`target` when it lies under a restore root (symlinks resolved); `Invalid`
        otherwise."""
        path = Path(target)
        if not path.is_absolute():
            raise Invalid(f"restore target {target!r} is not an absolute path",
                          where="body.target")
        resolved = Path(os.path.realpath(path))
        roots = [Path(os.path.realpath(r)) for r in self.restore_roots]
        if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
            raise Invalid(f"restore target {target} is outside the restore roots",
                          where="body.target",
                          hint=f"restore under one of {', '.join(map(str, roots))}, or add "
                               "a root to backup.restore_roots in the config")
        if resolved.exists() and not resolved.is_dir():
            raise Invalid(f"restore target {target} exists and is not a directory",
                          where="body.target")
        return resolved

    def restore(self, snapshot: str, target: str, include: Sequence[str],
                actor: str) -> BackupTask:
        """Restore `snapshot` (an id, prefix or `latest`) under `target`."""
        from dcops.backup.restorer import Restorer

        where = self.restore_target(target)
        snap = self.repository().find_snapshot(snapshot)

        def work(repo: Repository, show: ProgressFn) -> tuple[bool, dict[str, Any]]:
            result = Restorer(repo, workers=self.workers, progress=show).run(
                snap, where, include)
            return not result.failed, result.to_json()

        return self._start(TaskKind.RESTORE, {"snapshot": snap.id, "target": str(where),
                                              "include": list(include)}, actor, work)

    def check(self, read_data: bool, actor: str) -> BackupTask:
        from dcops.backup.checker import Checker

        def work(repo: Repository, show: ProgressFn) -> tuple[bool, dict[str, Any]]:
            result = Checker(repo, workers=self.workers, progress=show).run(read_data)
            return result.ok, result.to_json()

        return self._start(TaskKind.CHECK, {"read_data": read_data}, actor, work)

    def forget(self, request: ForgetRequest, actor: str) -> BackupTask:
        from dcops.backup.prune import forget

        tag = None if request.policy is None else f"{POLICY_TAG}={request.policy}"

        def work(repo: Repository, show: ProgressFn) -> tuple[bool, dict[str, Any]]:
            done = forget(repo, request.retention, dry_run=request.dry_run,
                          group_by=request.group_by,
                          among=None if tag is None else lambda s: tag in s.tags)
            out: dict[str, Any] = {
                "dry_run": request.dry_run,
                "kept": [s.id for s in done.kept], "removed": [s.id for s in done.removed],
                "decisions": [s.describe() | {"keep": keep, "reasons": list(reasons)}
                              for s, keep, reasons in done.decisions]}
            if request.prune:
                out["prune"] = _prune(repo, PruneRequest(dry_run=request.dry_run), show)
            return True, out

        params = {"retention": _retention_json(request.retention),
                  "group_by": request.group_by, "policy": request.policy,
                  "dry_run": request.dry_run, "prune": request.prune}
        return self._start(TaskKind.FORGET, params, actor, work)

    def prune(self, request: PruneRequest, actor: str) -> BackupTask:
        def work(repo: Repository, show: ProgressFn) -> tuple[bool, dict[str, Any]]:
            return True, _prune(repo, request, show)

        return self._start(TaskKind.PRUNE, asdict(request), actor, work)

    def _start(self, kind: TaskKind, params: dict[str, Any], actor: str,
               work: Work) -> BackupTask:
        now = self.clock.now()
        task_id = f"{int(now * 1000):012x}{next(self._ids) % 0x10000:04x}{secrets.token_hex(3)}"
        task = BackupTask(task_id, kind, actor, params, now)
        with self._lock:
            if self._running is not None:
                running = self._tasks[self._running]
                raise Conflict(f"backup task {running.id} ({running.kind}) is running; one "
                               "task runs at a time", where=f"backup task {running.id}",
                               hint=f"GET /api/v1/backup/tasks/{running.id} shows how it goes")
            self._running = task_id
            self._tasks[task_id] = task
            while len(self._tasks) > KEEP:
                self._tasks.popitem(last=False)
        self._audit(task, f"backup.{kind.value}", {"params": params})
        thread = threading.Thread(target=self._run, args=(task, work),
                                  name=f"backup-{kind.value}", daemon=True)
        thread.start()
        return task

    def _run(self, task: BackupTask, work: Work) -> None:
        def seen(progress: Progress) -> None:
            with self._lock:
                self._progress[task.id] = progress

        try:
            repo = self.repository().reopen()
            ok, result = work(repo, seen)
            done = replace(task, status=TaskStatus.SUCCEEDED if ok else TaskStatus.FAILED,
                           result=result, error=None if ok else _why(task.kind, result))
        except DcopsError as exc:
            done = replace(task, status=TaskStatus.FAILED, error=str(exc))
        except OSError as exc:
            done = replace(task, status=TaskStatus.FAILED,
                           error=f"{exc.filename or task.kind.value}: {exc.strerror or exc}")
        except Exception as exc:  # a broken task must not take the server with it
            log.exception("backup task %s (%s) failed", task.id, task.kind)
            done = replace(task, status=TaskStatus.FAILED,
                           error=f"internal error ({type(exc).__name__}); see the server log")
        done = replace(done, finished_at=self.clock.now())
        with self._lock:
            if task.id in self._tasks:
                self._tasks[task.id] = done
            self._progress.pop(task.id, None)
            self._running = None
        log.info("backup task %s (%s) %s%s", task.id, task.kind, done.status,
                 f": {done.error}" if done.error else "")
        self._audit(done, f"backup.{task.kind.value}.end",
                    {"status": done.status.value, "error": done.error})

    def _audit(self, task: BackupTask, action: str, details: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.record(AuditRecord(self.clock.now(), task.actor, action,
                                          f"backup-task/{task.id}", details))


def _prune(repo: Repository, request: PruneRequest, show: ProgressFn) -> dict[str, Any]:
    from dcops.backup.prune import prune

    result = prune(repo, dry_run=request.dry_run,
                   max_unused_fraction=request.max_unused_fraction,
                   unindexed=request.unindexed, progress=show)
    return asdict(result) | {"bytes_freed": result.bytes_freed}


def _retention_json(policy: RetentionPolicy) -> dict[str, Any]:
    out = {k: v for k, v in asdict(policy).items() if v and k != "keep_within"}
    if policy.keep_within is not None:
        out["keep_within"] = str(policy.keep_within)
    return out


def _why(kind: TaskKind, result: dict[str, Any]) -> str:
    if kind is TaskKind.RESTORE:
        failed = result.get("failed") or {}
        return f"{len(failed)} files could not be restored"
    problems = [p for p in result.get("problems") or [] if p.get("severity") == "error"]
    return f"{len(problems)} errors found"
