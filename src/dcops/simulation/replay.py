"""Trace replay: the live `Scheduler`, unchanged, over a simulated cluster.

A discrete-event kernel (four verbs, as SimPy's: `now`, `schedule`, `step`, `run`) moves
time from one event to the next: job arrivals, completions, node faults and repairs, and
the wake-ups a policy asks for. After the events of each instant the scheduler decides
once. `SimulatedCluster` is the third `ClusterManager`: a job it starts completes after
its remaining work plus the restart overhead of this run; a fault on its node sends it
back to the queue, to resume from its last checkpoint.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from dcops.core.errors import Invalid
from dcops.scheduling.cluster import NodeInfo
from dcops.scheduling.executor import JobEvent
from dcops.scheduling.model import Job, JobSpec, JobState, Placement, Start
from dcops.scheduling.placement import Placer
from dcops.scheduling.policies.base import Policy
from dcops.scheduling.predictor import Predictor
from dcops.scheduling.scheduler import Overhead, Scheduler
from dcops.simulation.traces import split_gpus

# event kinds, in the order they are handled within one instant
COMPLETE, FAULT, REPAIR, ARRIVE, WAKE = range(5)


class Fault(Protocol):
    """A node or GPU fault to inject (see `dcops.simulation.failures`)."""

    @property
    def at_s(self) -> float: ...
    @property
    def node_index(self) -> int: ...
    @property
    def category(self) -> str: ...
    @property
    def downtime_s(self) -> float: ...


class Kernel:
    """Time and the events still to come."""

    def __init__(self) -> None:
        self.now = 0.0
        self._events: list[tuple[float, int, int, Any]] = []
        self._order = itertools.count()

    def schedule(self, at: float, kind: int, payload: Any) -> None:
        heapq.heappush(self._events, (at, kind, next(self._order), payload))

    def step(self) -> list[tuple[int, Any]]:
        """Move to the next instant; the events of that instant, in handling order."""
        first = heapq.heappop(self._events)
        self.now = first[0]
        out = [(first[1], first[3])]
        events = self._events
        while events and events[0][0] == self.now:
            entry = heapq.heappop(events)
            out.append((entry[1], entry[3]))
        return out

    def __bool__(self) -> bool:
        return bool(self._events)

    def run(self, handle: Callable[[list[tuple[int, Any]]], None]) -> None:
        while self._events:
            handle(self.step())


def checkpoint_overhead(job: Job) -> float:
    """The restart overhead used for the Philly replays: 7 s for a 1-GPU job, 30 s for a
    multi-GPU one (restoring a checkpoint after a preemption or fault)."""
    return 7.0 if job.gpus <= 1 else 30.0


class SimulatedCluster:
    """Simulated nodes that run jobs for exactly their remaining work."""

    def __init__(self, nodes: Sequence[NodeInfo], kernel: Kernel) -> None:
        self._nodes = list(nodes)
        self.kernel = kernel
        self.scheduler: Scheduler | None = None
        self._run: dict[str, int] = {}
        """Run number of each running job (stale completion events are ignored)."""
        self._runs = itertools.count(1)

    def nodes(self) -> list[NodeInfo]:
        return list(self._nodes)

    def start(self, job: Job, placement: Placement) -> None:
        if job.duration_s is None:
            raise Invalid(f"job {job.id}: a simulated job needs its duration",
                          hint="trace readers set it from the recorded run time")
        overhead = self.scheduler.run_overhead.get(job.id, 0.0) if self.scheduler else 0.0
        run = next(self._runs)
        self._run[job.id] = run
        left = max(0.0, job.duration_s - job.checkpoint_s)
        self.kernel.schedule(self.kernel.now + overhead + left, COMPLETE, (job.id, run))

    def preempt(self, job: Job) -> None:
        self.forget(job.id)

    def cancel(self, job: Job) -> None:
        self.forget(job.id)

    def poll(self) -> list[JobEvent]:
        """Nothing: the replay hands each completion to the scheduler as it happens."""
        return []

    def completed(self, job_id: str, run: int) -> bool:
        """Whether a completion event is still that of the job's present run."""
        if self._run.get(job_id) != run:
            return False
        del self._run[job_id]
        return True

    def forget(self, job_id: str) -> None:
        self._run.pop(job_id, None)


@dataclass(slots=True)
class Timeline:
    """GPUs allocated and jobs waiting over time, one point per `every_s` of trace time
    (the value at the first event of each period), for plots."""

    every_s: float = 3_600.0
    t: list[float] = field(default_factory=list)
    allocated: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Replay:
    """What a replay produced: the jobs as they ended, and the cluster over time."""

    policy: str
    nodes: int
    gpus_per_node: int
    jobs: list[Job]
    allocated_gpu_s: float
    timeline: Timeline
    faults: int = 0
    errors: list[tuple[float, str]] = field(default_factory=list)
    wall_s: float = 0.0


def node_name(index: int) -> str:
    """The name of a simulated cluster's node `index` (what faults refer to)."""
    return f"n{index}"


