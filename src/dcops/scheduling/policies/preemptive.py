"""Preemptive policies: a waiting job that ranks above running ones takes their GPUs.

`preempting_step` is the engine they share: scan the queue in order, start what fits in
the free GPUs, and for a job that does not fit, stop running jobs that rank below it
(worst first) until it fits; if even that does not make room, nothing is stopped. Ranks
are single numbers, lower first: a waiting job's from its `Job`, every running job's at
once from the scheduler's `RunningTable` columns. A preempted job checkpoints and waits
again; its restart costs a checkpoint overhead, which the simulator (or the real job) pays.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence

import numpy as np

from dcops.scheduling.model import Decision, Job, Placement, Preempt
from dcops.scheduling.policies.base import Key, View, in_quota, place, started
from dcops.scheduling.policies.ordered import _true
from dcops.scheduling.running import F64

WaitRank = Callable[[Job], float]


def preempting_step(queue: Sequence[Job], view: View, wait_rank: WaitRank,
                    run_rank: F64) -> list[Decision]:
    """Decisions for `queue` (sorted so that `wait_rank` never falls along it), with
    `run_rank` the rank of each slot of `view.table` now."""
    out: list[Decision] = []
    cluster, table = view.cluster, view.table
    candidates = table.active & table.preemptible
    ranks = np.where(candidates, run_rank, -np.inf)
    worst = float(ranks.max()) if len(table) else -np.inf
    victims: list[int] | None = None  # slots, best first (the worst is popped first)
    unfit = no_room = np.inf
    # the fewest GPUs that did not fit in the free GPUs / could not be made room for this
    # step: a job as wide or wider fails the same way (fewer victims rank below it), so the
    # scan skips it, and stops once neither can succeed for any job
    for job in queue:
        if not in_quota(job, view):
            continue
        gpus = job.gpus
        if gpus < unfit and gpus <= cluster.free_gpus:
            placement = place(job, view)
            if placement is not None:
                out.append(started(job, placement, view))
                continue
        unfit = min(unfit, gpus)
        rank = wait_rank(job)
        if rank >= worst or gpus >= no_room:  # no room to be made for it, nor for later ones
            if (cluster.free_gpus == 0 or unfit <= 1) and (rank >= worst or no_room <= 1):
                break
            continue
        if not _room_possible(job, rank, ranks, view):
            no_room = min(no_room, gpus)
            continue
        if victims is None:
            slots = np.flatnonzero(candidates)
            order = np.lexsort((table.seq[slots], ranks[slots]))  # worst last
            victims = [int(i) for i in slots[order]]
        placement, taken = _make_room(job, rank, ranks, victims, view)
        if placement is None:
            no_room = min(no_room, gpus)
            continue
        ranks[taken] = -np.inf  # stopped: no longer running in this view
        for slot in taken:
            victim = table.jobs[slot]
            assert victim is not None
            view.use(victim, -1)
            out.append(Preempt(victim.id, f"outranked by {job.id}"))
        out.append(started(job, placement, view))
        worst = float(ranks[victims[-1]]) if victims else -np.inf
        unfit = np.inf  # what the victims freed beyond this job's need is free now
    return out


def _room_possible(job: Job, rank: float, ranks: F64, view: View) -> bool:
    """Whether stopping every running job ranked below `rank` could make room for a
    one-node `job` on some node (counted without releasing anything); jobs wider than a
    node, or victims on several nodes, are not judged here (True)."""
    cluster, table = view.cluster, view.table
    if job.gpus > cluster.max_gpus:
        return True
    below = ranks > rank
    if (below & (table.node < 0)).any():
        return True
    free = np.fromiter((f if cluster.usable(name) else 0 for name, f in cluster.free.items()),
                       dtype=np.float64, count=len(cluster.free))
    nodes = table.node[below]
    if len(nodes) and int(nodes.max()) >= len(free):
        return True  # a node the view does not know: let the release say
    freed = np.bincount(nodes, weights=table.gpus[below], minlength=len(free))
    usable = np.fromiter((cluster.usable(name) for name in cluster.free), dtype=bool,
                         count=len(free))
    return bool(((free + freed)[usable] >= job.gpus).any())


def _make_room(job: Job, rank: float, ranks: F64, victims: list[int], view: View
               ) -> tuple[Placement | None, list[int]]:
    """Stop the worst-ranked running jobs below `rank` until `job` fits, then keep only
    those on the nodes it is placed on (the rest run on); undone if it never fits."""
    cluster, table = view.cluster, view.table
    taken: list[int] = []
    placement = None
    while victims and ranks[victims[-1]] > rank:
        slot = victims.pop()
        taken.append(slot)
        victim = table.jobs[slot]
        if victim is not None and victim.placement is not None:
            cluster.release(victim.placement)
        if job.gpus <= cluster.free_gpus:
            placement = place(job, view)
            if placement is not None:
                return placement, _keep_needed(placement, taken, victims, view)
    for slot in reversed(taken):
        victim = table.jobs[slot]
        if victim is not None and victim.placement is not None:
            cluster.allocate(victim.placement)
        victims.append(slot)
    return None, []


def _keep_needed(placement: Placement, taken: list[int], victims: list[int], view: View
                 ) -> list[int]:
    """Of the jobs stopped to make room, those on the placement's nodes; the others are
    given their GPUs back and stay candidates, in their order."""
    cluster, table = view.cluster, view.table
    used = set(placement.node_names)
    needed: list[int] = []
    for slot in reversed(taken):
        victim = table.jobs[slot]
        on = victim.placement.node_names if victim and victim.placement else ()
        if used.intersection(on):
            needed.append(slot)
        else:
            if victim is not None and victim.placement is not None:
                cluster.allocate(victim.placement)
            victims.append(slot)
    return needed[::-1]


class SrtfOracle:
    """Shortest remaining time first, by the true duration (a reference): a waiting job
    with less work left than a running one preempts it."""

    name = "srtf"
    oracle = True
    preemptive = True

    def key(self, job: Job) -> Key:
        return (self._remaining(job), job.submit_s, job.seq)

    @staticmethod
    def _remaining(job: Job) -> float:
        return _true(job) - job.checkpoint_s

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        table = view.table
        return preempting_step(queue, view, self._remaining,
                               table.duration - table.done(now))

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
        self.thresholds = np.array(sorted(thresholds_gpu_s), dtype=np.float64)
        self._limits = tuple(float(t) for t in self.thresholds)

    def level(self, service_gpu_s: float) -> int:
        return bisect_right(self._limits, service_gpu_s)

    def key(self, job: Job) -> Key:
        return (self.level(job.attained_s), job.submit_s, job.seq)

    def _wait_rank(self, job: Job) -> float:
        return float(self.level(job.attained_s))

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        levels = np.searchsorted(self.thresholds, view.table.service(now), side="right")
        return preempting_step(queue, view, self._wait_rank, levels.astype(np.float64))

    def wakeups(self, job: Job, now: float) -> list[float]:
        gpus = max(job.gpus, 1)
        return [now + (float(limit) - job.attained_s) / gpus for limit in self.thresholds
                if limit > job.attained_s]
