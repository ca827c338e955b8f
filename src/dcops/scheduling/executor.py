"""What runs the jobs the scheduler places: the `ClusterManager` Protocol.

Three implementations share it: the local executor (jobs as processes on this machine,
the embedded default), the Slurm executor (``sbatch``/``squeue``/``sacct``/``scancel``/
``scontrol``), and the trace simulator. The scheduler decides; a cluster manager carries
the decisions out and reports back what happened to each job as `JobEvent`s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dcops.scheduling.cluster import NodeInfo
from dcops.scheduling.model import Job, JobState, Placement


@dataclass(frozen=True, slots=True)
class JobEvent:
    """What happened to a job the manager runs: it started, completed, failed (a fault or
    a non-zero exit), or was requeued by the manager itself (a node went down).

    `at_s` is on the scheduler's clock; `reason` says why for failures and requeues."""

    job_id: str
    at_s: float
    state: JobState
    reason: str = ""


class ClusterManager(Protocol):
    """Runs jobs on a set of nodes and reports what becomes of them."""

    def nodes(self) -> list[NodeInfo]:
        """The nodes jobs can run on, with their health and whether they take new work."""
        ...

    def start(self, job: Job, placement: Placement) -> None:
        """Start `job` on `placement` (its GPUs are allocated by the scheduler already)."""
        ...

    def preempt(self, job: Job) -> None:
        """Stop a running job so that it can be requeued; it resumes from its last
        checkpoint when started again."""
        ...

    def cancel(self, job: Job) -> None:
        """Stop a job for good."""
        ...

    def poll(self) -> list[JobEvent]:
        """Events since the last poll, oldest first."""
        ...
