"""`replay`: the live diagnoser and remediator over a hand-built fault trace."""

from __future__ import annotations

from dcops.health.model import Remedy, Signal, SignalKind
from dcops.remediation.replay import ReplaySettings, replay
from dcops.simulation.failures import Fault
from dcops.simulation.faulttrace import FaultTrace, TracedFault

DAY_S = 86_400.0


def xid79(at: float, node: int, gpu: int) -> TracedFault:
    """A GPU fallen off the bus: hardware, repaired 8 h later."""
    signal = Signal(at, f"n{node}", SignalKind.XID, gpu=gpu, code=79,
                    detail="GPU has fallen off the bus", source="kernel-log")
    fault = Fault(at, node, gpu, "GPU", 8 * 3600.0, "Faulty GPU (incl. NVLink)")
    return TracedFault(fault, (signal,), True, f"n{node}", gpu, at, Remedy.REPAIR,
                       at + 8 * 3600.0, fault.component)


def lone_xid13(at: float, node: int, gpu: int, job: str) -> TracedFault:
    """Noise: one application Xid 13 in a job."""
    signal = Signal(at, f"n{node}", SignalKind.XID, gpu=gpu, code=13, job=job,
                    detail="graphics engine exception", source="kernel-log")
    return TracedFault(None, (signal,), False, f"n{node}", gpu, at, Remedy.RESTART_APP, at,
                       "noise: xid 13")


def test_an_xid_79_is_one_true_drain_seen_after_the_telemetry_delay() -> None:
    trace = FaultTrace.of([xid79(3600.0, 3, 5)], 8, 8, DAY_S)
    result = replay(trace, ReplaySettings(telemetry_delay_s=20.0))
    assert (result.faults, result.hardware_faults) == (1, 1)
    assert (result.true_drains, result.false_drains, result.missed) == (1, 0, 0)
    assert result.requeues == 1 and result.max_out == 1
    response = result.responses[0]
    assert response.detect_s == 20.0 and response.needs_spare and not response.false_drain


def test_a_lone_application_xid_drains_nothing() -> None:
    trace = FaultTrace.of([lone_xid13(7200.0, 2, 1, "j9")], 8, 8, DAY_S)
    result = replay(trace)
    assert (result.true_drains, result.false_drains, result.missed) == (0, 0, 0)
    assert result.max_out == 0 and result.hardware_faults == 0
    assert not result.responses[0].needs_spare


def test_both_together_are_scored_apart() -> None:
    trace = FaultTrace.of([lone_xid13(600.0, 2, 1, "j9"), xid79(3600.0, 3, 5)], 8, 8, DAY_S)
    result = replay(trace)
    assert (result.true_drains, result.false_drains, result.missed) == (1, 0, 0)
    assert not result.responses[0].needs_spare
    assert result.responses[1].detect_s == ReplaySettings().telemetry_delay_s
