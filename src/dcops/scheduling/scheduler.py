"""The scheduler: admits jobs, keeps the queue in the policy's order, asks the policy what
to do, checks its decisions and has a `ClusterManager` carry them out.

The same object runs live (over the local or Slurm executor) and in the trace simulator,
so a replay judges exactly the code that schedules the fleet. A policy that raises does
not stop it: the job at the head of the queue is held with the error as its reason (the
usual culprit), and the rest of the queue is scheduled on.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

from dcops.core.errors import Invalid, NotFound
from dcops.scheduling.cluster import Cluster, NodeInfo
from dcops.scheduling.executor import ClusterManager, JobEvent
from dcops.scheduling.model import (
    FINAL,
    WAITING,
    Decision,
    Hold,
    Job,
    JobState,
    Placement,
    Preempt,
    Start,
    Tenant,
)
from dcops.scheduling.packing import Packer
from dcops.scheduling.placement import Consolidate, Placer
from dcops.scheduling.policies.base import Key, Policy, View, charge
from dcops.scheduling.predictor import Predictor
from dcops.scheduling.running import RunningTable

log = logging.getLogger(__name__)

Overhead = Callable[[Job], float]
"""Seconds a restart costs a job (restoring its checkpoint)."""


def no_overhead(job: Job) -> float:
    return 0.0


class JobQueue:
    """Waiting jobs sorted by the policy's key, kept sorted as they come and go."""

    def __init__(self) -> None:
        self.keys: list[tuple[Key, int]] = []
        self.jobs: list[Job] = []

    def __len__(self) -> int:
        return len(self.jobs)

    def add(self, key: Key, job: Job) -> None:
        entry = (key, job.seq)
        at = bisect_left(self.keys, entry)
        self.keys.insert(at, entry)
        self.jobs.insert(at, job)

    def remove(self, key: Key, job: Job) -> None:
        at = bisect_left(self.keys, (key, job.seq))
        if at < len(self.jobs) and self.jobs[at] is job:
            del self.keys[at]
            del self.jobs[at]
            return
        at = self.jobs.index(job)  # (a key that changed while it waited)
        del self.keys[at]
        del self.jobs[at]


