"""The live scheduling service: one `Scheduler` over an injected cluster manager, behind a
lock, driven by `tick` (poll the manager, handle what happened, schedule).

The API and CLI submit, cancel and release jobs through it, and read the queue and each
tenant's share from it; the server calls `run` in a thread of its own. What it hands out
are copies, so a caller never sees a job change under it. Jobs are saved to a `JobStore`
when they change and restored when the service is built again: waiting and held jobs keep
their place, jobs that were running when the control plane stopped go back to the queue
(or are held, where the manager may still be running them).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from dcops.core.clock import Clock
from dcops.core.errors import Invalid, NotFound
from dcops.scheduling.cluster import NodeInfo
from dcops.scheduling.executor import ClusterManager
from dcops.scheduling.model import FINAL, WAITING, Decision, Job, JobSpec, JobState, Tenant
from dcops.scheduling.placement import Placer
from dcops.scheduling.policies import LIVE
from dcops.scheduling.policies import POLICIES as ALL
from dcops.scheduling.policies.base import Policy
from dcops.scheduling.predictor import Predictor
from dcops.scheduling.scheduler import Scheduler
from dcops.scheduling.store import JobStore, MemoryJobStore, snapshot

log = logging.getLogger(__name__)

POLICIES: Mapping[str, Callable[[], Policy]] = {name: ALL[name] for name in LIVE}
"""Policies a live cluster may run, by name (the oracle ones, SJF and SRTF, read true
durations and run only in the simulator)."""

MAX_ERRORS = 1_000
"""Policy errors kept for the API (the oldest go first)."""


@runtime_checkable
class Admits(Protocol):
    """A cluster manager with requirements of its own on a job (the local executor needs a
    command); `check` raises `Invalid` with the reason."""

    def check(self, job: Job) -> None: ...


@runtime_checkable
class KeepsLogs(Protocol):
    """A cluster manager that writes each job's output to a file on this machine."""

    def log_path(self, job_id: str) -> Path: ...


def policy_named(name: str) -> Policy:
    factory = POLICIES.get(name)
    if factory is None:
        raise Invalid(f"unknown scheduling policy {name!r}", where="scheduling.policy",
                      hint=f"one of: {', '.join(sorted(POLICIES))}")
    return factory()


@dataclass(frozen=True, slots=True)
class TenantShare:
    """Where a tenant stands now: GPUs in use against its quota and the cluster, its
    waiting and held jobs, and the share its weight entitles it to."""

    name: str
    gpus_in_use: int
    gpu_quota: int | None
    weight: float
    share: float
    """GPUs in use / the cluster's GPUs."""
    weighted_share: float
    """weight / the sum of all tenants' weights: its fair share of the cluster."""
    running: int
    waiting: int
    held: int


@dataclass(frozen=True, slots=True)
class PolicyError:
    at_s: float
    message: str


