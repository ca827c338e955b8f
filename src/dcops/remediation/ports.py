"""What the remediation engine needs from the rest of dcops besides an `Actuator`:
someone to re-check a node, someone to tell, and what a job's interruption costs.
Each has a do-nothing or in-memory implementation beside it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dcops.health.model import Signal


class Rechecker(Protocol):
    """Runs the health check of a node (or one GPU) again."""

    def recheck(self, node: str, gpu: int | None, now: float) -> Signal:
        """A CHECK_PASSED or CHECK_FAILED signal for the node."""
        ...


class Notifier(Protocol):
    """Tells people: `severity` "page" wakes someone; "warning" and "info" do not."""

    def notify(self, severity: str, summary: str, labels: Mapping[str, str]) -> None: ...


AtRisk = Callable[[Sequence[str], float], float]
"""GPU-hours the jobs stand to lose at a time: their GPUs times the time since their last
checkpoint (the scheduler knows both)."""


def no_risk(jobs: Sequence[str], now: float) -> float:
    """For a cluster whose jobs dcops does not know: nothing counted."""
    return 0.0


@dataclass
class RecordingNotifier:
    """Keeps what it was told, in order (for tests and the simulator)."""

    sent: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def notify(self, severity: str, summary: str, labels: Mapping[str, str]) -> None:
        self.sent.append((severity, summary, dict(labels)))

    @property
    def pages(self) -> int:
        return sum(1 for severity, _, _ in self.sent if severity == "page")