def simulated_nodes(nodes: int, gpus_per_node: int) -> list[NodeInfo]:
    return [NodeInfo(node_name(i), gpus_per_node) for i in range(nodes)]


def fresh(jobs: Iterable[Job]) -> list[Job]:
    """Unstarted copies of trace jobs (a replay changes the jobs it runs)."""
    return [Job(job.id, job.spec, job.submit_s, seq=job.seq, duration_s=job.duration_s)
            for job in jobs]


def simulate(jobs: Sequence[Job], policy: Policy, *, nodes: int = 80,
             gpus_per_node: int = 8, placer: Placer | None = None,
             overhead: Overhead = checkpoint_overhead, faults: Iterable[Fault] = (),
             predictor: Predictor | None = None,
             progress: Callable[[float], None] | None = None,
             timeline_every_s: float = 3_600.0) -> Replay:
    """Replay `jobs` (fresh copies are made) on `nodes` nodes of `gpus_per_node` GPUs
    under `policy`. `progress` is told the fraction of jobs finished, now and then."""
    started = time.perf_counter()
    kernel = Kernel()
    infos = simulated_nodes(nodes, gpus_per_node)
    manager = SimulatedCluster(infos, kernel)
    scheduler = Scheduler(policy, manager, placer=placer,
                          predictor=predictor if predictor is not None else Predictor(),
                          overhead=overhead, record_events=False)
    manager.scheduler = scheduler
    runs = fresh(jobs)
    for job in runs:
        kernel.schedule(job.submit_s, ARRIVE, job)
    fault_count = 0
    for fault in faults:
        kernel.schedule(fault.at_s, FAULT, fault)
        fault_count += 1
    timeline = Timeline(timeline_every_s)
    state = _Accounting(scheduler, timeline, len(runs), progress)
    wakeups = policy.preemptive

    def handle(events: list[tuple[int, Any]]) -> None:
        now = kernel.now
        state.advance(now)
        for kind, payload in events:
            if kind == COMPLETE:
                job_id, run = payload
                if manager.completed(job_id, run):
                    scheduler.handle(JobEvent(job_id, now, JobState.COMPLETED))
                    state.finished += 1
            elif kind == ARRIVE:
                scheduler.submit(payload, now)
            elif kind == FAULT:
                _fault(scheduler, manager, kernel, payload, now)
            elif kind == REPAIR:
                scheduler.cluster.update(payload)
        for decision in scheduler.schedule(now):
            if wakeups and isinstance(decision, Start):
                job = scheduler.jobs[decision.job_id]
                for at in policy.wakeups(job, now):
                    kernel.schedule(at, WAKE, None)

    kernel.run(handle)
    state.advance(kernel.now)
    return Replay(policy.name, nodes, gpus_per_node, runs, state.allocated_gpu_s, timeline,
                  fault_count, scheduler.errors, time.perf_counter() - started)


def _fault(scheduler: Scheduler, manager: SimulatedCluster, kernel: Kernel, fault: Fault,
           now: float) -> None:
    """Take the node out until it is repaired; its jobs go back to the queue."""
    name = node_name(fault.node_index)
    node = scheduler.cluster.nodes.get(name)
    if node is None or not node.schedulable:
        return
    for job in list(scheduler.running.values()):
        if job.placement is not None and name in job.placement.node_names:
            manager.forget(job.id)
            scheduler.handle(JobEvent(job.id, now, JobState.REQUEUED,
                                      f"{fault.category} on {name}"))
    scheduler.cluster.update(replace(node, schedulable=False))
    kernel.schedule(now + fault.downtime_s, REPAIR, node)


class _Accounting:
    """GPU-seconds allocated, the timeline and progress, advanced event by event."""

    def __init__(self, scheduler: Scheduler, timeline: Timeline, total: int,
                 progress: Callable[[float], None] | None) -> None:
        self.scheduler = scheduler
        self.timeline = timeline
        self.total = max(total, 1)
        self.progress = progress
        self.finished = 0
        self.allocated_gpu_s = 0.0
        self._last = 0.0
        self._next_point = 0.0
        self._next_report = 0

    def advance(self, now: float) -> None:
        allocated = self.scheduler.allocated_gpus
        if now > self._last:
            self.allocated_gpu_s += (now - self._last) * allocated
            self._last = now
        if now >= self._next_point:
            self.timeline.t.append(now)
            self.timeline.allocated.append(allocated)
            self.timeline.waiting.append(len(self.scheduler.queue))
            self._next_point = (now // self.timeline.every_s + 1) * self.timeline.every_s
        if self.progress is not None and self.finished >= self._next_report:
            self.progress(self.finished / self.total)
            self._next_report = self.finished + max(1, self.total // 200)


def make_job(job_id: str, submit_s: float, duration_s: float, gpus: int,
             tenant: str = "default") -> Job:
    """A trace job of `gpus` GPUs split as the trace readers split them (one task up to a
    node's 8 GPUs, else the largest even split: 12 GPUs are 2 tasks of 6)."""
    per_task, tasks = split_gpus(gpus, 8)
    return Job(job_id, JobSpec(job_id, tenant, per_task, tasks), submit_s,
               duration_s=duration_s)
