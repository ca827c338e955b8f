"""What the diagnoser remembers about each GPU and node: findings, short windows of recent
signals, and the strike history that turns a repeated fault into a repair.

Everything here is bounded: windows are deques with a fixed length or fixed-width buckets,
so a fleet's telemetry flowing through costs O(1) per signal and bounded memory per GPU.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from dcops.core.errors import Invalid
from dcops.health.model import Evidence, Health, Remedy


@dataclass(frozen=True, slots=True)
class DiagnoserConfig:
    """The diagnoser's thresholds and windows (seconds unless the name says otherwise)."""

    sympathetic_s: float = 60.0
    """An Xid 45 this soon after Xid 48/94/95 on the same GPU is sympathetic."""
    sympathetic_after: frozenset[int] = frozenset({48, 94, 95})
    application_xids: frozenset[int] = frozenset({13, 31, 43, 94})
    """Xids that are the application's fault unless they repeat across jobs."""
    app_window_s: float = 86_400.0
    app_suspect_jobs: int = 2
    """Distinct jobs with an application Xid on one GPU within the window: suspect."""
    app_degraded_jobs: int = 3
    """... and degraded (reset the GPU)."""
    nvlink_window_s: float = 600.0
    repair_window_s: float = 7 * 86_400.0
    """A repeat of a repairable fault within this long means repair (RMA)."""
    same_incident_s: float = 60.0
    """Reports of one fault this close together, with no re-check between, are one incident."""
    sbe_per_hour: float = 100.0
    """Corrected ECC errors per hour over which the GPU is suspect."""
    pcie_replays_per_hour: float = 100.0
    throttle_window_s: float = 300.0
    throttle_signals: int = 3
    """Thermal or power throttle signals within the window that make throttling sustained."""
    thermal_repair_s: float = 900.0
    thermal_repair_signals: int = 10
    """Thermal throttling this persistent (signals within `thermal_repair_s`) is a cooling
    or thermal-interface fault: the GPU is drained for a technician."""
    unreachable_s: float = 120.0
    disk_free_fraction: float = 0.05
    contradiction_s: float = 1.0
    """A clean check and a fault this close together contradict: the fault is kept."""
    stale_s: float = 3600.0
    """A signal older than this behind the latest time seen is kept as evidence only."""
    evidence_limit: int = 16

    def __post_init__(self) -> None:
        for name in ("sympathetic_s", "app_window_s", "nvlink_window_s", "repair_window_s",
                     "throttle_window_s", "unreachable_s", "stale_s"):
            if getattr(self, name) <= 0:
                raise Invalid(f"{name} must be positive", where=f"DiagnoserConfig.{name}")
        if not 1 <= self.app_suspect_jobs <= self.app_degraded_jobs:
            raise Invalid("need 1 <= app_suspect_jobs <= app_degraded_jobs",
                          where="DiagnoserConfig.app_suspect_jobs")
        if self.evidence_limit < 1 or self.throttle_signals < 1:
            raise Invalid("evidence_limit and throttle_signals must be at least 1",
                          where="DiagnoserConfig")


@dataclass(frozen=True, slots=True)
class Finding:
    """One standing conclusion about a GPU or node ("Xid 79: reboot"), kept until a clean
    re-check clears it or the same rule replaces it."""

    health: Health
    remedy: Remedy
    cause: str
    at: float

    @property
    def severity(self) -> tuple[int, int]:
        return (self.health.rank, self.remedy.rank)


