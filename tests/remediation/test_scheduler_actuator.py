"""The Actuator over dcops's own scheduler: drained nodes take no new jobs, requeued jobs
go back to the queue, and a whole plan runs end to end on it."""

from __future__ import annotations

import pytest

from dcops.core.clock import FakeClock
from dcops.core.errors import Invalid, NotFound
from dcops.health.model import Health, Remedy
from dcops.remediation.engine import Remediator
from dcops.remediation.model import PlanState
from dcops.remediation.scheduler_actuator import SchedulerActuator
from dcops.remediation.store import MemoryRemediationStore
from dcops.scheduling.cluster import NodeInfo
from dcops.scheduling.memory import MemoryClusterManager
from dcops.scheduling.model import JobSpec, JobState
from dcops.scheduling.service import JobService
from tests.remediation.conftest import diagnosis


def service() -> tuple[JobService, MemoryClusterManager, FakeClock]:
    clock = FakeClock(0.0)
    manager = MemoryClusterManager([NodeInfo(f"n{i}", gpus=8) for i in range(2)])
    return JobService(manager, clock), manager, clock


def test_a_hard_drain_requeues_the_nodes_jobs_and_keeps_new_ones_off() -> None:
    jobs, _, clock = service()
    first = jobs.submit(JobSpec("train", gpus_per_task=8, checkpoint_interval_s=60.0))
    jobs.tick()
    node = jobs.get(first.id).placement
    assert node is not None
    name = node.node_names[0]
    actuator = SchedulerActuator(jobs)
    assert actuator.status(name).jobs == (first.id,) and not actuator.status(name).drained
    clock.advance(130.0)
    actuator.drain(name, "dcops: Xid 79", hard=True)
    status = actuator.status(name)
    assert status.drained and status.reason == "dcops: Xid 79" and status.jobs == ()
    requeued = jobs.get(first.id)
    assert requeued.state is JobState.REQUEUED and requeued.restarts == 1
    assert requeued.checkpoint_s == 120.0  # restarts from its last periodic checkpoint
    jobs.tick()
    placement = jobs.get(first.id).placement
    assert placement is not None and placement.node_names[0] != name
    assert actuator.requeue([first.id, "404"]) == [first.id]
    assert actuator.requeue([first.id]) == []
    actuator.resume(name)
    assert not actuator.status(name).drained


def test_unknown_nodes_and_missing_reset_are_clear_errors() -> None:
    jobs, _, _ = service()
    actuator = SchedulerActuator(jobs)
    with pytest.raises(NotFound, match="node 'nope' not found"):
        actuator.status("nope")
    with pytest.raises(Invalid, match="has no reset"):
        actuator.reset_gpu("n0", 1)


def test_a_repair_plan_runs_end_to_end_on_the_scheduler() -> None:
    jobs, _, clock = service()
    job = jobs.submit(JobSpec("train", gpus_per_task=8))
    jobs.tick()
    placement = jobs.get(job.id).placement
    assert placement is not None
    node = placement.node_names[0]
    store = MemoryRemediationStore()
    remediator = Remediator(store, SchedulerActuator(jobs), clock=clock, fleet_nodes=lambda: 2)
    plan = remediator.handle(diagnosis(node, health=Health.FAILED, remedy=Remedy.REPAIR,
                                       jobs=(job.id,)))
    assert plan is not None
    remediator.advance()
    assert store.plan(plan.id).state is PlanState.DONE
    assert jobs.get(job.id).state is JobState.REQUEUED
    jobs.tick()
    moved = jobs.get(job.id).placement
    assert moved is not None and moved.node_names != (node,)