class Scheduler:
    """Jobs, queue, running set and GPU accounting for one cluster under one policy."""

    def __init__(self, policy: Policy, manager: ClusterManager, *,
                 placer: Placer | None = None, tenants: Iterable[Tenant] = (),
                 predictor: Predictor | None = None, overhead: Overhead = no_overhead,
                 record_events: bool = True) -> None:
        self.policy = policy
        self.manager = manager
        self.placer: Placer = placer or Consolidate()
        self.tenants = {t.name: t for t in tenants}
        self.predictor = predictor
        self.overhead = overhead
        self.record_events = record_events
        self.cluster = Cluster(manager.nodes())
        self.jobs: dict[str, Job] = {}
        self.queue = JobQueue()
        self._keys: dict[str, Key] = {}
        self.running: dict[str, Job] = {}
        self.table = RunningTable()
        self._node_index: dict[str, int] = {}
        """The running jobs as columns (for policies that rank them all)."""
        self.usage: dict[str, int] = {}
        self.allocated_gpus = 0
        self.cpu_usage: dict[str, int] = {}
        self.memory_usage: dict[str, int] = {}
        self.total_cpus = sum(n.cpus for n in self.cluster.nodes.values())
        self.total_memory_mb = sum(n.memory_mb for n in self.cluster.nodes.values())
        self.run_overhead: dict[str, float] = {}
        """The restart overhead the present run of each running job pays."""
        self.errors: list[tuple[float, str]] = []
        self._seq = 0

    # -- admission -----------------------------------------------------------------------

    def check(self, job: Job) -> None:
        """Refuse, with the reason, a job that can never run here."""
        spec = job.spec
        where = f"job {job.id}"
        if spec.gpus_per_task < 0 or spec.tasks < 1 or spec.cpus_per_task < 0 \
                or spec.memory_mb_per_task < 0:
            raise Invalid("GPUs, CPUs and memory per task must be 0 or more and tasks at "
                          f"least 1 (got {spec.gpus_per_task} GPUs x {spec.tasks} tasks, "
                          f"{spec.cpus_per_task} CPUs, {spec.memory_mb_per_task} MB)",
                          where=where)
        if spec.gpus > self.cluster.total_gpus:
            raise Invalid(f"asks for {spec.gpus} GPUs; the cluster has "
                          f"{self.cluster.total_gpus}", where=where,
                          hint="it can never fit")
        if spec.gpus_per_task > self.cluster.max_gpus:
            raise Invalid(f"asks for {spec.gpus_per_task} GPUs per task; the largest node "
                          f"has {self.cluster.max_gpus}", where=where,
                          hint="a task never spans nodes")
        for value, what in ((spec.duration_estimate_s, "duration estimate"),
                            (spec.checkpoint_interval_s, "checkpoint interval")):
            if value is not None and not (0 < value < math.inf):
                raise Invalid(f"{what} must be a positive number of seconds, not {value}",
                              where=where)
        if self.tenants:
            tenant = self.tenants.get(spec.tenant)
            if tenant is None:
                raise Invalid(f"unknown tenant {spec.tenant!r}", where=where,
                              hint=f"known tenants: {', '.join(sorted(self.tenants))}")
            if tenant.gpu_quota is not None and spec.gpus > tenant.gpu_quota:
                raise Invalid(f"asks for {spec.gpus} GPUs; tenant {spec.tenant!r} may use "
                              f"{tenant.gpu_quota} at once", where=where,
                              hint="its quota is exceeded by this job alone")

    def submit(self, job: Job, now: float) -> Job:
        """Admit `job` (checked first) into the queue."""
        if job.id in self.jobs:
            raise Invalid(f"job {job.id} was already submitted")
        self.check(job)
        self._seq += 1
        if job.seq == 0:
            job.seq = self._seq
        if self.predictor is not None and job.predicted_s is None:
            job.predicted_s = self.predictor.predict(job)
        job.state = JobState.QUEUED
        self.jobs[job.id] = job
        self._note(job, now, "submitted")
        self._enqueue(job, now)
        return job

    def cancel(self, job_id: str, now: float, reason: str = "cancelled") -> Job:
        job = self._job(job_id)
        if job.state in FINAL:
            return job
        if job.state is JobState.RUNNING:
            self.manager.cancel(job)
            self._stop(job, now, saved=False)
        elif job.state in WAITING:
            self._dequeue(job)
        self._finish(job, now, JobState.CANCELLED, reason)
        return job

    def requeue(self, job_id: str, now: float, reason: str) -> bool:
        """Stop a running job for a fault on its node and queue it again; it restarts from
        its last periodic checkpoint. False (nothing done) when it is not running."""
        job = self._job(job_id)
        if job.state is not JobState.RUNNING:
            return False
        self.manager.preempt(job)
        self.handle(JobEvent(job_id, now, JobState.REQUEUED, reason))
        return True

    def set_node(self, name: str, *, schedulable: bool | None = None,
                 suspect: bool | None = None, reason: str | None = None) -> NodeInfo:
        """Drain or resume a node, or mark it suspect, for placement from now on."""
        node = self.cluster.nodes.get(name)
        if node is None:
            raise NotFound("node", name, hint="the scheduler's nodes are its executor's")
        updated = dataclasses.replace(
            node, schedulable=node.schedulable if schedulable is None else schedulable,
            suspect=node.suspect if suspect is None else suspect,
            reason=node.reason if reason is None else reason)
        self.cluster.update(updated)
        return updated

    def jobs_on(self, name: str) -> list[str]:
        """Ids of the jobs running on node `name`, in start order."""
        return [job_id for job_id, job in self.running.items()
                if job.placement is not None and any(n == name for n, _ in job.placement.nodes)]

    # -- what the cluster manager reports ------------------------------------------------

    def handle(self, event: JobEvent) -> None:
        job = self.jobs.get(event.job_id)
        if job is None or job.state is not JobState.RUNNING:
            return  # not ours, or already stopped by us
        if event.state is JobState.COMPLETED:
            self._stop(job, event.at_s, saved=True)
            if self.predictor is not None:
                self.predictor.observe(job, job.run_s)
            self._finish(job, event.at_s, JobState.COMPLETED, event.reason)
        elif event.state is JobState.FAILED:
            self._stop(job, event.at_s, saved=False)
            self._finish(job, event.at_s, JobState.FAILED, event.reason)
        elif event.state is JobState.REQUEUED:  # a fault: back to the queue
            self._stop(job, event.at_s, saved=False)
            job.restarts += 1
            job.state = JobState.REQUEUED
            job.reason = event.reason
            self._note(job, event.at_s, f"requeued: {event.reason}")
            self._enqueue(job, event.at_s)

    # -- deciding ------------------------------------------------------------------------

    def schedule(self, now: float) -> list[Decision]:
        """Ask the policy, then carry out each decision it made that still holds."""
        if not len(self.queue):
            return []
        view = View(self.cluster.copy(), self.running, self.placer, self.tenants,
                    dict(self.usage), self.table, dict(self.cpu_usage),
                    dict(self.memory_usage), self.total_cpus, self.total_memory_mb)
        try:
            decisions = self.policy.step(now, self.queue.jobs, view)
        except Exception as exc:  # a policy bug must not stop scheduling
            head = self.queue.jobs[0]
            return [Hold(head.id, self._policy_failed(head, now, exc))]
        if isinstance(self.placer, Packer):
            decisions = self._repack(decisions)
        done: list[Decision] = []
        for decision in decisions:
            if self._carry_out(decision, now):
                done.append(decision)
        return done

    def _repack(self, decisions: list[Decision]) -> list[Decision]:
        """The policy's starts placed again as one batch by the packer (which the policy,
        placing job by job, could not do), when the packer starts every one of them; a
        step that preempts keeps its placements (they are where the room was made)."""
        assert isinstance(self.placer, Packer)
        starts = [d for d in decisions if isinstance(d, Start)]
        if len(starts) < 2 or any(isinstance(d, Preempt) for d in decisions):
            return decisions
        jobs = [self.jobs[d.job_id] for d in starts if d.job_id in self.jobs]
        if len(jobs) != len(starts):
            return decisions
        placements = self.placer.pack(jobs, self.cluster).placements
        if set(placements) != {job.id for job in jobs}:
            return decisions
        return [Start(d.job_id, placements[d.job_id]) if isinstance(d, Start) else d
                for d in decisions]

    def _carry_out(self, decision: Decision, now: float) -> bool:
        job = self.jobs.get(decision.job_id)
        if job is None:
            self._policy_error(now, f"decided on unknown job {decision.job_id}")
            return False
        if isinstance(decision, Start):
            return self._start(job, decision.placement, now)
        if isinstance(decision, Preempt):
            if job.state is not JobState.RUNNING or not job.spec.preemptible:
                self._policy_error(now, f"cannot preempt job {job.id} ({job.state})")
                return False
            self.manager.preempt(job)
            self._stop(job, now, saved=True)
            job.preemptions += 1
            job.state = JobState.REQUEUED
            self._note(job, now, f"preempted: {decision.reason}")
            self._enqueue(job, now)
            return True
        if job.state in WAITING:
            self._hold(job, now, decision.reason)
            return True
        return False

    def _start(self, job: Job, placement: Placement, now: float) -> bool:
        if job.state not in WAITING:
            self._policy_error(now, f"cannot start job {job.id} ({job.state})")
            return False
        if placement.gpus != job.gpus:
            self._policy_error(now, f"placed job {job.id} on {placement.gpus} GPUs, "
                               f"not {job.gpus}")
            return False
        try:
            self.cluster.allocate(placement)
        except Exception as exc:
            self._policy_error(now, f"placement of job {job.id} does not fit: {exc}")
            return False
        self._dequeue(job)
        job.state = JobState.RUNNING
        job.placement = placement
        job.last_start_s = now
        if job.start_s is None:
            job.start_s = now
        resumed = job.preemptions > 0 or job.restarts > 0
        self.run_overhead[job.id] = self.overhead(job) if resumed else 0.0
        self.running[job.id] = job
        self.allocated_gpus += job.gpus
        self._use(job, 1)
        self.table.add(job, now, self._node_at(placement))
        self.manager.start(job, placement)
        if self.record_events:
            self._note(job, now, "started on " + ",".join(
                f"{name}:{gpus}" for name, gpus in placement.nodes))
        return True

    # -- bookkeeping ---------------------------------------------------------------------

    def _stop(self, job: Job, now: float, *, saved: bool) -> None:
        """Account for a run that ends now; `saved`: its work is checkpointed (a
        preemption or completion), else it resumes from its last periodic checkpoint."""
        started = job.last_start_s if job.last_start_s is not None else now
        elapsed = max(0.0, now - started)
        job.attained_s += elapsed * job.gpus
        useful = max(0.0, elapsed - self.run_overhead.pop(job.id, 0.0))
        job.run_s = job.checkpoint_s + useful
        interval = job.spec.checkpoint_interval_s
        if saved:
            job.checkpoint_s = job.run_s
        elif interval:
            job.checkpoint_s = max(job.checkpoint_s, job.run_s // interval * interval)
        if job.placement is not None:
            self.cluster.release(job.placement)
        self.running.pop(job.id, None)
        self.table.remove(job)
        self.allocated_gpus -= job.gpus
        self._use(job, -1)

    def _node_at(self, placement: Placement) -> int:
        """The cluster-order index of a one-node placement's node (-1: several nodes)."""
        if len(placement.nodes) != 1:
            return -1
        name = placement.nodes[0][0]
        if name not in self._node_index:
            self._node_index = {n: i for i, n in enumerate(self.cluster.nodes)}
        return self._node_index.get(name, -1)

    def _use(self, job: Job, sign: int) -> None:
        charge(job, sign, self.usage, self.cpu_usage, self.memory_usage)

    def _finish(self, job: Job, now: float, state: JobState, reason: str) -> None:
        job.state = state
        job.end_s = now
        job.reason = reason
        self._note(job, now, state.value + (f": {reason}" if reason else ""))

    def _policy_failed(self, job: Job, now: float, exc: Exception) -> str:
        """The policy raised over `job` (in `step`, or its `key`): hold the job with the
        error as its reason, so that the rest of the queue goes on; the reason."""
        reason = f"policy {self.policy.name} failed: {type(exc).__name__}: {exc}"
        log.error("%s at %.0f; holding job %s", reason, now, job.id, exc_info=exc)
        self.errors.append((now, reason))
        self._hold(job, now, reason)
        return reason

    def _hold(self, job: Job, now: float, reason: str) -> None:
        if job.id in self._keys:  # in the queue
            self._dequeue(job)
        job.state = JobState.HELD
        job.reason = reason
        self._note(job, now, f"held: {reason}")

    def release(self, job_id: str, now: float) -> Job:
        """Put a held job back in the queue."""
        job = self._job(job_id)
        if job.state is not JobState.HELD:
            raise Invalid(f"job {job_id} is {job.state}, not held")
        job.state = JobState.QUEUED
        job.reason = ""
        self._note(job, now, "released")
        self._enqueue(job, now)
        return job

    def _enqueue(self, job: Job, now: float) -> None:
        """Queue `job` at its place by the policy's key; held if the key fails."""
        try:
            key = self.policy.key(job)
        except Exception as exc:  # a policy bug must not stop scheduling
            self._policy_failed(job, now, exc)
            return
        self._keys[job.id] = key
        self.queue.add(key, job)

    def _dequeue(self, job: Job) -> None:
        self.queue.remove(self._keys.pop(job.id), job)

    def _policy_error(self, now: float, what: str) -> None:
        message = f"policy {self.policy.name} {what}"
        log.warning("%s", message)
        self.errors.append((now, message))

    def _note(self, job: Job, now: float, what: str) -> None:
        if self.record_events:
            job.events.append((now, what))

    def _job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound("job", job_id)
        return job

    def waiting(self) -> Sequence[Job]:
        return self.queue.jobs