class RateWindow:
    """Counts over a sliding window in 60 fixed-width buckets: O(1) per add, bounded."""

    __slots__ = ("_buckets", "_total", "_width")

    def __init__(self, window_s: float) -> None:
        self._width = window_s / 60.0
        self._buckets: deque[tuple[int, float]] = deque()
        self._total = 0.0

    def add(self, at: float, count: float) -> float:
        """Add `count` at `at` (not before the last add); return the total in the window."""
        slot = int(at // self._width)
        while self._buckets and self._buckets[0][0] <= slot - 60:
            self._total -= self._buckets.popleft()[1]
        if self._buckets and self._buckets[-1][0] == slot:
            last = self._buckets.pop()
            self._buckets.append((slot, last[1] + count))
        else:
            self._buckets.append((slot, count))
        self._total += count
        return self._total


@dataclass(slots=True)
class Target:
    """What the diagnoser holds about one GPU (`gpu` set) or one node's own findings."""

    node: str
    gpu: int | None
    evidence_limit: int
    findings: dict[str, Finding] = field(default_factory=dict)
    evidence: deque[Evidence] = field(init=False)
    since: float = 0.0
    last_key: tuple[Health, Remedy, str] = (Health.HEALTHY, Remedy.NONE, "")
    last_trigger: tuple[float, int] | None = None
    """(time, Xid) of the latest Xid that an Xid 45 may follow."""
    app: deque[tuple[float, str, int]] = field(default_factory=lambda: deque(maxlen=32))
    """(time, job key, Xid) of recent application-class Xids."""
    links: deque[tuple[float, str | None]] = field(default_factory=lambda: deque(maxlen=32))
    """(time, peer) of this GPU's own NVLink error reports."""
    rates: dict[str, RateWindow] = field(default_factory=dict)
    strikes: dict[str, deque[float]] = field(default_factory=dict)
    last_clear: float = float("-inf")
    last_pass: float = float("-inf")
    """When a health check last passed here (contradictions are judged against it)."""

    def __post_init__(self) -> None:
        self.evidence = deque(maxlen=self.evidence_limit)

    def worst_rule(self) -> str | None:
        """The rule of the most severe finding (latest on ties), or None without findings."""
        best: str | None = None
        for rule, finding in self.findings.items():
            if best is None or finding.severity >= self.findings[best].severity:
                best = rule
        return best

    def worst(self) -> Finding | None:
        """The most severe finding, or None when there is none."""
        rule = self.worst_rule()
        return None if rule is None else self.findings[rule]

    def signature(self) -> tuple[Health, Remedy, str]:
        """(health, remedy, rule of the worst finding): what a change is judged on, so that a
        cause whose figures move ("3.0% free" after "2.0% free") is not a new diagnosis."""
        rule = self.worst_rule()
        if rule is None:
            return (Health.HEALTHY, Remedy.NONE, "")
        finding = self.findings[rule]
        return (finding.health, finding.remedy, rule)

    def key(self) -> tuple[Health, Remedy, str]:
        """(health, remedy, cause) as views and diagnoses show it."""
        worst = self.worst()
        if worst is None:
            return (Health.HEALTHY, Remedy.NONE, "no findings")
        return (worst.health, worst.remedy, worst.cause)

    def rate(self, name: str, window_s: float, at: float, count: float) -> float:
        """Add to the named rate window; the total within it."""
        window = self.rates.get(name)
        if window is None:
            window = self.rates[name] = RateWindow(window_s)
        return window.add(at, count)

    def strike(self, name: str, at: float, config: DiagnoserConfig) -> int:
        """Record a fault of kind `name`; return how many incidents of it fall within the
        repair window (1: the first). Reports within `same_incident_s` of the last, with no
        re-check between, are the same incident."""
        history = self.strikes.get(name)
        if history is None:
            history = self.strikes[name] = deque(maxlen=8)
        while history and history[0] < at - config.repair_window_s:
            history.popleft()
        same = history and at - history[-1] <= config.same_incident_s \
            and self.last_clear < history[-1]
        if not same:
            history.append(at)
        return len(history)

    def clear(self, at: float) -> None:
        """A clean re-check: drop findings and short windows; keep the strike history."""
        self.findings.clear()
        self.app.clear()
        self.links.clear()
        self.rates.clear()
        self.last_trigger = None
        self.last_clear = at


@dataclass(slots=True)
class NodeState:
    """One server: its own node-level target and its GPUs'."""

    name: str
    own: Target
    gpus: dict[int, Target] = field(default_factory=dict)
    gpu_count: int | None = None
    """How many GPUs the inventory says the node has, where known."""

    def targets(self) -> list[Target]:
        return [self.own, *self.gpus.values()]
