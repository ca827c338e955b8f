"""The live scheduling service over the in-memory cluster manager: FIFO through ticks,
admission refusals with reasons, a failing policy holding only its culprit, and jobs
restored from the store after a restart."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dcops.core.clock import FakeClock
from dcops.core.errors import Invalid, NotFound
from dcops.scheduling.cluster import NodeInfo
from dcops.scheduling.memory import MemoryClusterManager
from dcops.scheduling.model import Decision, Job, JobSpec, JobState, Tenant
from dcops.scheduling.policies.base import View
from dcops.scheduling.policies.ordered import Fifo
from dcops.scheduling.service import POLICIES, JobService, policy_named
from dcops.scheduling.store import MemoryJobStore


def _service(*, gpus: int = 4, nodes: int = 1, tenants: Sequence[Tenant] = (),
             policy: Fifo | str = "fifo", store: MemoryJobStore | None = None,
             clock: FakeClock | None = None) -> tuple[JobService, MemoryClusterManager]:
    manager = MemoryClusterManager([NodeInfo(f"n{i}", gpus=gpus) for i in range(nodes)])
    service = JobService(manager, clock or FakeClock(1000.0), policy=policy, tenants=tenants,
                         store=store)
    return service, manager


def _spec(name: str, gpus: int = 1, tenant: str = "default", tasks: int = 1) -> JobSpec:
    return JobSpec(name=name, tenant=tenant, gpus_per_task=gpus, tasks=tasks)


def test_fifo_starts_in_submission_order_and_the_head_blocks() -> None:
    service, manager = _service(gpus=4)
    a = service.submit(_spec("a", 2))
    b = service.submit(_spec("b", 4))
    c = service.submit(_spec("c", 1))
    assert [j.name for j in (s.spec for s in service.queue())] == ["a", "b", "c"]
    service.tick()
    assert set(manager.started) == {a.id}  # b does not fit; c waits behind it (FIFO)
    assert [j.id for j in service.queue()] == [b.id, c.id]
    manager.finish(a.id, 1010.0)
    service.tick()
    assert set(manager.started) == {b.id}
    assert service.get(a.id).state is JobState.COMPLETED
    manager.finish(b.id, 1020.0, JobState.FAILED, "exit code 3")
    service.tick()
    assert set(manager.started) == {c.id}
    assert (service.get(b.id).state, service.get(b.id).reason) == (JobState.FAILED,
                                                                   "exit code 3")


def test_ids_count_up_and_copies_do_not_change_under_the_caller() -> None:
    service, _ = _service()
    first = service.submit(_spec("a"))
    assert (first.id, service.submit(_spec("b")).id) == ("1", "2")
    service.tick()
    assert first.state is JobState.QUEUED  # the copy handed out
    assert service.get("1").state is JobState.RUNNING
    assert [what for _, what in service.get("1").events] == ["submitted",
                                                             "started on n0:1"]


def test_a_job_over_its_tenants_quota_is_refused() -> None:
    service, _ = _service(gpus=8, tenants=[Tenant("research", gpu_quota=2)])
    with pytest.raises(Invalid, match="tenant 'research' may use 2") as caught:
        service.submit(_spec("big", 4, tenant="research"))
    assert caught.value.where == "job 1"
    assert service.jobs() == []


def test_quota_holds_back_a_tenants_second_job_but_not_anothers() -> None:
    service, manager = _service(gpus=8, tenants=[Tenant("research", gpu_quota=2),
                                                 Tenant("prod")])
    first = service.submit(_spec("r1", 2, tenant="research"))
    second = service.submit(_spec("r2", 2, tenant="research"))
    other = service.submit(_spec("p1", 2, tenant="prod"))
    service.tick()
    assert set(manager.started) == {first.id, other.id}
    assert service.get(second.id).state is JobState.QUEUED
    shares = {t.name: t for t in service.fairness()}
    assert (shares["research"].gpus_in_use, shares["research"].waiting) == (2, 1)
    assert shares["research"].share == 0.25 and shares["prod"].weighted_share == 0.5


def test_an_unknown_tenant_is_refused_naming_the_known_ones() -> None:
    service, _ = _service(tenants=[Tenant("research"), Tenant("prod")])
    with pytest.raises(Invalid, match="unknown tenant 'nobody'") as caught:
        service.submit(_spec("x", tenant="nobody"))
    assert caught.value.hint == "known tenants: prod, research"


def test_a_job_that_can_never_fit_is_refused() -> None:
    service, _ = _service(gpus=4, nodes=2)
    with pytest.raises(Invalid, match="asks for 16 GPUs; the cluster has 8"):
        service.submit(_spec("huge", 8, tasks=2))
    with pytest.raises(Invalid, match="largest node has 4"):
        service.submit(_spec("wide", 8))


def test_a_negative_request_is_refused() -> None:
    service, _ = _service()
    with pytest.raises(Invalid, match="must be 0 or more"):
        service.submit(_spec("neg", -1))
    with pytest.raises(Invalid, match="tasks at least 1"):
        service.submit(_spec("none", 1, tasks=0))


class Brittle(Fifo):
    """FIFO that fails whenever a job named "bad" is at the head of the queue."""

    name = "brittle"

    def step(self, now: float, queue: Sequence[Job], view: View) -> list[Decision]:
        if queue and queue[0].spec.name == "bad":
            raise ZeroDivisionError("division by zero")
        return super().step(now, queue, view)


def test_a_failing_policy_holds_the_head_job_and_the_rest_still_run() -> None:
    service, manager = _service(gpus=4, policy=Brittle())
    bad = service.submit(_spec("bad", 1))
    good = service.submit(_spec("good", 1))
    service.tick()  # the policy raises: bad is held with the error
    held = service.get(bad.id)
    assert held.state is JobState.HELD
    assert held.reason == "policy brittle failed: ZeroDivisionError: division by zero"
    assert [e.message for e in service.errors()] == [held.reason]
    service.tick()  # the loop goes on without it
    assert set(manager.started) == {good.id}
    later = service.submit(_spec("later", 1))
    service.tick()
    assert set(manager.started) == {good.id, later.id}
    with pytest.raises(Invalid, match="is running, not held"):
        service.release(good.id)
    assert service.release(bad.id).state is JobState.QUEUED
    service.tick()
    assert service.get(bad.id).state is JobState.HELD  # the same error holds it again


class BadKey(Fifo):
    name = "badkey"

    def key(self, job: Job) -> tuple[float, ...]:
        if job.spec.name == "bad":
            raise KeyError("no key for bad")
        return super().key(job)


def test_a_policy_whose_key_fails_holds_that_job_at_submit() -> None:
    service, manager = _service(policy=BadKey())
    bad = service.submit(_spec("bad"))
    assert bad.state is JobState.HELD and "KeyError" in bad.reason
    good = service.submit(_spec("good"))
    service.tick()
    assert set(manager.started) == {good.id}
    assert service.release(bad.id).state is JobState.HELD


def test_cancel_a_waiting_and_a_running_job() -> None:
    service, manager = _service(gpus=1)
    running = service.submit(_spec("a"))
    waiting = service.submit(_spec("b"))
    service.tick()
    assert service.cancel(waiting.id).state is JobState.CANCELLED
    assert service.queue() == []
    assert service.cancel(running.id, "cancelled by alice").reason == "cancelled by alice"
    assert manager.stopped == [(running.id, "cancelled")]
    assert service.capacity() == (0, 1)
    with pytest.raises(NotFound):
        service.cancel("99")


def test_list_filters_by_state_and_tenant() -> None:
    service, _ = _service(gpus=1)
    service.submit(_spec("a", tenant="t1"))
    service.submit(_spec("b", tenant="t2"))
    service.tick()
    assert [j.spec.name for j in service.jobs(JobState.RUNNING)] == ["a"]
    assert [j.spec.name for j in service.jobs(tenant="t2")] == ["b"]
    assert service.jobs(JobState.QUEUED, "t1") == []


def test_policies_by_name() -> None:
    assert set(POLICIES) == {"fifo", "qssf", "tiresias", "easy", "fairshare", "dcops"}
    assert policy_named("tiresias").preemptive
    with pytest.raises(Invalid, match="unknown scheduling policy 'lottery'"):
        policy_named("lottery")


def test_jobs_survive_a_restart_through_the_store() -> None:
    store = MemoryJobStore()
    clock = FakeClock(1000.0)
    service, manager = _service(gpus=2, store=store, clock=clock)
    done = service.submit(_spec("done"))
    running = service.submit(_spec("running"))
    waiting = service.submit(_spec("waiting", 2))
    held = service.submit(_spec("held", 1))
    service.tick()
    manager.finish(done.id, 1001.0)
    clock.advance(5)
    service.tick()  # done completes; "waiting" (2 GPUs) cannot start beside "running"
    service.cancel(held.id)  # ...cancelled, so final
    again, manager2 = _service(gpus=2, store=store, clock=clock)
    assert [(j.id, j.state) for j in again.jobs()] == [
        (done.id, JobState.COMPLETED), (running.id, JobState.REQUEUED),
        (waiting.id, JobState.QUEUED), (held.id, JobState.CANCELLED)]
    assert [j.id for j in again.queue()] == [running.id, waiting.id]  # the old order
    assert again.get(running.id).restarts == 1
    assert again.submit(_spec("new")).id == "5"
    again.tick()
    assert set(manager2.started) == {running.id}
    assert again.get(running.id).events[-1][1] == "started on n0:1"
