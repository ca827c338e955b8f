"""The running jobs as columns, for policies that rank every running job at every step.

Preemptive policies ask, each time they decide, "which running jobs rank below this waiting
one?"; with hundreds of jobs running and a decision at every arrival and completion, a
loop over `Job` objects was most of a replay's time. The scheduler keeps the figures those
ranks are made of (GPU-service received, start of the present run, work checkpointed, GPUs)
in numpy arrays, one slot a job, so a rank over all running jobs is one vector expression.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dcops.scheduling.model import Job

F64 = npt.NDArray[np.float64]


class RunningTable:
    """Columns of the running jobs, by slot; `active` marks the slots in use."""

    def __init__(self, capacity: int = 256) -> None:
        self.jobs: list[Job | None] = [None] * capacity
        self.slot: dict[str, int] = {}
        self._free = list(range(capacity - 1, -1, -1))
        self.active = np.zeros(capacity, dtype=bool)
        self.preemptible = np.zeros(capacity, dtype=bool)
        self.gpus = np.zeros(capacity, dtype=np.float64)
        self.attained = np.zeros(capacity, dtype=np.float64)
        """GPU-seconds received before the present run."""
        self.started = np.zeros(capacity, dtype=np.float64)
        """Start of the present run."""
        self.checkpoint = np.zeros(capacity, dtype=np.float64)
        """Work saved when the present run began (seconds of running)."""
        self.duration = np.full(capacity, np.nan)
        """True duration (simulation only; NaN live)."""
        self.predicted = np.full(capacity, np.nan)
        self.estimate = np.full(capacity, np.nan)
        """The user's duration estimate, else the prediction (NaN: neither)."""
        self.seq = np.zeros(capacity, dtype=np.float64)
        self.node = np.full(capacity, -1, dtype=np.int64)
        """Index (in the cluster's node order) of the one node a job runs on; -1 for a
        job on several nodes."""

    def __len__(self) -> int:
        return len(self.slot)

    def add(self, job: Job, now: float, node: int = -1) -> None:
        if not self._free:
            self._grow()
        i = self._free.pop()
        self.slot[job.id] = i
        self.jobs[i] = job
        self.active[i] = True
        self.preemptible[i] = job.spec.preemptible
        self.gpus[i] = job.gpus
        self.attained[i] = job.attained_s
        self.started[i] = now
        self.checkpoint[i] = job.checkpoint_s
        self.duration[i] = np.nan if job.duration_s is None else job.duration_s
        self.predicted[i] = np.nan if job.predicted_s is None else job.predicted_s
        estimate = job.spec.duration_estimate_s
        self.estimate[i] = self.predicted[i] if estimate is None else estimate
        self.seq[i] = job.seq
        self.node[i] = node

    def remove(self, job: Job) -> None:
        i = self.slot.pop(job.id, None)
        if i is None:
            return
        self.jobs[i] = None
        self.active[i] = False
        self.preemptible[i] = False
        self._free.append(i)

    def service(self, now: float) -> F64:
        """GPU-seconds each slot's job has received by `now`."""
        out: F64 = self.attained + (now - self.started) * self.gpus
        return out

    def done(self, now: float) -> F64:
        """Seconds of work each slot's job has done by `now` (ignoring restart overhead)."""
        out: F64 = self.checkpoint + (now - self.started)
        return out

    def _grow(self) -> None:
        old = len(self.jobs)
        new = old * 2
        self.jobs.extend([None] * old)
        self._free.extend(range(new - 1, old - 1, -1))
        for name in ("active", "preemptible", "gpus", "attained", "started", "checkpoint",
                     "seq"):
            column = getattr(self, name)
            setattr(self, name, np.concatenate([column, np.zeros_like(column)]))
        self.node = np.concatenate([self.node, np.full(old, -1, dtype=np.int64)])
        for name in ("duration", "predicted", "estimate"):
            column = getattr(self, name)
            setattr(self, name, np.concatenate([column, np.full(old, np.nan)]))
