"""Where the live scheduler's jobs are kept across restarts: the `JobStore` Protocol and
its in-memory twin. The SQL store is in `dcops.backends.sql.jobs`."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Protocol

from dcops.scheduling.model import Job


class JobStore(Protocol):
    """Jobs as last saved: the service saves each job whose state changed."""

    def save(self, jobs: Iterable[Job]) -> None:
        """Insert or replace each job (by id)."""
        ...

    def load(self) -> list[Job]:
        """Every saved job, in submission order."""
        ...


def snapshot(job: Job) -> Job:
    """A copy of `job` that later changes to it do not reach (events included)."""
    return dataclasses.replace(job, events=list(job.events))


class MemoryJobStore:
    """Jobs kept as copies in process memory: they last as long as the process."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def save(self, jobs: Iterable[Job]) -> None:
        for job in jobs:
            self._jobs[job.id] = snapshot(job)

    def load(self) -> list[Job]:
        return sorted((snapshot(j) for j in self._jobs.values()),
                      key=lambda j: (j.submit_s, j.seq))