class JobService:
    """Jobs on one cluster under one policy, safe to call from many threads."""

    def __init__(self, manager: ClusterManager, clock: Clock, *,
                 policy: Policy | str = "fifo", tenants: Iterable[Tenant] = (),
                 store: JobStore | None = None, requeue_running: bool = True,
                 placer: Placer | None = None) -> None:
        self.manager = manager
        self.clock = clock
        self.store: JobStore = store or MemoryJobStore()
        chosen = policy_named(policy) if isinstance(policy, str) else policy
        self.scheduler = Scheduler(chosen, manager, tenants=tenants, predictor=Predictor(),
                                   placer=placer)
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._saved: dict[str, tuple[JobState, int]] = {}
        self._restore(requeue_running)

    @property
    def policy(self) -> Policy:
        return self.scheduler.policy

    # -- changes ----------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> Job:
        """Admit a job (`Invalid` with the reason when it can never run here) and queue it;
        it starts at the next tick that finds room for it."""
        with self._lock:
            now = self.clock.now()
            job = Job(str(next(self._ids)), spec, now)
            if isinstance(self.manager, Admits):
                self.manager.check(job)
            self.scheduler.submit(job, now)  # held, with the error, if the policy fails
            self._save()
            return snapshot(job)

    def cancel(self, job_id: str, reason: str = "cancelled") -> Job:
        with self._lock:
            job = self.scheduler.cancel(job_id, self.clock.now(), reason)
            self._save()
            return snapshot(job)

    def release(self, job_id: str) -> Job:
        """Put a held job back in the queue."""
        with self._lock:
            job = self.scheduler.release(job_id, self.clock.now())
            self._save()
            return snapshot(job)

    def tick(self, now: float | None = None) -> list[Decision]:
        """Take in what the manager reports, then let the policy place waiting jobs."""
        with self._lock:
            now = self.clock.now() if now is None else now
            for event in self.manager.poll():
                self.scheduler.handle(event)
            decisions = self.scheduler.schedule(now)
            del self.scheduler.errors[:-MAX_ERRORS]
            self._save()
            return decisions

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Tick every `interval_s` until `stop` is set; a failing tick is logged and the
        loop goes on."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduling tick failed; next in %.1fs", interval_s)
            stop.wait(interval_s)

    # -- nodes, for health remediation -------------------------------------------------

    def set_node(self, name: str, *, schedulable: bool | None = None,
                 suspect: bool | None = None, reason: str | None = None) -> NodeInfo:
        """Drain or resume a node, or mark it suspect (placement avoids it)."""
        with self._lock:
            return self.scheduler.set_node(name, schedulable=schedulable, suspect=suspect,
                                           reason=reason)

    def node(self, name: str) -> tuple[NodeInfo, list[str]]:
        """The node as the scheduler sees it, and the ids of the jobs running on it."""
        with self._lock:
            node = self.scheduler.cluster.nodes.get(name)
            if node is None:
                raise NotFound("node", name, hint="the scheduler's nodes are its executor's")
            return node, self.scheduler.jobs_on(name)

    def requeue(self, job_ids: Iterable[str], reason: str) -> list[str]:
        """Stop these running jobs and queue them again (they restart from their last
        checkpoint); returns those that were running. Unknown ids are skipped."""
        with self._lock:
            now = self.clock.now()
            done = [job_id for job_id in job_ids if job_id in self.scheduler.jobs
                    and self.scheduler.requeue(job_id, now, reason)]
            self._save()
            return done

    # -- questions --------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with self._lock:
            return snapshot(self._job(job_id))

    def jobs(self, state: JobState | None = None, tenant: str | None = None) -> list[Job]:
        """Jobs in submission order, of `state` and `tenant` where given."""
        with self._lock:
            return [snapshot(j) for j in self.scheduler.jobs.values()
                    if (state is None or j.state is state)
                    and (tenant is None or j.spec.tenant == tenant)]

    def queue(self) -> list[Job]:
        """Waiting jobs in the policy's order: the first is the next to start."""
        with self._lock:
            return [snapshot(j) for j in self.scheduler.waiting()]

    def log_path(self, job_id: str) -> Path | None:
        """Where the job's output is written, where the manager keeps it on this machine."""
        self.get(job_id)
        if isinstance(self.manager, KeepsLogs):
            return self.manager.log_path(job_id)
        return None

    def errors(self) -> list[PolicyError]:
        with self._lock:
            return [PolicyError(at, what) for at, what in self.scheduler.errors]

    def capacity(self) -> tuple[int, int]:
        """(GPUs allocated, GPUs in the cluster)."""
        with self._lock:
            return self.scheduler.allocated_gpus, self.scheduler.cluster.total_gpus

    def fairness(self) -> list[TenantShare]:
        """Each tenant configured or with jobs, by name."""
        with self._lock:
            scheduler = self.scheduler
            tenants = dict(scheduler.tenants)
            for job in scheduler.jobs.values():
                tenants.setdefault(job.spec.tenant, Tenant(job.spec.tenant))
            total_weight = sum(t.weight for t in tenants.values()) or 1.0
            total_gpus = scheduler.cluster.total_gpus
            counts = {name: {s: 0 for s in ("running", "waiting", "held")} for name in tenants}
            for job in scheduler.jobs.values():
                kind = ("running" if job.state is JobState.RUNNING else
                        "waiting" if job.state in WAITING else
                        "held" if job.state is JobState.HELD else None)
                if kind is not None:
                    counts[job.spec.tenant][kind] += 1
            out = []
            for name in sorted(tenants):
                tenant = tenants[name]
                used = scheduler.usage.get(name, 0)
                out.append(TenantShare(
                    name, used, tenant.gpu_quota, tenant.weight,
                    used / total_gpus if total_gpus else 0.0, tenant.weight / total_weight,
                    counts[name]["running"], counts[name]["waiting"], counts[name]["held"]))
            return out

    # -- bookkeeping ------------------------------------------------------------------

    def _job(self, job_id: str) -> Job:
        job = self.scheduler.jobs.get(job_id)
        if job is None:
            raise NotFound("job", job_id, hint="`dcops jobs list` shows the jobs")
        return job

    def _save(self) -> None:
        """Save the jobs whose state or history changed since they were last saved."""
        changed = []
        for job in self.scheduler.jobs.values():
            mark = (job.state, len(job.events))
            if self._saved.get(job.id) != mark:
                self._saved[job.id] = mark
                changed.append(job)
        if changed:
            self.store.save(changed)

    def _restore(self, requeue_running: bool) -> None:
        """Bring back saved jobs: final and held ones as they were, waiting ones into the
        queue in their old order, running ones requeued (or held)."""
        jobs = self.store.load()
        numbers = [int(j.id) for j in jobs if j.id.isdigit()]
        self._ids = itertools.count(max(numbers, default=0) + 1)
        now = self.clock.now()
        scheduler = self.scheduler
        for job in jobs:
            self._saved[job.id] = (job.state, len(job.events))
            was = job.state
            if was is JobState.RUNNING and not requeue_running:
                self._interrupted(job, now, JobState.HELD)
            if job.state in FINAL or job.state is JobState.HELD:
                scheduler.jobs[job.id] = job
                continue
            job.seq = 0  # numbered again, in the same order
            job.placement = None
            try:
                scheduler.submit(job, now)
            except Exception as exc:  # the settings changed (quota, nodes) or the policy
                scheduler.jobs[job.id] = job
                job.state, job.end_s = JobState.FAILED, now
                job.reason = f"cannot be queued again after a restart: {exc}"
                job.events.append((now, f"failed: {job.reason}"))
                continue
            job.events[-1] = (now, "restored after a restart")
            if was is JobState.RUNNING:
                self._interrupted(job, now, JobState.REQUEUED)
            elif was is JobState.REQUEUED:
                job.state = was
        self._save()
        if jobs:
            log.info("restored %d jobs (%d waiting)", len(jobs), len(scheduler.waiting()))

    def _interrupted(self, job: Job, now: float, state: JobState) -> None:
        """A job that was running when the control plane stopped: requeued (it resumes
        from its last checkpoint) or held for a person to decide (the manager may still
        be running it)."""
        job.restarts += 1
        job.last_start_s = None
        job.placement = None
        job.state = state
        if state is JobState.REQUEUED:
            job.reason = "the control plane restarted while it ran"
        else:
            job.reason = ("it was running when the control plane stopped; check the "
                          "cluster, then release or cancel it")
        job.events.append((now, f"{state.value}: {job.reason}"))
