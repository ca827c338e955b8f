"""What every scheduling policy is: a pure `step(now, queue, view) -> decisions`.

A policy orders the waiting jobs by its `key` (fixed while a job waits, so the scheduler
keeps the queue sorted as jobs arrive instead of sorting it every step) and decides, from
the queue, the running jobs and the free GPUs, which jobs start where and which running
jobs make way. It changes nothing itself: the scheduler checks and carries out its
decisions, live and in the simulator alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dcops.scheduling.cluster import Cluster
from dcops.scheduling.model import Decision, Job, Placement, Start, Tenant
from dcops.scheduling.placement import Placer
from dcops.scheduling.running import RunningTable

Key = tuple[float, ...]


@dataclass(slots=True)
class View:
    """What a policy sees besides the queue: the cluster's free GPUs (a scratch copy the
    policy may allocate on while it decides), the running jobs, the tenants and their
    GPUs in use, and the placer to use."""

    cluster: Cluster
    running: dict[str, Job]
    placer: Placer
    tenants: dict[str, Tenant] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    """GPUs in use per tenant."""
    table: RunningTable = field(default_factory=RunningTable)
    """The running jobs as columns (read-only for policies)."""
    cpu_usage: dict[str, int] = field(default_factory=dict)
    memory_usage: dict[str, int] = field(default_factory=dict)
    """CPUs and MB of memory in use per tenant (for dominant-resource fairness)."""
    total_cpus: int = 0
    total_memory_mb: int = 0

    def use(self, job: Job, sign: int = 1) -> None:
        """Count `job`'s GPUs, CPUs and memory against its tenant (-1: give them back)."""
        charge(job, sign, self.usage, self.cpu_usage, self.memory_usage)


def charge(job: Job, sign: int, gpus: dict[str, int], cpus: dict[str, int],
           memory_mb: dict[str, int]) -> None:
    """Add (sign 1) or take back (-1) `job`'s resources in per-tenant tallies."""
    tenant, spec = job.spec.tenant, job.spec
    gpus[tenant] = gpus.get(tenant, 0) + sign * job.gpus
    cpus[tenant] = cpus.get(tenant, 0) + sign * spec.cpus_per_task * spec.tasks
    memory_mb[tenant] = memory_mb.get(tenant, 0) + sign * spec.memory_mb_per_task * spec.tasks


def started(job: Job, placement: Placement, view: View) -> Start:
    """A start decision, its resources counted in the view."""
    view.use(job)
    return Start(job.id, placement)


class Policy(Protocol):
    """A scheduling policy."""

    name: str
    oracle: bool
    """It reads true durations (`Job.duration_s`): a reference, not for production."""
    preemptive: bool

    def key(self, job: Job) -> Key:
        """A waiting job's place in the queue (lowest first)."""
        ...

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        """The decisions to carry out now."""
        ...

    def wakeups(self, job: Job, now: float) -> list[float]:
        """Times, after `job` starts at `now`, at which this policy wants to decide again
        even if nothing else happens (Tiresias: when the job crosses a queue threshold)."""
        ...


def place(job: Job, view: View) -> Placement | None:
    """Place `job` with the view's placer, taking its GPUs on the scratch cluster."""
    if job.gpus > view.cluster.free_gpus:
        return None
    placement = view.placer.place(job, view.cluster)
    if placement is not None:
        view.cluster.allocate(placement)
    return placement


def in_quota(job: Job, view: View) -> bool:
    tenant = view.tenants.get(job.spec.tenant)
    if tenant is None or tenant.gpu_quota is None:
        return True
    return view.usage.get(job.spec.tenant, 0) + job.gpus <= tenant.gpu_quota


def start_in_order(queue: Sequence[Job], view: View, *, blocking: bool) -> list[Decision]:
    """Start waiting jobs in queue order while they fit. `blocking`: stop at the first
    that does not (strict head-of-line blocking, as in the Helios simulator); otherwise
    skip it and go on."""
    out: list[Decision] = []
    cluster = view.cluster
    for job in queue:
        if cluster.free_gpus == 0:
            break
        if not in_quota(job, view):
            continue
        placement = place(job, view)
        if placement is None:
            if blocking:
                break
            continue
        out.append(started(job, placement, view))
    return out


class Ordered:
    """Non-preemptive: start waiting jobs in `key` order while they fit."""

    name = "ordered"
    oracle = False
    preemptive = False
    blocking = True

    def key(self, job: Job) -> Key:
        return (job.submit_s, job.seq)

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        return start_in_order(queue, view, blocking=self.blocking)

    def wakeups(self, job: Job, now: float) -> list[float]:
        return []
