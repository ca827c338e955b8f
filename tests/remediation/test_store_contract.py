"""One contract for every RemediationStore: memory, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from dcops.backends.sql.state import StateStore
from dcops.core.errors import NotFound
from dcops.remediation.model import (
    Action,
    ActionKind,
    Incident,
    IncidentState,
    Mode,
    Plan,
    PlanState,
    Step,
    StepState,
    TimelineEntry,
)


def make_plan(plan_id: str, node: str, at: float, state: PlanState = PlanState.RUNNING,
              node_out: bool = False) -> Plan:
    steps = [Step(Action(ActionKind.DRAIN_NOW, node, 3, ("job-1",), reason="dcops: Xid 79"),
                  Mode.AUTO, StepState.DONE, 1, "drained now", at, at + 1.0),
             Step(Action(ActionKind.PLAYBOOK, node, None, playbook="gpu-reset.yml",
                         extravars=(("gpu", "3"),)),
                  Mode.APPROVE, StepState.AWAITING_APPROVAL, 0, "waiting", approved_by="",
                  next_try_at=at + 60.0)]
    return Plan(plan_id, node, "Xid 79 on gpu 3", at, steps, "inc-1", 3, state,
                "waiting for an approval", "reboot", node_out, ("job-1",))


def test_a_plan_reads_back_as_saved_and_a_save_replaces_it(state_store: StateStore) -> None:
    store = state_store.remediation
    plan = make_plan("plan-a", "n1", 100.0)
    store.save_plan(plan)
    assert store.plan("plan-a") == plan
    plan.steps[1].state, plan.steps[1].approved_by = StepState.DONE, "alice"
    plan.state, plan.node_out = PlanState.DONE, True
    store.save_plan(plan)
    assert store.plan("plan-a") == plan
    with pytest.raises(NotFound, match="plan 'nope' not found"):
        store.plan("nope")


def test_live_plans_are_the_running_ones_and_those_holding_a_node(
        state_store: StateStore) -> None:
    store = state_store.remediation
    store.save_plan(make_plan("p1", "n1", 100.0, PlanState.DONE))
    store.save_plan(make_plan("p2", "n2", 200.0, PlanState.WAITING))
    store.save_plan(make_plan("p3", "n3", 300.0, PlanState.DONE, node_out=True))
    store.save_plan(make_plan("p4", "n4", 400.0, PlanState.CANCELLED))
    assert [p.id for p in store.plans()] == ["p4", "p3", "p2", "p1"]
    assert [p.id for p in store.plans(live=True)] == ["p3", "p2"]
    assert [p.id for p in store.plans(limit=2)] == ["p4", "p3"]


def test_incidents_rank_open_ones_by_gpu_hours_at_risk(state_store: StateStore) -> None:
    store = state_store.remediation
    timeline = [TimelineEntry(10.0, "signal", "Xid 79 on gpu 3", "telemetry"),
                TimelineEntry(11.0, "drain_now", "drained", "dcops")]
    cases = [("i1", 5.0, IncidentState.OPEN, 10.0), ("i2", 50.0, IncidentState.MITIGATED, 20.0),
             ("i3", 500.0, IncidentState.RESOLVED, 30.0), ("i4", 0.5, IncidentState.OPEN, 40.0)]
    for incident_id, risk, state, at in cases:
        store.save_incident(Incident(incident_id, "n1", "Xid 79", at, 3, state, ("job-1",),
                                     risk, list(timeline),
                                     at + 5 if state is IncidentState.RESOLVED else None))
    assert [i.id for i in store.incidents()] == ["i2", "i1", "i4", "i3"]
    assert [i.id for i in store.incidents(open_only=True)] == ["i2", "i1", "i4"]
    back = store.incident("i3")
    assert back.timeline == timeline and back.resolved_at == 35.0 and back.gpu == 3
    with pytest.raises(NotFound, match="incident 'x' not found"):
        store.incident("x")


def test_what_is_saved_or_read_back_is_a_copy(state_store: StateStore) -> None:
    """Changing a plan or incident after saving it, or one read back, changes nothing
    stored until it is saved again."""
    store = state_store.remediation
    plan = make_plan("plan-a", "n1", 100.0)
    store.save_plan(plan)
    plan.steps[0].state = StepState.FAILED
    plan.steps.append(Step(Action(ActionKind.RESUME, "n1")))
    back = store.plan("plan-a")
    assert [s.state for s in back.steps] == [StepState.DONE, StepState.AWAITING_APPROVAL]
    back.steps[1].result = "changed"
    store.plans()[0].steps.clear()
    assert store.plan("plan-a").steps[1].result == "waiting"
    assert len(store.plans()[0].steps) == 2
    incident = Incident("i1", "n1", "Xid 79", 10.0, timeline=[
        TimelineEntry(10.0, "signal", "Xid 79 on gpu 3")])
    store.save_incident(incident)
    incident.timeline.append(TimelineEntry(11.0, "drain_now", "drained"))
    store.incident("i1").timeline.clear()
    assert len(store.incident("i1").timeline) == 1
    assert len(store.incidents()[0].timeline) == 1
