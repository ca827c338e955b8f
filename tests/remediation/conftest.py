"""Shared set-up for the remediation tests: a remediator over the in-memory twins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from dcops.access.store import MemoryAuditLog
from dcops.core.clock import FakeClock
from dcops.health.model import (
    Diagnosis,
    Evidence,
    Health,
    Remedy,
    Signal,
    SignalKind,
)
from dcops.remediation.engine import Remediator, Retry
from dcops.remediation.guardrails import Guardrails, GuardrailSettings
from dcops.remediation.memory import MemoryActuator
from dcops.remediation.model import ActionKind, Mode
from dcops.remediation.policy import DEFAULT_MODES, RemediationPolicy
from dcops.remediation.ports import RecordingNotifier
from dcops.remediation.store import MemoryRemediationStore


@dataclass
class ScriptedRechecker:
    """Answers re-checks from a script (True: clean); clean once the script runs out."""

    script: list[bool] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

    def recheck(self, node: str, gpu: int | None, now: float) -> Signal:
        self.asked.append(node)
        clean = self.script.pop(0) if self.script else True
        kind = SignalKind.CHECK_PASSED if clean else SignalKind.CHECK_FAILED
        return Signal(now, node, kind, gpu, detail="" if clean else "gpu 3 missing",
                      source="recheck")


@dataclass
class Rig:
    clock: FakeClock
    store: MemoryRemediationStore
    actuator: MemoryActuator
    notifier: RecordingNotifier
    audit: MemoryAuditLog
    rechecker: ScriptedRechecker
    remediator: Remediator
    modes: dict[ActionKind, Mode] | None = None
    settings: GuardrailSettings | None = None

    def fresh(self) -> Remediator:
        """A new remediator on the same store and actuator: a restart of the control plane."""
        return make_remediator(self.clock, self.store, self.actuator, self.notifier,
                               self.audit, self.rechecker, modes=self.modes,
                               settings=self.settings)

    def run(self, seconds: float = 0.0, rounds: int = 1) -> None:
        for _ in range(rounds):
            self.clock.advance(seconds)
            self.remediator.advance()


def make_remediator(clock: FakeClock, store: MemoryRemediationStore, actuator: MemoryActuator,
                    notifier: RecordingNotifier, audit: MemoryAuditLog,
                    rechecker: ScriptedRechecker, *,
                    modes: dict[ActionKind, Mode] | None = None,
                    settings: GuardrailSettings | None = None) -> Remediator:
    policy = RemediationPolicy({**DEFAULT_MODES, **(modes or {})})
    return Remediator(store, actuator, clock=clock, fleet_nodes=lambda: len(actuator.nodes),
                      policy=policy, guardrails=Guardrails(settings or GuardrailSettings(
                          max_out_nodes=10, max_out_fraction=1.0)),
                      audit=audit, notifier=notifier, rechecker=rechecker,
                      retry=Retry(recheck_attempts=3, recheck_interval_s=60.0))


def make_rig(nodes: Sequence[str] = ("n1", "n2", "n3"), *,
             modes: dict[ActionKind, Mode] | None = None,
             settings: GuardrailSettings | None = None) -> Rig:
    clock, store, actuator = FakeClock(1000.0), MemoryRemediationStore(), MemoryActuator(nodes)
    notifier, audit, rechecker = RecordingNotifier(), MemoryAuditLog(), ScriptedRechecker()
    remediator = make_remediator(clock, store, actuator, notifier, audit, rechecker,
                                 modes=modes, settings=settings)
    return Rig(clock, store, actuator, notifier, audit, rechecker, remediator, modes, settings)


@pytest.fixture
def rig() -> Rig:
    return make_rig()


def diagnosis(node: str = "n1", *, gpu: int | None = 3, health: Health = Health.FAILED,
              remedy: Remedy = Remedy.REBOOT, cause: str = "Xid 79 on gpu 3: reboot",
              jobs: tuple[str, ...] = (), at: float = 1000.0) -> Diagnosis:
    signal = Signal(at - 2, node, SignalKind.XID, gpu, code=79, source="telemetry")
    return Diagnosis(node, gpu, health, remedy, cause, at,
                     (Evidence(signal, "Xid 79 GPU_HAS_FALLEN_OFF_THE_BUS"),), jobs)
