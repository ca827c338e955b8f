"""Non-preemptive policies that differ only in the order of the queue: FIFO, SJF with
oracle durations, and QSSF-style shortest predicted GPU-time first.

As in the Helios simulator, they scan the sorted queue and stop at the first job that does
not fit (strict head-of-line blocking), so a large job at the head is never starved by
smaller ones behind it.
"""

from __future__ import annotations

from dcops.core.errors import Invalid
from dcops.scheduling.model import Job
from dcops.scheduling.policies.base import Key, Ordered


class Fifo(Ordered):
    """First in, first out."""

    name = "fifo"


class SjfOracle(Ordered):
    """Shortest job first by the true duration (a reference: no scheduler knows it)."""

    name = "sjf"
    oracle = True

    def key(self, job: Job) -> Key:
        return (_true(job), job.submit_s, job.seq)


class Qssf(Ordered):
    """Quasi-shortest-service first (Helios, SC'21): shortest predicted GPU-time
    (predicted duration x GPUs) first, the prediction made at submit time from what had
    finished by then (`Job.predicted_s`)."""

    name = "qssf"

    def key(self, job: Job) -> Key:
        predicted = job.predicted_s if job.predicted_s is not None else float("inf")
        return (predicted * job.gpus, job.submit_s, job.seq)


def _true(job: Job) -> float:
    if job.duration_s is None:
        raise Invalid(f"job {job.id} has no known duration",
                      hint="oracle policies (sjf, srtf) run only in simulation")
    return job.duration_s
