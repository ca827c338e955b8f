"""The JobStore Protocol over the `jobs` table: one row per job, its spec, progress and
history as JSON, so queued, held and finished jobs survive a restart."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, Row, select

from dcops.backends.sql.rows import upsert
from dcops.backends.sql.schema import jobs
from dcops.scheduling.model import Job, JobSpec, JobState, Placement

_PROGRESS = ("start_s", "end_s", "last_start_s", "run_s", "checkpoint_s", "attained_s",
             "preemptions", "restarts", "reason", "predicted_s")
"""Job fields kept in the `progress` column (the rest have columns, or are not kept:
`duration_s` is known only in simulation)."""


class SqlJobStore:
    """Jobs in the state database, replaced whole on each save."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def save(self, changed: Iterable[Job]) -> None:
        rows = [_row(job) for job in changed]
        if not rows:
            return
        with self._engine.begin() as conn:
            for row in rows:
                upsert(conn, jobs, row, ["id"])

    def load(self) -> list[Job]:
        stmt = select(jobs).order_by(jobs.c.submit_s, jobs.c.seq)
        with self._engine.connect() as conn:
            return [_job(r) for r in conn.execute(stmt)]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _row(job: Job) -> dict[str, Any]:
    spec = dataclasses.asdict(job.spec)
    spec["command"] = list(job.spec.command)
    progress: dict[str, Any] = {name: getattr(job, name) for name in _PROGRESS}
    for name in ("start_s", "end_s", "last_start_s", "predicted_s"):
        progress[name] = _finite(progress[name])
    progress["placement"] = ([list(n) for n in job.placement.nodes]
                             if job.placement is not None else None)
    return {"id": job.id, "seq": job.seq, "tenant": job.spec.tenant,
            "state": job.state.value, "submit_s": job.submit_s, "spec": spec,
            "progress": progress, "events": [[at, what] for at, what in job.events]}


def _job(row: Row[Any]) -> Job:
    spec_fields = dict(row.spec)
    spec_fields["command"] = tuple(spec_fields.get("command", ()))
    known = {f.name for f in dataclasses.fields(JobSpec)}
    spec = JobSpec(**{k: v for k, v in spec_fields.items() if k in known})
    progress = dict(row.progress)
    placement = progress.pop("placement", None)
    job = Job(row.id, spec, row.submit_s, JobState(row.state), row.seq,
              events=[(float(at), str(what)) for at, what in row.events],
              placement=Placement(tuple((str(n), int(g)) for n, g in placement))
              if placement else None)
    for name in _PROGRESS:
        if name in progress:
            setattr(job, name, progress[name])
    return job
