"""dcops's own policy: shortest predicted remaining GPU-time first, preemptive, with the
prediction corrected by what a job has already run.

No oracle: a job's run time is predicted at submit time from jobs that finished before it
(`Predictor`). While a job is within its prediction, its remaining time is the prediction
less the work done; once it outlives the prediction, the prediction was wrong and the
job is probably a long one: its remaining time is taken as `tail` times the work done so
far (for heavy-tailed run times, the longer a job has run, the longer it is likely to go
on: least-attained-service order for the mispredicted). Ranks are GPU-time (remaining x
GPUs), so a wide job waits behind narrow ones of the same length. A waiting job preempts a
running one only when it ranks `margin` times lower, which keeps checkpoint churn down.
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

    def __init__(self, tail: float = 1.0, margin: float = 2.0,
                 default_s: float = 3_600.0) -> None:
        self.tail = tail
        self.margin = margin
        self.default_s = default_s

    def _remaining(self, predicted: float | F64, done: float | F64) -> F64:
        left = np.asarray(predicted, dtype=np.float64) - done
        return np.where(left > 0, left, self.tail * np.maximum(done, 1.0))

    def _wait_rank(self, job: Job) -> float:
        predicted = job.predicted_s if job.predicted_s is not None else self.default_s
        return float(self._remaining(predicted, job.checkpoint_s)) * job.gpus

    def key(self, job: Job) -> Key:
        return (self._wait_rank(job), job.submit_s, job.seq)

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        table = view.table
        predicted = np.where(np.isnan(table.predicted), self.default_s, table.predicted)
        ranks = self._remaining(predicted, table.done(now)) * table.gpus / self.margin
        return preempting_step(queue, view, self._wait_rank, ranks)

    def wakeups(self, job: Job, now: float) -> list[float]:
        return []
