"""dcops's own policy: shortest predicted remaining time first, preemptive, with the
prediction corrected by what a job has already run.

No oracle: a job's run time is predicted at submit time from jobs that finished before it
(`Predictor`). While a job is within its prediction, its remaining time is the prediction
less the work done; once it outlives the prediction, the prediction was wrong and the job
is probably a long one: its remaining time is taken as `tail` times the work done so far
(for heavy-tailed run times, the longer a job has run, the longer it is likely to go on:
least-attained-service order for the mispredicted). A waiting job preempts a running one
only when it ranks `margin` times lower, and only once that one has run for `min_run_s`
since it last started: together they keep checkpoint churn down.

Ranking by remaining time rather than remaining GPU-time (QSSF's measure) gave the lower
average JCT on the Philly trace (14,575 s against 16,100 s at 64 nodes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dcops.scheduling.model import Decision, Job
from dcops.scheduling.policies.base import Key, View
from dcops.scheduling.policies.preemptive import preempting_step
from dcops.scheduling.running import F64


class Best:
    name = "dcops"
    oracle = False
    preemptive = True

    def __init__(self, tail: float = 2.0, margin: float = 1.5, min_run_s: float = 120.0,
                 default_s: float = 3_600.0) -> None:
        self.tail = tail
        self.margin = margin
        self.min_run_s = min_run_s
        self.default_s = default_s

    def _remaining(self, predicted: F64, done: F64) -> F64:
        left = predicted - done
        out: F64 = np.where(left > 0, left, self.tail * np.maximum(done, 1.0))
        return out

    def _wait_rank(self, job: Job) -> float:  # the scalar form of _remaining
        predicted = job.predicted_s if job.predicted_s is not None else self.default_s
        done = job.checkpoint_s
        left = predicted - done
        return left if left > 0 else self.tail * max(done, 1.0)

    def key(self, job: Job) -> Key:
        return (self._wait_rank(job), job.submit_s, job.seq)

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        table = view.table
        predicted = np.where(np.isnan(table.predicted), self.default_s, table.predicted)
        ranks = self._remaining(predicted, table.done(now)) / self.margin
        ranks[now - table.started < self.min_run_s] = -np.inf  # runs a while before it yields
        return preempting_step(queue, view, self._wait_rank, ranks)

    def wakeups(self, job: Job, now: float) -> list[float]:
        return []
