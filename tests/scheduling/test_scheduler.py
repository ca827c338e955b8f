"""The scheduler: admission, decisions carried out, policy errors contained."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dcops.core.errors import Invalid, NotFound
from dcops.scheduling.cluster import NodeInfo
from dcops.scheduling.executor import JobEvent
from dcops.scheduling.model import Decision, Job, JobSpec, JobState, Placement, Start, Tenant
from dcops.scheduling.packing import Packer
from dcops.scheduling.placement import Placer
from dcops.scheduling.policies.base import Key, View
from dcops.scheduling.policies.ordered import Fifo
from dcops.scheduling.predictor import Predictor
from dcops.scheduling.running import RunningTable
from dcops.scheduling.scheduler import JobQueue, Scheduler


class Recorder:
    """A ClusterManager that notes what it is told."""

    def __init__(self, nodes: int = 2, gpus: int = 8) -> None:
        self._nodes = [NodeInfo(f"n{i}", gpus) for i in range(nodes)]
        self.calls: list[tuple[str, str]] = []

    def nodes(self) -> list[NodeInfo]:
        return self._nodes

    def start(self, job: Job, placement: Placement) -> None:
        self.calls.append(("start", job.id))

    def preempt(self, job: Job) -> None:
        self.calls.append(("preempt", job.id))

    def cancel(self, job: Job) -> None:
        self.calls.append(("cancel", job.id))

    def poll(self) -> list[JobEvent]:
        return []


def job(job_id: str, gpus: int = 1, tenant: str = "default", tasks: int = 1) -> Job:
    return Job(job_id, JobSpec(job_id, tenant, gpus, tasks), 0.0)


def test_jobs_start_in_fifo_order_and_complete() -> None:
    manager = Recorder()
    scheduler = Scheduler(Fifo(), manager)
    for name in ("a", "b", "c"):
        scheduler.submit(job(name, 8), 0.0)
    decisions = scheduler.schedule(0.0)
    assert [d.job_id for d in decisions] == ["a", "b"]
    assert manager.calls == [("start", "a"), ("start", "b")]
    assert [j.id for j in scheduler.waiting()] == ["c"]
    scheduler.handle(JobEvent("a", 10.0, JobState.COMPLETED))
    assert scheduler.jobs["a"].state is JobState.COMPLETED
    assert scheduler.jobs["a"].end_s == 10.0
    assert [d.job_id for d in scheduler.schedule(10.0)] == ["c"]
    assert scheduler.allocated_gpus == 16


@pytest.mark.parametrize(("spec", "message"), [
    (JobSpec("x", gpus_per_task=-1), "must be 0 or more"),
    (JobSpec("x", gpus_per_task=8, tasks=3), "the cluster has 16"),
    (JobSpec("x", gpus_per_task=16), "largest node has 8"),
    (JobSpec("x", duration_estimate_s=-5), "duration estimate must be a positive"),
    (JobSpec("x", tenant="nobody"), "unknown tenant 'nobody'"),
    (JobSpec("x", tenant="small", gpus_per_task=4), "may use 2 at once"),
])
def test_jobs_that_can_never_run_are_refused_with_the_reason(spec: JobSpec,
                                                             message: str) -> None:
    scheduler = Scheduler(Fifo(), Recorder(), tenants=[Tenant("default"),
                                                       Tenant("small", gpu_quota=2)])
    with pytest.raises(Invalid, match=message):
        scheduler.submit(Job("x", spec, 0.0), 0.0)
    assert scheduler.jobs == {}


def test_a_tenant_over_its_quota_waits_while_others_run() -> None:
    scheduler = Scheduler(Fifo(), Recorder(), tenants=[Tenant("a", gpu_quota=2),
                                                       Tenant("b")])
    scheduler.submit(job("a1", 2, "a"), 0.0)
    scheduler.submit(job("a2", 1, "a"), 0.0)
    scheduler.submit(job("b1", 1, "b"), 0.0)
    assert [d.job_id for d in scheduler.schedule(0.0)] == ["a1", "b1"]
    assert scheduler.jobs["a2"].state is JobState.QUEUED


class Raises(Fifo):
    name = "raises"

    def __init__(self) -> None:
        self.calls = 0

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        self.calls += 1
        if queue[0].id == "bad":
            raise ZeroDivisionError("boom")
        return super().step(now, queue, view)


def test_a_policy_that_raises_holds_the_head_job_and_scheduling_goes_on() -> None:
    policy = Raises()
    scheduler = Scheduler(policy, Recorder())
    scheduler.submit(job("bad"), 0.0)
    scheduler.submit(job("good"), 0.0)
    decisions = scheduler.schedule(0.0)
    assert decisions[0].job_id == "bad"
    bad = scheduler.jobs["bad"]
    assert bad.state is JobState.HELD
    assert "policy raises failed: ZeroDivisionError: boom" in bad.reason
    assert scheduler.errors and "boom" in scheduler.errors[0][1]
    assert [d.job_id for d in scheduler.schedule(1.0)] == ["good"]
    assert scheduler.jobs["good"].state is JobState.RUNNING
    with pytest.raises(Invalid, match="not held"):
        scheduler.release("good", 2.0)


class Liar(Fifo):
    """Decides things that cannot be done."""

    name = "liar"

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        return [Start(queue[0].id, Placement((("n0", 3),))),  # wrong GPU count
                Start(queue[0].id, Placement((("nowhere", 1),))),
                Start("ghost", Placement((("n0", 1),)))]


def test_decisions_that_do_not_hold_are_refused_and_reported() -> None:
    scheduler = Scheduler(Liar(), Recorder())
    scheduler.submit(job("a"), 0.0)
    assert scheduler.schedule(0.0) == []
    assert scheduler.jobs["a"].state is JobState.QUEUED
    assert [m for _, m in scheduler.errors] == [
        "policy liar placed job a on 3 GPUs, not 1",
        "policy liar placement of job a does not fit: node 'nowhere' has 0 GPUs free, not 1",
        "policy liar decided on unknown job ghost"]
    assert scheduler.cluster.free_gpus == 16


def test_cancel_and_release() -> None:
    manager = Recorder()
    scheduler = Scheduler(Fifo(), manager)
    scheduler.submit(job("run", 8), 0.0)
    scheduler.submit(job("wait", 8), 0.0)
    scheduler.submit(job("later", 8), 0.0)
    scheduler.schedule(0.0)
    scheduler.cancel("run", 5.0)
    scheduler.cancel("later", 5.0)
    assert manager.calls[-1] == ("cancel", "run")
    assert scheduler.jobs["run"].state is JobState.CANCELLED
    assert scheduler.jobs["run"].attained_s == 40.0  # 5 s x 8 GPUs
    assert [j.id for j in scheduler.waiting()] == []
    with pytest.raises(NotFound):
        scheduler.cancel("nope", 5.0)
    assert [e for _, e in scheduler.jobs["run"].events][-1] == "cancelled: cancelled"


def test_a_requeued_job_resumes_from_its_periodic_checkpoint() -> None:
    scheduler = Scheduler(Fifo(), Recorder())
    spec = JobSpec("a", gpus_per_task=1, checkpoint_interval_s=60.0)
    scheduler.submit(Job("a", spec, 0.0), 0.0)
    scheduler.schedule(0.0)
    scheduler.handle(JobEvent("a", 150.0, JobState.REQUEUED, "Xid 79 on n0"))
    a = scheduler.jobs["a"]
    assert (a.state, a.run_s, a.checkpoint_s, a.restarts) == (JobState.REQUEUED, 150.0,
                                                              120.0, 1)
    assert a.reason == "Xid 79 on n0"


def test_queue_stays_sorted_by_key() -> None:
    queue = JobQueue()
    jobs = [job(str(i)) for i in range(5)]
    for i, (j, key) in enumerate(zip(jobs, [3.0, 1.0, 2.0, 1.0, 0.0], strict=True)):
        j.seq = i
        queue.add((key,), j)
    assert [j.id for j in queue.jobs] == ["4", "1", "3", "2", "0"]
    queue.remove((1.0,), jobs[3])
    moved: Key = (9.0,)
    queue.remove(moved, jobs[0])  # a stale key still finds its job
    assert [j.id for j in queue.jobs] == ["4", "1", "2"]


def test_predictor_learns_from_finished_jobs_only() -> None:
    predictor = Predictor(window=3, min_samples=2, default_s=99.0)
    a = job("a", 2, "t")
    assert predictor.predict(a) == 99.0
    predictor.observe(job("x", 2, "t"), 10.0)
    assert predictor.predict(a) == 99.0  # one sample is not enough
    predictor.observe(job("y", 2, "t"), 30.0)
    assert predictor.predict(a) == 20.0
    assert predictor.predict(job("b", 4, "t")) == 20.0  # same tenant, other size
    assert predictor.predict(job("c", 2, "u")) == 20.0  # same size, other tenant
    for run in (100.0, 200.0, 300.0):
        predictor.observe(job("z", 2, "t"), run)
    assert predictor.predict(a) == 200.0  # the last three only


def test_running_table_grows_and_frees_slots() -> None:
    table = RunningTable(capacity=2)
    jobs = [job(str(i), 2) for i in range(5)]
    for i, j in enumerate(jobs):
        j.attained_s = float(i)
        table.add(j, now=10.0)
    assert len(table) == 5 and table.active.sum() == 5
    service = table.service(20.0)
    assert sorted(service[table.active].tolist()) == [20.0, 21.0, 22.0, 23.0, 24.0]
    table.remove(jobs[1])
    assert len(table) == 4 and table.active.sum() == 4
    table.add(job("new", 1), now=0.0)
    assert table.active.sum() == 5


def _fragmenting_start(placer: Placer | None) -> Scheduler:
    """Three 8-GPU nodes with 8, 6 and 4 GPUs free, then jobs of 2, 4 and 4 GPUs."""
    scheduler = Scheduler(Fifo(), Recorder(nodes=3), placer=placer)
    for name, node, gpus in (("r1", "n1", 2), ("r2", "n2", 4)):
        scheduler.submit(job(name, gpus), 0.0)
        placed = scheduler._start(scheduler.jobs[name], Placement(((node, gpus),)), 0.0)
        assert placed
    for name, gpus in (("x", 2), ("y", 4), ("z", 4)):
        scheduler.submit(job(name, gpus), 1.0)
    assert {d.job_id for d in scheduler.schedule(1.0)} == {"x", "y", "z"}
    return scheduler


def test_the_packer_places_a_policys_starts_as_one_batch() -> None:
    one_by_one = _fragmenting_start(None)  # best fit, job by job
    assert sorted(one_by_one.cluster.free.values()) == [2, 2, 4]  # three partly used nodes
    packed = _fragmenting_start(Packer())
    assert sorted(packed.cluster.free.values()) == [0, 0, 8]  # one node left whole
    assert packed.placer.last is not None  # type: ignore[attr-defined]
