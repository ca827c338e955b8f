"""SimActuator: the Actuator Protocol over simulated nodes, asserted on its action log."""

from __future__ import annotations

import pytest

from dcops.core.clock import FakeClock
from dcops.core.errors import Conflict, Invalid, NotFound, Unavailable
from dcops.health.model import Remedy, Signal, SignalKind
from dcops.remediation.actuator import Actuator, NodeStatus
from dcops.simulation.actuator import KernelClock, SimActuator
from dcops.simulation.faulttrace import FaultTrace, TracedFault
from dcops.simulation.replay import Kernel


def item(node: str, gpu: int | None, at: float, remedy: Remedy, repaired_at: float,
         cause: str = "GPU HBM3 memory", kind: SignalKind = SignalKind.XID) -> TracedFault:
    signal = Signal(at, node, kind, gpu=gpu, code=48 if kind is SignalKind.XID else None)
    return TracedFault(None, (signal,), True, node, gpu, at, remedy, repaired_at, cause)


def trace_of(*items: TracedFault) -> FaultTrace:
    return FaultTrace.of(items, nodes=4, gpus_per_node=8, horizon_s=1e6)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(0.0)


def test_is_an_actuator(clock: FakeClock) -> None:
    actuator: Actuator = SimActuator(2, 8, clock)
    assert actuator.status("n1") == NodeStatus("n1", drained=False)


def test_drain_requeue_resume_timeline_and_idempotence(clock: FakeClock) -> None:
    sim = SimActuator(4, 8, clock, jobs={"j1": ["n0", "n1"], "j2": ["n2"]})
    clock.set(10.0)
    sim.drain("n0", "dcops: xid 48")
    sim.drain("n0", "dcops: again")  # nothing: already drained
    assert sim.status("n0") == NodeStatus("n0", True, "dcops: xid 48", False, ("j1",))
    clock.set(20.0)
    assert sim.requeue(["j1", "j1", "nope"]) == ["j1"]
    assert sim.requeue(["j1"]) == []  # pending already
    assert sim.status("n1").jobs == ()
    clock.set(30.0)
    sim.resume("n0")
    sim.resume("n0")  # nothing: in service
    sim.resume("n3")
    assert sim.log == [(10.0, "drain", "n0", "dcops: xid 48"), (20.0, "requeue", "j1", ""),
                       (30.0, "resume", "n0", "")]
    assert sim.pending == ["j1"]
    sim.start_job("j1", ["n3"])
    assert sim.pending == [] and sim.status("n3").jobs == ("j1",)
    sim.end_job("j2")
    assert sim.requeue(["j2"]) == []


def test_hard_drain_stops_the_jobs_now(clock: FakeClock) -> None:
    sim = SimActuator(2, 8, clock, jobs={"j1": ["n0", "n1"]})
    clock.set(5.0)
    sim.drain("n0", "dcops: xid 79", hard=True)
    assert sim.log == [(5.0, "drain_now", "n0", "dcops: xid 79"), (5.0, "requeue", "j1", "")]
    assert sim.status("n0").jobs == () and sim.status("n1").jobs == ()


def test_reset_repairs_a_reset_fault_after_its_duration(clock: FakeClock) -> None:
    dbe = item("n1", 3, 100.0, Remedy.RESET_GPU, repaired_at=100.0 + 8 * 3600)
    sim = SimActuator.for_trace(trace_of(dbe), clock)
    clock.set(150.0)
    assert sim.recheck("n1").kind is SignalKind.CHECK_FAILED
    sim.drain("n1", "dcops: xid 48")
    sim.reset_gpu("n1", 3)
    sim.reset_gpu("n1", 3)  # in progress: nothing
    assert sim.recheck("n1", at=200.0).detail == "GPU 3 resetting"
    passed = sim.recheck("n1", at=270.0)
    assert passed == Signal(270.0, "n1", SignalKind.CHECK_PASSED, source="recheck")
    assert sim.actions("reset_gpu") == [(150.0, "reset_gpu", "n1", "3")]
    assert [e[3] for e in sim.actions("recheck")] == [
        "failed: GPU HBM3 memory", "failed: GPU 3 resetting", "passed"]


