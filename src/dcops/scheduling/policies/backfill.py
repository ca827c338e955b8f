"""EASY backfill (Lifka, 1995; Slurm's sched/backfill does the same in spirit): first come,
first served, but while the job at the head of the queue waits for GPUs, later jobs may
start now if they do not delay it: they finish (by their estimate) before the head job's
reserved start, or use only GPUs the head job will not need then.

The estimate is the user's `duration_estimate_s` when given, else the submit-time
prediction (`Job.predicted_s`), else `default_s`; GPU counts are compared without node
shapes, as EASY does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dcops.scheduling.model import Decision, Job
from dcops.scheduling.policies.base import Key, View, in_quota, place, started


class EasyBackfill:
    name = "easy"
    oracle = False
    preemptive = False

    def __init__(self, default_s: float = 3_600.0) -> None:
        self.default_s = default_s

    def estimate(self, job: Job) -> float:
        if job.spec.duration_estimate_s is not None:
            return job.spec.duration_estimate_s
        return job.predicted_s if job.predicted_s is not None else self.default_s

    def key(self, job: Job) -> Key:
        return (-job.spec.priority, job.submit_s, job.seq)

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        out: list[Decision] = []
        cluster = view.cluster
        shadow: float | None = None  # when the head job can start
        extra = 0  # GPUs free at `shadow` beyond what the head job needs
        for job in queue:
            if cluster.free_gpus == 0:
                break
            if not in_quota(job, view):
                continue
            if shadow is not None and not (now + self.estimate(job) <= shadow
                                           or job.gpus <= extra):
                continue
            placement = place(job, view)
            if placement is None:
                if shadow is None:
                    shadow, extra = self._reserve(job, now, view)
                continue
            if shadow is not None and now + self.estimate(job) > shadow:
                extra -= job.gpus
            out.append(started(job, placement, view))
        return out

    def _reserve(self, head: Job, now: float, view: View) -> tuple[float, int]:
        """The head job's reserved start (the earliest time enough GPUs are free, by the
        running jobs' estimates) and the GPUs left over then."""
        table = view.table
        slots = np.flatnonzero(table.active)
        free = view.cluster.free_gpus
        if not len(slots):
            return now, free - head.gpus
        estimates = table.estimate[slots]
        estimates = np.where(np.isnan(estimates), self.default_s, estimates)
        ends = np.maximum(table.started[slots] + estimates - table.checkpoint[slots], now)
        order = np.argsort(ends, kind="stable")
        freed = free + np.cumsum(table.gpus[slots][order])
        enough = np.flatnonzero(freed >= head.gpus)
        if not len(enough):
            return float("inf"), 0
        at = int(enough[0])
        return float(ends[order][at]), int(freed[at]) - head.gpus

    def wakeups(self, job: Job, now: float) -> list[float]:
        return []
