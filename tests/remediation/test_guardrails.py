"""Guardrails: the drain budget, the rate limit, cooldowns and the storm breaker."""

from __future__ import annotations

import pytest

from dcops.core.errors import Invalid
from dcops.health.model import Health, Remedy
from dcops.remediation.guardrails import Guardrails, GuardrailSettings
from dcops.remediation.model import ActionKind, Mode, PlanState, StepState
from tests.remediation.conftest import diagnosis, make_rig


def drained(rig_log: list[tuple[str, str, str]]) -> list[str]:
    return [node for verb, node, _ in rig_log if verb == "drain"]


def test_a_storm_drains_no_more_than_the_budget_and_pages_once() -> None:
    nodes = [f"n{i:03d}" for i in range(200)]
    settings = GuardrailSettings(max_out_nodes=50, max_out_fraction=0.05, max_drains=100,
                                 storm_nodes=20, storm_window_s=300.0)
    rig = make_rig(nodes, settings=settings)
    for i, node in enumerate(nodes):
        rig.clock.advance(0.25)
        rig.remediator.handle(diagnosis(node, remedy=Remedy.REPAIR, at=rig.clock.now()))
        if i % 10 == 0:
            rig.remediator.advance()
    rig.run(1.0, rounds=5)
    out = drained(rig.actuator.log)
    assert 0 < len(out) <= settings.budget(200) == 10
    assert rig.remediator.guardrails.breaker_open(rig.clock.now())
    assert rig.notifier.pages == 1
    blocked = [p for p in rig.store.plans(limit=1000)
               if any(s.state is StepState.BLOCKED for s in p.steps)]
    assert len(blocked) == 200 - len(out)
    assert all("circuit breaker open" in p.reason or "drain budget" in p.reason
               for p in blocked)
    records = [r.action for r in rig.audit.list(limit=10_000)]
    assert records.count("remediation.breaker.open") == 1



def test_a_growing_storm_notes_each_held_plan_once() -> None:
    """The breaker's reason does not change with every new flag, so a plan it holds is
    noted (and saved) once, not again on every pass while the storm grows."""
    nodes = [f"n{i:03d}" for i in range(60)]
    rig = make_rig(nodes, settings=GuardrailSettings(storm_nodes=5, storm_window_s=300.0))
    plans = []
    for node in nodes:
        rig.clock.advance(1.0)
        plans.append(rig.remediator.handle(diagnosis(node, remedy=Remedy.REPAIR,
                                                     at=rig.clock.now())))
        rig.remediator.advance()
    assert plans[10] is not None
    held = rig.store.plan(plans[10].id)
    assert held.reason.startswith("circuit breaker open") and "(5 nodes flagged" in held.reason
    timeline = rig.store.incident(held.incident_id).timeline
    assert sum(1 for entry in timeline if entry.kind == "blocked") == 1

def test_the_drain_budget_counts_nodes_left_for_repair() -> None:
    rig = make_rig(settings=GuardrailSettings(max_out_nodes=1, max_out_fraction=1.0))
    first = rig.remediator.handle(diagnosis("n1", remedy=Remedy.REPAIR))
    rig.run()
    assert first is not None and rig.store.plan(first.id).state is PlanState.DONE
    second = rig.remediator.handle(diagnosis("n2", remedy=Remedy.REPAIR))
    rig.run()
    assert second is not None
    assert "drain budget spent: 1 of 1 nodes already out" in rig.store.plan(second.id).reason
    rig.actuator.resume("n1")  # a technician repaired n1 and put it back
    rig.run(61.0)
    assert drained(rig.actuator.log) == ["n1", "n2"]
    assert rig.store.plan(second.id).state is PlanState.DONE


def test_the_rate_limit_spaces_drains_out() -> None:
    rig = make_rig(settings=GuardrailSettings(max_out_nodes=10, max_out_fraction=1.0,
                                              max_drains=2, rate_window_s=600.0))
    for node in ("n1", "n2", "n3"):
        rig.remediator.handle(diagnosis(node, remedy=Remedy.REPAIR))
    rig.run()
    assert drained(rig.actuator.log) == ["n1", "n2"]
    third = next(p for p in rig.store.plans() if p.node == "n3")
    assert third.reason.startswith("rate limit: 2 drains")
    rig.run(601.0)
    assert drained(rig.actuator.log) == ["n1", "n2", "n3"]


