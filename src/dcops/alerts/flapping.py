"""Flap detection in the Nagios way: how often an alert changed between firing and not over
its last 21 evaluations, newer changes weighing more.

Nagios keeps the last 21 states of a check; each of the 20 changes between consecutive
states is weighted linearly from 0.75 (the oldest) to 1.25 (the newest), and the percent
state change is the weighted count over 20. A check starts flapping when that percent
rises above the high threshold and stops when it falls below the low one. Here a "state"
is whether the alert fires at an evaluation, and only the evaluations at which it changed
are kept, so an alert that never changes costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dcops.alerts.model import FlapThresholds

HISTORY = 21
"""States looked at (Nagios's MAX_STATE_HISTORY_ENTRIES)."""
LOW_WEIGHT, HIGH_WEIGHT = 0.75, 1.25


def percent_state_change(changes: list[int], now: int) -> float:
    """Weighted percent state change at evaluation `now`, given the evaluations at which the
    state differed from the one before (only those within the last 20 count)."""
    total = 0.0
    for at in changes:
        x = at - (now - HISTORY + 1)  # position in the 21-state window, 1..20 for a change
        if 1 <= x <= HISTORY - 1:
            total += LOW_WEIGHT + (x - 1) * (HIGH_WEIGHT - LOW_WEIGHT) / (HISTORY - 2)
    return total * 100.0 / (HISTORY - 1)


@dataclass(slots=True)
class FlapTrack:
    """One alert's recent changes between firing and not, and whether it is flapping."""

    changes: list[int] = field(default_factory=list)
    flapping: bool = False
    percent: float = 0.0

    def changed(self, at: int) -> None:
        """The alert started or stopped firing at evaluation `at`."""
        self.changes.append(at)

    def update(self, now: int, thresholds: FlapThresholds) -> None:
        """Forget changes older than the window and decide whether it flaps at `now`."""
        self.changes = [at for at in self.changes if at > now - HISTORY + 1]
        self.percent = percent_state_change(self.changes, now)
        if not self.flapping and self.percent > thresholds.high_percent:
            self.flapping = True
        elif self.flapping and self.percent < thresholds.low_percent:
            self.flapping = False

    @property
    def settled(self) -> bool:
        """Nothing left to remember: not flapping and no change in the window."""
        return not self.flapping and not self.changes
