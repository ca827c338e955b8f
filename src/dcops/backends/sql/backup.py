"""The BackupRunStore Protocol over the `backup_runs` table: one row per run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Row, select

from dcops.backends.sql.rows import upsert
from dcops.backends.sql.schema import backup_runs
from dcops.backup.policy import BackupRun, RunStatus
from dcops.core.errors import NotFound


class SqlBackupRunStore:
    """Backup runs in the state database, replaced whole on each save."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def save(self, run: BackupRun) -> None:
        row = {"id": run.id, "policy": run.policy, "status": run.status.value,
               "trigger": run.trigger, "planned_at": run.planned_at,
               "started_at": run.started_at, "finished_at": run.finished_at,
               "snapshot_id": run.snapshot_id, "bytes": run.bytes,
               "bytes_added": run.bytes_added, "files": run.files, "error": run.error}
        with self._engine.begin() as conn:
            upsert(conn, backup_runs, row, ["id"])

    def get(self, run_id: str) -> BackupRun:
        with self._engine.connect() as conn:
            row = conn.execute(select(backup_runs).where(backup_runs.c.id == run_id)).first()
        if row is None:
            raise NotFound("backup run", run_id, hint="GET /api/v1/backup/runs lists them")
        return _run(row)

    def list(self, *, policy: str | None = None, status: RunStatus | None = None,
             limit: int = 100) -> list[BackupRun]:
        stmt = select(backup_runs).order_by(backup_runs.c.planned_at.desc(),
                                            backup_runs.c.id.desc()).limit(limit)
        if policy is not None:
            stmt = stmt.where(backup_runs.c.policy == policy)
        if status is not None:
            stmt = stmt.where(backup_runs.c.status == status.value)
        with self._engine.connect() as conn:
            return [_run(r) for r in conn.execute(stmt)]


def _run(row: Row[Any]) -> BackupRun:
    return BackupRun(row.id, row.policy, RunStatus(row.status), row.planned_at, row.trigger,
                     row.started_at, row.finished_at, row.snapshot_id, row.bytes,
                     row.bytes_added, row.files, row.error)
