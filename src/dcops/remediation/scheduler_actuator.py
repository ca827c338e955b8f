"""The `Actuator` over dcops's own scheduler (`JobService`): for jobs run by the local
executor, where dcops is the cluster manager. A drained node takes no new jobs; a
requeued job is stopped and queued again, restarting from its last checkpoint.

A GPU reset or a reboot is not something the scheduler can do: without a command for
it configured they fail with a clear reason, and the plan waits for a person."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dcops.core.errors import Invalid, NotFound
from dcops.remediation.actuator import NodeStatus
from dcops.scheduling.model import JobState
from dcops.scheduling.service import JobService

log = logging.getLogger(__name__)


class SchedulerActuator:
    """Node administration through the scheduler's view of the cluster."""

    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs

    def status(self, node: str) -> NodeStatus:
        info, running = self.jobs.node(node)
        return NodeStatus(node, not info.schedulable, info.reason, jobs=tuple(running))

    def drain(self, node: str, reason: str, *, hard: bool = False) -> None:
        info, running = self.jobs.node(node)
        if info.schedulable or info.reason != reason:
            self.jobs.set_node(node, schedulable=False, reason=reason)
            log.info("node %s drained: %s", node, reason)
        if hard and running:
            self.jobs.requeue(running, f"node {node} drained: {reason}")

    def resume(self, node: str) -> None:
        info, _ = self.jobs.node(node)
        if not info.schedulable:
            self.jobs.set_node(node, schedulable=True, reason="")
            log.info("node %s resumed", node)

    def requeue(self, jobs: Sequence[str]) -> list[str]:
        return self.jobs.requeue(jobs, "requeued by remediation")

    def reset_gpu(self, node: str, gpu: int) -> None:
        raise Invalid(f"cannot reset GPU {gpu} of {node}: the local executor has no reset",
                      where="remediation.executor",
                      hint="reset it by hand, then approve the re-check")

    def reboot(self, node: str) -> None:
        raise Invalid(f"cannot reboot {node}: the local executor has no BMC access",
                      where="remediation.executor",
                      hint="reboot it by hand, then approve the re-check")


class SchedulerAtRisk:
    """GPU-hours at risk from the scheduler's jobs: each running job's GPUs times the time
    since its last checkpoint (its whole run when it does not checkpoint)."""

    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs

    def __call__(self, job_ids: Sequence[str], now: float) -> float:
        total = 0.0
        for job_id in job_ids:
            try:
                job = self.jobs.get(job_id)
            except NotFound:
                continue
            if job.state is not JobState.RUNNING or job.last_start_s is None:
                continue
            elapsed = max(0.0, now - job.last_start_s)
            interval = job.spec.checkpoint_interval_s
            total += job.gpus * (elapsed % interval if interval else elapsed) / 3600.0
        return total
