"""When a score becomes an alert: above the threshold for `for_s`, resolved once below it
for `resolve_s`, as a Prometheus rule with ``for`` and ``keep_firing_for`` would.

The tracker is fed each entity's scores in step order (the step times, not the wall
clock, so a backfill after a restart judges durations as they were). A step without a
score (a gap) changes nothing. What it hands on are `AnomalyAlert`s: the service turns
them into the alerting pipeline's alerts, re-sent every tick while they fire.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class AnomalyAlert:
    """One entity's alert as it stands after a tick."""

    key: str
    firing: bool
    starts_at: float
    """Unix seconds: the step at which it started firing."""
    score: float
    ends_at: float | None = None
    reason: str = ""
    """Why it resolved: the score fell back, or the series vanished."""


@dataclass
class Watch:
    """The alert state of one entity."""

    above_since: float | None = None
    firing_since: float | None = None
    below_since: float | None = None
    score: float = 0.0


class AlertTracker:
    """Pending, firing and resolved per entity, from its scores."""

    def __init__(self, threshold: float, for_s: float, resolve_s: float) -> None:
        self.threshold = threshold
        self.for_s = for_s
        self.resolve_s = resolve_s
        self.watches: dict[str, Watch] = {}
        self._resolved: list[AnomalyAlert] = []

    def observe(self, key: str, at: float, score: float) -> None:
        """The score of `key` at step time `at` (steps in order)."""
        watch = self.watches.get(key)
        if watch is None:
            if score < self.threshold:
                return  # nothing to remember about a quiet entity
            watch = self.watches[key] = Watch()
        watch.score = score
        if score >= self.threshold:
            watch.below_since = None
            if watch.above_since is None:
                watch.above_since = at
            if watch.firing_since is None and at - watch.above_since >= self.for_s:
                watch.firing_since = at
            return
        watch.above_since = None
        if watch.firing_since is None:
            del self.watches[key]
            return
        if watch.below_since is None:
            watch.below_since = at
        if at - watch.below_since >= self.resolve_s:
            self._resolved.append(AnomalyAlert(key, False, watch.firing_since, score, at,
                                               "score back below the threshold"))
            del self.watches[key]

    def vanished(self, key: str, at: float) -> None:
        """`key`'s series are gone: a firing alert resolves, a pending one is dropped."""
        watch = self.watches.pop(key, None)
        if watch is not None and watch.firing_since is not None:
            self._resolved.append(AnomalyAlert(key, False, watch.firing_since, watch.score,
                                               at, "series vanished"))

    def take(self) -> list[AnomalyAlert]:
        """Every firing alert, then the ones resolved since the last call."""
        firing = [AnomalyAlert(key, True, w.firing_since, w.score)
                  for key, w in sorted(self.watches.items()) if w.firing_since is not None]
        resolved, self._resolved = self._resolved, []
        return firing + resolved

    def firing(self) -> set[str]:
        return {k for k, w in self.watches.items() if w.firing_since is not None}

    def state(self) -> dict[str, Any]:
        return {key: asdict(watch) for key, watch in self.watches.items()}

    def restore(self, saved: dict[str, Any]) -> None:
        self.watches = {str(key): Watch(**value) for key, value in saved.items()}
