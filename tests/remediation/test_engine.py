"""The remediation engine over the in-memory actuator: plans, modes, retries, crashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.core.errors import DcopsError
from dcops.health.model import Health, Remedy
from dcops.remediation.engine import Remediator
from dcops.remediation.memory import MemoryActuator
from dcops.remediation.model import (
    ActionKind,
    IncidentState,
    Mode,
    PlanState,
    StepState,
)
from tests.remediation.conftest import Rig, diagnosis, make_rig


def kinds(rig: Rig, plan_id: str) -> list[tuple[str, str]]:
    plan = rig.remediator.plan(plan_id)
    return [(s.action.kind.value, s.state.value) for s in plan.steps]


def test_xid79_drains_requeues_waits_for_approval_then_reboots_and_resumes(rig: Rig) -> None:
    rig.actuator.place("n1", "job-7")
    plan = rig.remediator.handle(diagnosis(jobs=("job-7",)))
    assert plan is not None
    rig.run()
    assert rig.actuator.log == [("drain", "n1", "dcops: Xid 79 on gpu 3: reboot"),
                                ("requeue", "job-7", "")]
    assert kinds(rig, plan.id) == [("incident", "done"), ("drain_now", "done"),
                                   ("requeue", "done"), ("reboot", "awaiting_approval"),
                                   ("recheck", "pending"), ("resume", "pending")]
    assert rig.remediator.plan(plan.id).state is PlanState.WAITING
    assert "n1" in rig.remediator.out
    rig.remediator.approve(plan.id, "alice")
    rig.run()
    assert [entry[0] for entry in rig.actuator.log] == ["drain", "requeue", "reboot", "resume"]
    done = rig.store.plan(plan.id)
    assert done.state is PlanState.DONE and not done.node_out
    assert "n1" not in rig.remediator.out
    incident = rig.store.incident(done.incident_id)
    assert incident.state is IncidentState.RESOLVED
    timeline = [entry.kind for entry in incident.timeline]
    assert timeline[:2] == ["signal", "diagnosis"]
    assert {"drain_now", "requeue", "approval", "reboot", "recheck", "resume",
            "resolved"} <= set(timeline)
    reboot = next(e for e in incident.timeline if e.kind == "reboot")
    assert reboot.actor == "alice"
    actions = [(r.actor, r.action) for r in reversed(rig.audit.list())]
    assert ("dcops", "remediation.drain_now") in actions
    assert ("alice", "remediation.approve") in actions
    assert ("alice", "remediation.reboot") in actions


def test_notify_only_changes_nothing_and_says_what_it_would_do() -> None:
    rig = make_rig(modes={kind: Mode.NOTIFY_ONLY for kind in ActionKind})
    plan = rig.remediator.handle(diagnosis())
    assert plan is not None
    rig.run()
    assert rig.actuator.log == []
    stored = rig.store.plan(plan.id)
    assert stored.state is PlanState.DONE
    drain = stored.step(ActionKind.DRAIN_NOW)
    assert drain is not None and drain.state is StepState.SKIPPED
    assert drain.result.startswith("notify-only: would drain_now n1/3")
    assert any("would drain_now" in text for _, text, _ in rig.notifier.sent)


def test_a_crash_mid_plan_resumes_without_repeating_finished_steps() -> None:
    class Killed(BaseException):
        """Stands for kill -9 between the action and saving its result."""

    class DiesAfterRequeue(MemoryActuator):
        """Killed once, inside the hard drain, after its jobs were requeued."""

        dead = False

        def requeue(self, jobs: object) -> list[str]:
            done = super().requeue(jobs)  # type: ignore[arg-type]
            if not self.dead:
                self.dead = True
                raise Killed
            return done

    rig = make_rig(modes={ActionKind.REBOOT: Mode.AUTO})
    rig.actuator = actuator = DiesAfterRequeue(["n1", "n2"])
    rig.remediator = rig.fresh()
    actuator.place("n1", "job-1")
    plan = rig.remediator.handle(diagnosis(jobs=("job-1",)))
    assert plan is not None
    with pytest.raises(Killed):
        rig.run()
    stored = rig.store.plan(plan.id)
    assert [s.state for s in stored.steps[:3]] == [StepState.DONE, StepState.RUNNING,
                                                   StepState.PENDING]
    restarted = rig.fresh()
    restarted.advance()
    assert [e[0] for e in actuator.log] == ["drain", "requeue", "reboot", "resume"]
    assert actuator.requeued == ["job-1"]
    final = rig.store.plan(plan.id)
    assert final.state is PlanState.DONE
    drain = final.step(ActionKind.DRAIN_NOW)
    assert drain is not None and drain.attempts == 2
    requeue = final.step(ActionKind.REQUEUE)
    assert requeue is not None and "already pending or ended" in requeue.result


def test_an_unreachable_controller_is_retried_with_backoff_and_never_doubled(rig: Rig) -> None:
    rig.actuator.unavailable = 2
    plan = rig.remediator.handle(diagnosis(remedy=Remedy.REPAIR))
    assert plan is not None
    rig.run()
    drain = rig.remediator.plan(plan.id).step(ActionKind.DRAIN_NOW)
    assert drain is not None and drain.state is StepState.RUNNING
    assert "retrying in 2 s" in drain.result
    rig.run(1.0)
    assert rig.actuator.log == []
    rig.run(1.5)
    assert "retrying in 4 s" in drain.result
    rig.run(4.0)
    assert rig.actuator.log == [("drain", "n1", "dcops: Xid 79 on gpu 3: reboot")]
    final = rig.store.plan(plan.id)
    assert final.state is PlanState.DONE and final.node_out
    assert rig.store.incident(final.incident_id).state is IncidentState.MITIGATED
    assert any("needs a technician" in text for _, text, _ in rig.notifier.sent)


def test_a_node_drained_by_someone_else_is_never_resumed(rig: Rig) -> None:
    rig.actuator.nodes["n1"].drained = True
    rig.actuator.nodes["n1"].reason = "admin: BIOS update"
    plan = rig.remediator.handle(diagnosis(remedy=Remedy.RESET_GPU))
    assert plan is not None
    rig.run()
    assert rig.actuator.log == [("reset_gpu", "n1", "3")]
    stored = rig.store.plan(plan.id)
    resume = stored.step(ActionKind.RESUME)
    assert resume is not None and resume.state is StepState.SKIPPED
    assert "drained by someone else (admin: BIOS update)" in resume.result
    assert rig.actuator.nodes["n1"].drained


def test_a_failing_recheck_leaves_the_node_drained_for_repair() -> None:
    rig = make_rig(modes={ActionKind.REBOOT: Mode.AUTO})
    rig.rechecker.script = [False, False, False]
    plan = rig.remediator.handle(diagnosis())
    assert plan is not None
    rig.run()
    rig.run(60.0, rounds=3)
    stored = rig.store.plan(plan.id)
    assert stored.state is PlanState.FAILED
    assert "re-check failed 3 times (gpu 3 missing)" in stored.reason
    assert rig.actuator.nodes["n1"].drained and stored.node_out
    assert "n1" in rig.remediator.out
    assert rig.store.incident(stored.incident_id).state is IncidentState.OPEN
    assert ("resume", "n1", "") not in rig.actuator.log


def test_a_soft_drain_waits_for_the_jobs_to_end(rig: Rig) -> None:
    rig.actuator.place("n2", "long-job")
    plan = rig.remediator.handle(diagnosis("n2", health=Health.DEGRADED,
                                           remedy=Remedy.RESET_GPU))
    assert plan is not None
    assert [s.action.kind for s in plan.steps] == [
        ActionKind.INCIDENT, ActionKind.DRAIN, ActionKind.RESET_GPU, ActionKind.RECHECK,
        ActionKind.RESUME]
    rig.run()
    drain = rig.remediator.plan(plan.id).step(ActionKind.DRAIN)
    assert drain is not None and drain.state is StepState.RUNNING
    assert "waiting for 1 jobs to end (long-job)" in drain.result
    rig.run(10.0)
    assert rig.actuator.log == [("drain", "n2", "dcops: Xid 79 on gpu 3: reboot")]
    rig.actuator.nodes["n2"].jobs.clear()
    rig.run(10.0)
    assert [e[0] for e in rig.actuator.log] == ["drain", "reset_gpu", "resume"]
    assert rig.actuator.requeued == []


def test_a_stronger_diagnosis_escalates_the_live_plan(rig: Rig) -> None:
    rig.actuator.place("n1", "job-2")
    first = rig.remediator.handle(diagnosis(health=Health.HEALTHY, remedy=Remedy.RESTART_APP,
                                            cause="Xid 13 in job-2", jobs=("job-2",)))
    assert first is not None
    same = rig.remediator.handle(diagnosis(health=Health.FAILED, remedy=Remedy.REPAIR,
                                           cause="Xid 79 again on gpu 3: repair"))
    assert same is not None and same.id == first.id
    assert same.remedy == "repair"
    rig.run()
    stored = rig.store.plan(first.id)
    assert [(s.action.kind.value, s.state.value) for s in stored.steps] == [
        ("incident", "done"), ("requeue", "skipped"), ("drain_now", "done"),
        ("requeue", "done"), ("notify", "done")]
    assert rig.actuator.requeued == ["job-2"]
    timeline = [e.text for e in rig.store.incident(stored.incident_id).timeline]
    assert any(t.startswith("to repair: Xid 79 again") for t in timeline)


def test_a_weaker_diagnosis_is_only_noted(rig: Rig) -> None:
    plan = rig.remediator.handle(diagnosis(remedy=Remedy.REPAIR))
    assert plan is not None
    again = rig.remediator.handle(diagnosis(remedy=Remedy.REBOOT, cause="Xid 79 once more"))
    assert again is not None and again.id == plan.id and len(again.steps) == len(plan.steps)
    notes = [e.text for e in rig.store.incident(plan.incident_id).timeline]
    assert "Xid 79 once more" in notes


def test_watch_and_none_make_no_plan(rig: Rig) -> None:
    assert rig.remediator.handle(diagnosis(health=Health.SUSPECT, remedy=Remedy.WATCH)) is None
    assert rig.remediator.handle(diagnosis(health=Health.HEALTHY, remedy=Remedy.NONE)) is None
    assert rig.store.plans() == []


def test_preview_is_a_dry_run(rig: Rig) -> None:
    plan = rig.remediator.preview(diagnosis())
    assert [(s.action.kind.value, s.state.value) for s in plan.steps] == [
        ("incident", "pending"), ("drain_now", "pending"), ("requeue", "pending"),
        ("reboot", "awaiting_approval"), ("recheck", "pending"), ("resume", "pending")]
    assert rig.actuator.log == [] and rig.store.plans() == [] and rig.store.incidents() == []


def test_cancel_stops_a_plan_and_only_live_plans_change(rig: Rig) -> None:
    plan = rig.remediator.handle(diagnosis())
    assert plan is not None
    rig.run()
    cancelled = rig.remediator.cancel(plan.id, "bob", "moving the node to another rack")
    assert cancelled.state is PlanState.CANCELLED
    assert all(s.state in {StepState.DONE, StepState.SKIPPED} for s in cancelled.steps)
    with pytest.raises(DcopsError, match="is cancelled, not live"):
        rig.remediator.approve(plan.id, "bob")
    assert "n1" in rig.remediator.out


def test_a_node_the_cluster_manager_does_not_know_fails_with_the_reason(rig: Rig) -> None:
    plan = rig.remediator.handle(diagnosis("ghost-17", remedy=Remedy.REPAIR))
    assert plan is not None
    rig.run()
    stored = rig.store.plan(plan.id)
    assert stored.state is PlanState.FAILED
    assert "node 'ghost-17' not found" in stored.reason
    assert any("remediation failed" in text for _, text, _ in rig.notifier.sent)


def test_a_crash_resumes_from_the_sqlite_store(tmp_path: Path) -> None:
    from dcops.backends.sql.state import open_state

    with open_state(f"sqlite:///{tmp_path / 'state.db'}") as state:
        rig = make_rig(modes={ActionKind.REBOOT: Mode.AUTO})
        first = Remediator(state.remediation, rig.actuator, clock=rig.clock,
                           fleet_nodes=lambda: 3, rechecker=rig.rechecker)
        plan = first.handle(diagnosis(remedy=Remedy.REPAIR))
        assert plan is not None
        drain = plan.steps[1]
        drain.state = StepState.RUNNING  # killed while draining: saved as running
        state.remediation.save_plan(plan)
        rig.actuator.drain("n1", plan.steps[1].action.reason)  # the drain had happened
        restarted = Remediator(state.remediation, rig.actuator, clock=rig.clock,
                               fleet_nodes=lambda: 3, rechecker=rig.rechecker)
        assert [p.id for p in restarted.live()] == [plan.id]
        restarted.advance()
        assert [e[0] for e in rig.actuator.log] == ["drain"]
        done = state.remediation.plan(plan.id)
        assert done.state is PlanState.DONE and done.node_out
        assert restarted.out == {"n1"}