def test_reset_of_another_gpu_repairs_nothing(clock: FakeClock) -> None:
    dbe = item("n1", 3, 100.0, Remedy.RESET_GPU, repaired_at=1000.0)
    sim = SimActuator.for_trace(trace_of(dbe), clock)
    clock.set(150.0)
    sim.drain("n1", "dcops: x")
    sim.reset_gpu("n1", 2)
    failed = sim.recheck("n1", at=500.0)
    assert (failed.kind, failed.gpu, failed.detail) == (SignalKind.CHECK_FAILED, 3,
                                                        "GPU HBM3 memory")
    assert sim.recheck("n1", at=1000.0).kind is SignalKind.CHECK_PASSED  # repaired by time


def test_reboot_repairs_reset_faults_but_not_repair_ones(clock: FakeClock) -> None:
    gsp = item("n0", 1, 10.0, Remedy.RESET_GPU, repaired_at=1e5, cause="GSP")
    sim = SimActuator.for_trace(trace_of(gsp), clock, reboot_s=600.0)
    clock.set(20.0)
    sim.drain("n0", "dcops: gsp")
    sim.reboot("n0")
    sim.reboot("n0")  # rebooting: nothing
    assert sim.status("n0").down
    with pytest.raises(Conflict, match="rebooting"):
        sim.resume("n0")
    with pytest.raises(Unavailable, match="rebooting"):
        sim.reset_gpu("n0", 1)
    assert sim.recheck("n0", at=619.0).detail == "rebooting"
    assert sim.recheck("n0", at=620.0).kind is SignalKind.CHECK_PASSED
    clock.set(620.0)
    sim.resume("n0")
    assert sim.actions("reboot") == [(20.0, "reboot", "n0", "")]

    psu = item("n2", None, 10.0, Remedy.REPAIR, repaired_at=5000.0, cause="Power supply",
               kind=SignalKind.UNREACHABLE)
    sim = SimActuator.for_trace(trace_of(psu), clock)
    assert sim.status("n2").down  # silent until repaired
    sim.drain("n2", "dcops: unreachable")
    sim.reboot("n2")
    assert sim.recheck("n2", at=2000.0).detail == "Power supply"
    assert sim.recheck("n2", at=5000.0).kind is SignalKind.CHECK_PASSED


def test_a_fix_before_the_fault_repairs_nothing(clock: FakeClock) -> None:
    later = item("n0", 0, 500.0, Remedy.RESET_GPU, repaired_at=9000.0)
    sim = SimActuator.for_trace(trace_of(later), clock, reset_s=10.0)
    sim.drain("n0", "dcops: x")
    sim.reset_gpu("n0", 0)
    assert sim.recheck("n0", at=600.0).kind is SignalKind.CHECK_FAILED


def test_refusals(clock: FakeClock) -> None:
    sim = SimActuator(2, 8, clock, jobs={"j1": ["n0"]})
    with pytest.raises(NotFound):
        sim.status("x9")
    with pytest.raises(Conflict, match="not drained"):
        sim.reboot("n0")
    sim.drain("n0", "dcops: x")
    with pytest.raises(Conflict, match="still run"):
        sim.reset_gpu("n0", 0)
    sim.requeue(["j1"])
    with pytest.raises(Invalid, match="GPU 8"):
        sim.reset_gpu("n0", 8)
    with pytest.raises(Invalid):
        SimActuator(0, 8, clock)


def test_runs_on_a_kernel_clock() -> None:
    kernel = Kernel()
    sim = SimActuator(1, 8, KernelClock(kernel))
    kernel.schedule(42.0, 0, None)
    kernel.step()
    sim.drain("n0", "dcops: x")
    assert sim.log == [(42.0, "drain", "n0", "dcops: x")]
