"""The in-memory twin of a cluster manager: one that runs nothing (a started job runs until
a test finishes it), for API tests and in-memory services."""

from __future__ import annotations

from collections.abc import Iterable

from dcops.scheduling.cluster import NodeInfo
from dcops.scheduling.executor import JobEvent
from dcops.scheduling.model import Job, JobState, Placement


class MemoryClusterManager:
    """A `ClusterManager` over fixed nodes that starts nothing real: a started job runs
    until `finish` reports it done, so tests decide when each job ends."""

    def __init__(self, nodes: Iterable[NodeInfo]) -> None:
        self._nodes = list(nodes)
        self.started: dict[str, Placement] = {}
        """Running jobs and where they run."""
        self.stopped: list[tuple[str, str]] = []
        """(job id, "preempted" or "cancelled"), in order."""
        self._events: list[JobEvent] = []

    def nodes(self) -> list[NodeInfo]:
        return list(self._nodes)

    def start(self, job: Job, placement: Placement) -> None:
        self.started[job.id] = placement

    def preempt(self, job: Job) -> None:
        self.started.pop(job.id, None)
        self.stopped.append((job.id, "preempted"))

    def cancel(self, job: Job) -> None:
        self.started.pop(job.id, None)
        self.stopped.append((job.id, "cancelled"))

    def finish(self, job_id: str, at_s: float, state: JobState = JobState.COMPLETED,
               reason: str = "") -> None:
        """Report a running job ended (completed, failed, or requeued by a fault)."""
        self.started.pop(job_id, None)
        self._events.append(JobEvent(job_id, at_s, state, reason))

    def poll(self) -> list[JobEvent]:
        events, self._events = self._events, []
        return events

