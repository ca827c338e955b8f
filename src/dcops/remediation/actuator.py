"""What carries remediation actions out: the `Actuator` Protocol (Slurm, the local
executor, the simulator) and the `PlaybookRunner` Protocol (Ansible).

Every call is idempotent: draining a drained node, resuming a node in service or
requeueing a job already pending does nothing and succeeds, so a step retried after a
timeout or a crash is never done twice. A call that cannot reach its system raises
`dcops.core.errors.Unavailable` (retry later); one the system refuses raises another
`DcopsError` (the step fails with that reason).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A node as its cluster manager sees it now."""

    name: str
    drained: bool
    """Draining or drained: nothing new is placed on it."""
    reason: str = ""
    """The drain reason the cluster manager holds ("" when not drained)."""
    down: bool = False
    jobs: tuple[str, ...] = ()
    """Ids (dcops's where known, else the manager's) of jobs running on it."""


class Actuator(Protocol):
    """Node administration on one cluster manager."""

    def status(self, node: str) -> NodeStatus:
        """The node's state now; `NotFound` for a node the manager does not know."""
        ...

    def drain(self, node: str, reason: str, *, hard: bool = False) -> None:
        """Place nothing new on `node`, keeping `reason`; `hard` also stops its jobs now
        (they are requeued, restarting from their last checkpoint)."""
        ...

    def resume(self, node: str) -> None:
        """Return a drained node to service."""
        ...

    def requeue(self, jobs: Sequence[str]) -> list[str]:
        """Requeue these jobs (restart from their last checkpoint); returns those that were
        requeued (a job already pending or ended is left alone and not returned)."""
        ...

    def reset_gpu(self, node: str, gpu: int) -> None:
        """Reset one GPU of a drained node."""
        ...

    def reboot(self, node: str) -> None:
        """Power-cycle a drained node (BMC)."""
        ...


@dataclass(frozen=True, slots=True)
class PlaybookEvent:
    """One event of a playbook run (a task started, ok, changed, failed, unreachable)."""

    at: float
    event: str
    host: str = ""
    task: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PlaybookResult:
    """How a playbook run ended: `status` ("successful", "failed", "timeout", ...),
    `rc`, and the failed and unreachable hosts."""

    status: str
    rc: int
    failed_hosts: tuple[str, ...] = ()
    unreachable_hosts: tuple[str, ...] = ()
    events: tuple[PlaybookEvent, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0


class PlaybookRunner(Protocol):
    """Runs Ansible playbooks against hosts of the inventory."""

    def run(self, playbook: str, hosts: Sequence[str], *,
            extravars: Mapping[str, Any] | None = None,
            on_event: Callable[[PlaybookEvent], None] | None = None) -> PlaybookResult:
        """Run `playbook` (a name in the playbook directory, or a path) limited to `hosts`;
        `on_event` sees each event as it happens."""
        ...
