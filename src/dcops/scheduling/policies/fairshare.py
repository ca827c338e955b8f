"""Weighted fair share: dominant resource fairness (Ghodsi et al., NSDI'11) across tenants,
within their quotas.

Each step, the tenant whose dominant share (the largest of its shares of the cluster's
GPUs, CPUs and memory, divided by its weight) is lowest starts its oldest waiting job, if
it fits and keeps the tenant within its GPU quota; then shares are updated and the next
lowest goes. A tenant whose oldest job does not fit waits (no overtaking within a tenant).
The queue is kept sorted by tenant, then submission, so each tenant's oldest job is found
by bisection, however long the queue.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Sequence

from dcops.scheduling.model import Decision, Job
from dcops.scheduling.policies.base import Key, View, in_quota, place, started


class FairShare:
    name = "fairshare"
    oracle = False
    preemptive = False

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._names: list[str] = []

    def _id(self, tenant: str) -> int:
        found = self._ids.get(tenant)
        if found is None:
            found = self._ids[tenant] = len(self._names)
            self._names.append(tenant)
        return found

    def key(self, job: Job) -> Key:
        return (float(self._id(job.spec.tenant)), job.submit_s, job.seq)

    def share(self, tenant: str, view: View) -> float:
        """The tenant's dominant share over its weight (GPUs, and CPUs and memory where
        the view carries them)."""
        total = max(view.cluster.total_gpus, 1)
        gpus = view.usage.get(tenant, 0) / total
        cpus = view.cpu_usage.get(tenant, 0) / max(view.total_cpus, 1)
        memory = view.memory_usage.get(tenant, 0) / max(view.total_memory_mb, 1)
        known = view.tenants.get(tenant)
        weight = known.weight if known is not None and known.weight > 0 else 1.0
        return max(gpus, cpus, memory) / weight

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        out: list[Decision] = []
        if not queue:
            return out
        tenant_of = self._tenant_index
        heads: dict[int, int] = {}  # tenant id -> index of its oldest waiting job
        for tid in range(len(self._names)):
            at = bisect_left(queue, tid, key=tenant_of)
            if at < len(queue) and tenant_of(queue[at]) == tid:
                heads[tid] = at
        ready = [(self.share(self._names[tid], view), tid) for tid in heads]
        heapq.heapify(ready)
        cluster = view.cluster
        while ready and cluster.free_gpus > 0:
            _, tid = heapq.heappop(ready)
            job = queue[heads[tid]]
            if not in_quota(job, view):
                continue
            placement = place(job, view)
            if placement is None:
                continue  # its oldest job waits; the tenant waits with it
            out.append(started(job, placement, view))
            nxt = heads[tid] + 1
            if nxt < len(queue) and tenant_of(queue[nxt]) == tid:
                heads[tid] = nxt
                heapq.heappush(ready, (self.share(job.spec.tenant, view), tid))
        return out

    def _tenant_index(self, job: Job) -> int:
        return self._id(job.spec.tenant)

    def wakeups(self, job: Job, now: float) -> list[float]:
        return []
