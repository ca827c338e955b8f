"""End to end on a real Slurm: an Xid 79 sample for a node leads to the node drained in
Slurm with dcops's reason and its job requeued; after a clean re-check (the node reports
again, with no fault) it is resumed — here once an operator confirms the reboot, which the
test Slurm cannot do itself. Everything is read back from Slurm itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from dcops.backends.slurm_admin import SlurmActuator
from dcops.core.clock import FakeClock
from dcops.health.diagnose import Diagnoser
from dcops.health.signals import TelemetrySignals
from dcops.remediation.engine import Remediator, Retry
from dcops.remediation.model import ActionKind, IncidentState, Mode, PlanState, StepState
from dcops.remediation.policy import DEFAULT_MODES, RemediationPolicy
from dcops.remediation.service import RemediationService, TelemetryRechecker
from dcops.remediation.store import MemoryRemediationStore
from dcops.telemetry.model import Batch, make_labels
from tests.fixtures.slurm import SlurmCluster, job_field, node_state, sbatch_sleep

pytestmark = pytest.mark.engines


@pytest.fixture
def cluster(slurm_cluster: SlurmCluster) -> Iterator[SlurmCluster]:
    """The session's Slurm; every job cancelled and the node resumed afterwards."""
    try:
        yield slurm_cluster
    finally:
        slurm_cluster.cancel_all()
        with contextlib.suppress(RuntimeError):
            slurm_cluster.command("scontrol", "update", f"NodeName={slurm_cluster.node}",
                                  "State=RESUME")
        slurm_cluster.wait_idle()


def telemetry(node: str, xids: float, ts_ms: int) -> Batch:
    batch = Batch()
    batch.add(make_labels("dcops_gpu_xid_errors_total",
                          {"node": node, "gpu": "1", "xid": "79"}), ts_ms, xids)
    batch.add(make_labels("dcops_host_cpu_percent", {"node": node, "cpu": "total"}),
              ts_ms, 12.0)
    return batch


def test_xid_79_drains_requeues_and_after_a_clean_recheck_resumes(
        cluster: SlurmCluster) -> None:
    node = cluster.node
    slurm_id = sbatch_sleep(cluster, "train-e2e")
    clock = FakeClock(1_700_000_000.0)
    store = MemoryRemediationStore()
    rechecker = TelemetryRechecker(quiet_s=30.0)
    # the test Slurm has no RebootProgram: the reboot is only announced
    policy = RemediationPolicy({**DEFAULT_MODES, ActionKind.REBOOT: Mode.NOTIFY_ONLY})
    remediator = Remediator(store, SlurmActuator(slurm_conf=cluster.conf,
                                                 bin_dir=cluster.bin_dir, timeout_s=20),
                            clock=clock, fleet_nodes=lambda: 100, policy=policy,
                            rechecker=rechecker, retry=Retry(recheck_interval_s=20.0))
    service = RemediationService(Diagnoser(), remediator, batch_signals=TelemetrySignals(),
                                 rechecker=rechecker)
    remediator.listen(service.feedback)

    def at(seconds: float) -> int:
        clock.set(1_700_000_000.0 + seconds)
        return int(clock.now() * 1000)

    service.ingest(telemetry(node, 0.0, at(0)))
    service.process()
    assert "drain" not in node_state(cluster)
    service.ingest(telemetry(node, 1.0, at(10)))
    service.process()
    assert "drain" in node_state(cluster)
    reasons = cluster.command("sinfo", "--list-reasons", "--noheader", "--format=%n|%E")
    assert f"{node}|dcops: " in reasons and "79" in reasons
    assert job_field(cluster, slurm_id, "Restarts") == "1"
    [plan] = store.plans()
    assert plan.state is PlanState.RUNNING
    recheck = plan.step(ActionKind.RECHECK)
    assert recheck is not None and "not clean" in recheck.result
    service.ingest(telemetry(node, 1.0, at(50)))  # reporting again, no new Xid
    service.process()
    waiting = store.plan(plan.id)
    resume = waiting.step(ActionKind.RESUME)
    assert resume is not None and resume.state is StepState.AWAITING_APPROVAL
    assert "not carried out (notify-only)" in resume.result
    assert "drain" in node_state(cluster)  # not resumed on a re-check alone
    service.approve(plan.id, "alice")  # the operator rebooted it by hand
    service.process()
    done = store.plan(plan.id)
    assert done.state is PlanState.DONE, done.reason
    assert "drain" not in node_state(cluster)
    assert store.incident(done.incident_id).state is IncidentState.RESOLVED