def test_a_repeat_offender_is_not_resumed_on_its_own() -> None:
    rig = make_rig(modes={ActionKind.REBOOT: Mode.AUTO})
    first = rig.remediator.handle(diagnosis("n1"))
    rig.run()
    assert first is not None and rig.store.plan(first.id).state is PlanState.DONE
    rig.clock.advance(300.0)
    again = rig.remediator.handle(diagnosis("n1", at=rig.clock.now()))
    assert again is not None and again.id != first.id
    rig.run()
    stored = rig.store.plan(again.id)
    reboot = stored.step(ActionKind.REBOOT)
    assert reboot is not None and reboot.state is StepState.BLOCKED
    assert reboot.result.startswith("cooldown: n1 was reset or rebooted 300 s ago")
    rig.remediator.approve(again.id, "carol")
    rig.run()
    resume = rig.store.plan(again.id).step(ActionKind.RESUME)
    assert resume is not None and resume.state is StepState.DONE
    assert [verb for verb, _, _ in rig.actuator.log].count("reboot") == 2


def test_a_resumed_node_that_fails_again_waits_for_an_operator() -> None:
    rig = make_rig(modes={ActionKind.REBOOT: Mode.AUTO})
    rig.remediator.handle(diagnosis("n1", remedy=Remedy.RESET_GPU))
    rig.run()
    again = rig.remediator.handle(diagnosis("n1", remedy=Remedy.RESET_GPU))
    rig.run(10.0)
    assert again is not None
    stored = rig.store.plan(again.id)
    blocked = {s.action.kind: s.result for s in stored.steps if s.state is StepState.BLOCKED}
    assert list(blocked) == [ActionKind.RESET_GPU]
    rig.remediator.approve(again.id, "dan")
    rig.run()
    assert rig.store.plan(again.id).state is PlanState.DONE


def test_the_breaker_closes_after_a_quiet_period_or_by_hand() -> None:
    guard = Guardrails(GuardrailSettings(storm_nodes=3, storm_window_s=60.0,
                                         storm_quiet_s=600.0))
    assert [guard.flag(n, 0.0) for n in ("a", "b", "c")] == [False, False, True]
    assert guard.breaker_open(100.0)
    why = guard.check(ActionKind.DRAIN, "d", 100.0, out_nodes=set(), fleet_nodes=100,
                      approved=False)
    assert why is not None and why.startswith("circuit breaker open")
    assert guard.check(ActionKind.DRAIN, "d", 100.0, out_nodes=set(), fleet_nodes=100,
                       approved=True) is None
    assert not guard.breaker_open(600.0)
    assert [guard.flag(n, 700.0) for n in ("x", "y", "z")] == [False, False, True]
    guard.close_breaker()
    assert not guard.breaker_open(701.0)


def test_flags_outside_the_window_do_not_make_a_storm() -> None:
    guard = Guardrails(GuardrailSettings(storm_nodes=3, storm_window_s=60.0))
    assert not any(guard.flag(f"n{i}", i * 61.0) for i in range(10))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("max_out_nodes", 0, "max_out_nodes must be 1 or more"),
    ("max_out_fraction", 1.5, "max_out_fraction must be in (0, 1]"),
    ("cooldown_s", -1.0, "cooldown_s must be 0 or more seconds"),
])
def test_settings_are_checked(field: str, value: float, message: str) -> None:
    with pytest.raises(Invalid, match=message.replace("(", r"\(").replace("]", r"\]")):
        GuardrailSettings(**{field: value})  # type: ignore[arg-type]


def test_budget_is_the_smaller_of_count_and_share() -> None:
    settings = GuardrailSettings(max_out_nodes=10, max_out_fraction=0.02)
    assert [settings.budget(n) for n in (10, 100, 1000, 100_000)] == [1, 2, 10, 10]


def test_a_node_still_draining_counts_against_the_budget() -> None:
    rig = make_rig(settings=GuardrailSettings(max_out_nodes=1, max_out_fraction=1.0))
    rig.actuator.place("n1", "long-job")
    rig.remediator.handle(diagnosis("n1", health=Health.DEGRADED, remedy=Remedy.RESET_GPU))
    rig.run()
    assert rig.remediator.out == {"n1"}
    rig.remediator.handle(diagnosis("n2", remedy=Remedy.REPAIR))
    rig.run()
    assert drained(rig.actuator.log) == ["n1"]
