"""Run-time prediction at submit time, learned only from jobs that finished before.

QSSF-style policies order the queue by predicted GPU-time. The only inputs are what a job
says when it is submitted (tenant, GPUs) and the run times of jobs that have already
finished: never the job's own duration, nor anything from the future of a trace.
"""

from __future__ import annotations

from collections import deque
from statistics import median

from dcops.scheduling.model import Job

Key = tuple[str, ...]


class Predictor:
    """The median run time of the last `window` finished jobs like this one: the same
    tenant and GPU count, else the same tenant, else the same GPU count, else any; with
    fewer than `min_samples` of a kind, the next kind is asked. `default_s` before any
    job has finished. Recent jobs weigh most: a team's jobs come in runs of similar ones
    (sweeps, retries), so the last few say more than a long history."""

    def __init__(self, window: int = 20, min_samples: int = 3,
                 default_s: float = 3_600.0) -> None:
        self.window = window
        self.min_samples = min_samples
        self.default_s = default_s
        self._seen: dict[Key, deque[float]] = {}

    @staticmethod
    def _keys(job: Job) -> tuple[Key, ...]:
        gpus = str(job.gpus)
        return (("t", job.spec.tenant, gpus), ("t", job.spec.tenant), ("g", gpus), ())

    def predict(self, job: Job) -> float:
        for key in self._keys(job):
            runs = self._seen.get(key)
            if runs is not None and len(runs) >= self.min_samples:
                return float(median(runs))
        return self.default_s

    def observe(self, job: Job, run_s: float) -> None:
        """Learn from a job that has finished after running `run_s` seconds."""
        for key in self._keys(job):
            runs = self._seen.get(key)
            if runs is None:
                runs = self._seen[key] = deque(maxlen=self.window)
            runs.append(run_s)
