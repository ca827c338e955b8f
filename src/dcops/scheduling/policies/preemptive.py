"""Preemptive policies: a waiting job that ranks above running ones takes their GPUs.

`preempting_step` is the engine they share: scan the queue in order, start what fits in
the free GPUs, and for a job that does not fit, stop running jobs that rank below it
(worst first) until it fits; if even that does not make room, nothing is stopped. A
preempted job checkpoints and waits again; its restart costs a checkpoint overhead,
which the simulator (or the real job) pays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dcops.scheduling.model import Decision, Job, JobState, Placement, Preempt, Start
from dcops.scheduling.policies.base import Key, View, in_quota, place
from dcops.scheduling.policies.ordered import _true

Rank = Callable[[Job], Key]
"""A running job's present rank, comparable with the keys of waiting jobs."""
Outranks = Callable[[Key, Key], bool]
"""Whether a waiting job (its key) may stop a running one (its rank)."""


def _lower(job_key: Key, victim_rank: Key) -> bool:
    return job_key < victim_rank


def preempting_step(queue: Sequence[Job], view: View, rank: Rank,
                    outranks: Outranks = _lower) -> list[Decision]:
    out: list[Decision] = []
    cluster = view.cluster
    victims: list[tuple[Key, Job]] | None = None  # worst last, computed when first needed
    worst: Key | None = None
    for job in queue:
        if not in_quota(job, view):
            continue
        key_now = rank(job)
        if job.gpus <= cluster.free_gpus:
            placement = place(job, view)
            if placement is not None:
                out.append(_started(job, placement, view))
                continue
        if victims is None:
            candidates = [j for j in view.running.values() if j.spec.preemptible]
            if not candidates:
                victims = []
            else:
                ranked = [(rank(j), j) for j in candidates]
                worst = max(r for r, _ in ranked)
                victims = ranked if outranks(key_now, worst) else []
                if victims:
                    victims.sort(key=lambda pair: pair[0])
        if not victims or not outranks(key_now, victims[-1][0]):
            if cluster.free_gpus == 0:
                break  # later jobs rank no higher: none can preempt, none fits
            continue
        taken: list[tuple[Key, Job]] = []
        placement = None
        while victims and outranks(key_now, victims[-1][0]):
            victim = victims.pop()
            taken.append(victim)
            if victim[1].placement is not None:
                cluster.release(victim[1].placement)
            if job.gpus <= cluster.free_gpus:
                placement = place(job, view)
                if placement is not None:
                    break
        if placement is None:  # no room even so: undo
            for victim in reversed(taken):
                if victim[1].placement is not None:
                    cluster.allocate(victim[1].placement)
                victims.append(victim)
            continue
        for _, victim_job in taken:
            view.usage[victim_job.spec.tenant] = \
                view.usage.get(victim_job.spec.tenant, 0) - victim_job.gpus
            out.append(Preempt(victim_job.id, f"outranked by {job.id}"))
        out.append(_started(job, placement, view))
    return out


def _started(job: Job, placement: Placement, view: View) -> Start:
    view.usage[job.spec.tenant] = view.usage.get(job.spec.tenant, 0) + job.gpus
    return Start(job.id, placement)


class SrtfOracle:
    """Shortest remaining time first, by the true duration (a reference): a waiting job
    with less work left than a running one preempts it."""

    name = "srtf"
    oracle = True
    preemptive = True

    def __init__(self) -> None:
        self._now = 0.0

    def key(self, job: Job) -> Key:
        return (_true(job) - job.checkpoint_s, job.submit_s, job.seq)

    def _rank(self, job: Job) -> Key:
        if job.state is not JobState.RUNNING or job.last_start_s is None:
            return self.key(job)
        done = job.checkpoint_s + max(0.0, self._now - job.last_start_s)
        return (_true(job) - done, job.submit_s, job.seq)

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        self._now = now
        return preempting_step(queue, view, self._rank)

    def wakeups(self, job: Job, now: float) -> list[float]:
        return []


class Tiresias:
    """Tiresias's discretized two-dimensional LAS (Gu et al., NSDI'19): jobs are ordered
    by the GPU-service they have received (GPUs x time), in queues split at
    `thresholds_gpu_s`; first-come first-served within a queue; a job in a higher queue
    preempts jobs in lower ones. It needs no duration information."""

    name = "tiresias"
    oracle = False
    preemptive = True

    def __init__(self, thresholds_gpu_s: Sequence[float] = (3_600.0, 36_000.0)) -> None:
        self.thresholds = tuple(sorted(thresholds_gpu_s))
        self._now = 0.0

    def level(self, service_gpu_s: float) -> int:
        for i, limit in enumerate(self.thresholds):
            if service_gpu_s < limit:
                return i
        return len(self.thresholds)

    def key(self, job: Job) -> Key:
        return (self.level(job.attained_s), job.submit_s, job.seq)

    def _rank(self, job: Job) -> Key:
        return (self.level(job.service_s(self._now)), job.submit_s, job.seq)

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        self._now = now
        return preempting_step(queue, view, self._rank, _lower_queue)

    def wakeups(self, job: Job, now: float) -> list[float]:
        gpus = max(job.gpus, 1)
        return [now + (limit - job.attained_s) / gpus for limit in self.thresholds
                if limit > job.attained_s]


def _lower_queue(job_key: Key, victim_rank: Key) -> bool:
    """Only a job of a strictly higher queue preempts (no churn within a queue)."""
    return job_key[0] < victim_rank[0]
