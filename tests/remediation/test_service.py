"""The remediation service: telemetry batches in, suspects marked, lemons quarantined,
silent nodes found unreachable, previews that change nothing."""

from __future__ import annotations

import threading

import pytest

from dcops.core.clock import FakeClock
from dcops.core.errors import Unavailable
from dcops.health.diagnose import Diagnoser
from dcops.health.lemon import LemonScorer
from dcops.health.model import Signal, SignalKind
from dcops.health.signals import TelemetrySignals
from dcops.remediation.engine import Remediator
from dcops.remediation.memory import MemoryActuator
from dcops.remediation.model import ActionKind, Mode
from dcops.remediation.policy import DEFAULT_MODES, RemediationPolicy
from dcops.remediation.service import RemediationService, TelemetryRechecker
from dcops.remediation.store import MemoryRemediationStore
from dcops.telemetry.model import Batch, make_labels

NODES = [f"n{i}" for i in range(20)]


def build(clock: FakeClock, *, lemons: LemonScorer | None = None,
          unreachable_s: float = 60.0) -> tuple[RemediationService, list[tuple[str, bool]],
                                                 MemoryRemediationStore]:
    store = MemoryRemediationStore()
    rechecker = TelemetryRechecker(quiet_s=30.0)
    policy = RemediationPolicy({**DEFAULT_MODES, ActionKind.REBOOT: Mode.NOTIFY_ONLY})
    remediator = Remediator(store, MemoryActuator(NODES), clock=clock,
                            fleet_nodes=lambda: len(NODES), policy=policy, rechecker=rechecker)
    marks: list[tuple[str, bool]] = []
    service = RemediationService(Diagnoser(), remediator, batch_signals=TelemetrySignals(),
                                 rechecker=rechecker,
                                 on_suspect=lambda n, s: marks.append((n, s)),
                                 new_diagnoser=Diagnoser, lemons=lemons,
                                 gpu_model=lambda node: "H100", unreachable_s=unreachable_s)
    remediator.listen(service.feedback)
    return service, marks, store


def heartbeat(nodes: list[str], ts_ms: int, xids: dict[tuple[str, int], float] | None = None
              ) -> Batch:
    batch = Batch()
    for node in nodes:
        batch.add(make_labels("dcops_host_cpu_percent", {"node": node, "cpu": "total"}),
                  ts_ms, 10.0)
    for (node, code), count in (xids or {}).items():
        batch.add(make_labels("dcops_gpu_xid_errors_total",
                              {"node": node, "gpu": "0", "xid": str(code)}), ts_ms, count)
    return batch


def test_a_batch_without_fault_series_gives_no_signal_and_a_fault_gives_a_plan() -> None:
    clock = FakeClock(1000.0)
    service, _, store = build(clock)
    assert service.ingest(heartbeat(NODES, 1_000_000, {("n3", 79): 0.0})) == 0
    assert service.process() == [] and store.plans() == []
    clock.advance(15)
    assert service.ingest(heartbeat(NODES, 1_015_000, {("n3", 79): 2.0})) == 1
    [plan] = service.process()
    assert plan.node == "n3" and "Xid 79" in plan.cause
    assert service.health()[0].node == "n3"
    assert service.node_health("n3").health.value == "failed"


def test_a_suspect_gpu_marks_its_node_and_a_clean_check_clears_it() -> None:
    clock = FakeClock(1000.0)
    service, marks, _ = build(clock)
    service.submit([Signal(1000.0, "n1", SignalKind.XID, 0, code=92)])
    service.process()
    assert marks == [("n1", True)]
    service.submit([Signal(1010.0, "n1", SignalKind.CHECK_PASSED)])
    service.process()
    assert marks == [("n1", True), ("n1", False)]


def test_a_lemon_is_quarantined_against_its_peers() -> None:
    clock = FakeClock(0.0)
    lemons = LemonScorer(fleet_rate_per_day=419 / (2048 * 54))
    service, marks, _ = build(clock, lemons=lemons, unreachable_s=1e9)
    service.ingest(heartbeat(NODES, 0))
    for day in (1, 5, 9):
        clock.set(day * 86_400.0)
        service.ingest(heartbeat(NODES, int(clock.now() * 1000)))
        service.submit([Signal(clock.now(), "n7", SignalKind.ECC_DBE, 0, value=1.0),
                        Signal(clock.now() + 1, "n7", SignalKind.CHECK_PASSED)])
        service.process()
    clock.set(30 * 86_400.0)
    service.ingest(heartbeat(NODES, int(clock.now() * 1000)))
    score = lemons.score("n7")
    assert score.faults >= 2 and score.suspect
    assert ("n7", True) in marks
    assert not lemons.score("n2").suspect


def test_a_node_that_goes_silent_is_unreachable_and_planned_for() -> None:
    clock = FakeClock(1000.0)
    service, _, store = build(clock, unreachable_s=60.0)
    service.ingest(heartbeat(["n1", "n2"], 1_000_000))
    clock.advance(30)
    service.ingest(heartbeat(["n2"], 1_030_000))
    service.process()
    assert store.plans() == []
    clock.advance(200)
    service.ingest(heartbeat(["n2"], 1_230_000))
    service.process()
    [plan] = store.plans()
    assert plan.node == "n1" and plan.cause.startswith("node silent for 230 s")


def test_preview_changes_nothing() -> None:
    clock = FakeClock(1000.0)
    service, _, store = build(clock)
    [(diagnosis, plan)] = service.preview([Signal(1000.0, "n4", SignalKind.XID, 2, code=79)])
    assert diagnosis.node == "n4" and plan.id == "dry-run"
    assert store.plans() == [] and service.health() == []


def test_a_flood_of_signals_keeps_the_newest() -> None:
    clock = FakeClock(1000.0)
    service, _, _ = build(clock)
    from dcops.remediation import service as module

    flood = [Signal(1000.0 + i, "n1", SignalKind.ECC_SBE, 0) for i in range(module.MAX_QUEUED + 5)]
    assert service.submit(flood) == module.MAX_QUEUED + 5
    assert service.dropped == 5


def test_an_operator_waiting_on_a_long_step_is_told_to_retry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from dcops.remediation import service as module

    clock = FakeClock(1000.0)
    service, _, _ = build(clock)
    monkeypatch.setattr(module, "OPERATOR_WAIT_S", 0.05)
    held, release = threading.Event(), threading.Event()

    def long_step() -> None:
        with service._engine:  # as a playbook run in a pass holds it
            held.set()
            release.wait(5)

    worker = threading.Thread(target=long_step)
    worker.start()
    held.wait(5)
    try:
        with pytest.raises(Unavailable, match="busy carrying out a step"):
            service.close_breaker("alice")
        assert service.health() == []  # reading health does not wait for the engine
    finally:
        release.set()
        worker.join()
    service.close_breaker("alice")
