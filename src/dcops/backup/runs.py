"""Where backup runs are recorded: the `BackupRunStore` Protocol and its in-memory twin.
The SQL store (the ``backup_runs`` table) is `dcops.backends.sql.backup`."""

from __future__ import annotations

import threading
from typing import Protocol

from dcops.backup.policy import BackupRun, RunStatus
from dcops.core.errors import NotFound


class BackupRunStore(Protocol):
    """Backup runs by id."""

    def save(self, run: BackupRun) -> None:
        """Insert the run, or replace the one with its id."""
        ...

    def get(self, run_id: str) -> BackupRun:
        """The run; `NotFound` if there is none."""
        ...

    def list(self, *, policy: str | None = None, status: RunStatus | None = None,
             limit: int = 100) -> list[BackupRun]:
        """Newest first (by when they were planned, then by id: ids sort as made)."""
        ...


class MemoryBackupRunStore:
    """Runs in process memory, safe to use from several threads."""

    def __init__(self) -> None:
        self._runs: dict[str, BackupRun] = {}
        self._lock = threading.Lock()

    def save(self, run: BackupRun) -> None:
        with self._lock:
            self._runs[run.id] = run

    def get(self, run_id: str) -> BackupRun:
        with self._lock:
            found = self._runs.get(run_id)
        if found is None:
            raise NotFound("backup run", run_id, hint="GET /api/v1/backup/runs lists them")
        return found

    def list(self, *, policy: str | None = None, status: RunStatus | None = None,
             limit: int = 100) -> list[BackupRun]:
        with self._lock:
            runs = list(self._runs.values())
        chosen = [r for r in runs if (policy is None or r.policy == policy)
                  and (status is None or r.status is status)]
        chosen.sort(key=lambda r: (r.planned_at, r.id), reverse=True)
        return chosen[:limit]
