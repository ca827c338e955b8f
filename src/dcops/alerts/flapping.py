"""Flap detection in the Nagios way: how often an alert changed between firing and not over
its last 21 evaluations, newer changes weighing more.

Nagios keeps the last 21 states of a check; each of the 20 changes between consecutive
states is weighted linearly from 0.75 (the oldest) to 1.25 (the newest), and the percent
state change is the weighted count over 20. A check starts flapping when that percent
rises above the high threshold and stops when it falls below the low one. Here a "state"
is whether the alert fires at an evaluation, and only the evaluations at which it changed
are kept, so an alert that never changes costs nothing.

Between its changes, an alert's percent only falls (its changes age, and weigh less), so an
alert that is not flapping cannot start to without a new change: `Flaps` works out only
the alerts that changed or are flapping at each evaluation, and the others when their last
change leaves the window, not all of them at every evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from dcops.alerts.model import FlapThresholds
from dcops.telemetry.model import Labels

HISTORY = 21
"""States looked at (Nagios's MAX_STATE_HISTORY_ENTRIES)."""
LOW_WEIGHT, HIGH_WEIGHT = 0.75, 1.25
MOST_PER_CHANGE = HIGH_WEIGHT * 100.0 / (HISTORY - 1)
"""The most percent one change can add (the newest weighs most)."""


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
    """As of its last `update` (`Flaps` skips those that cannot change its flapping)."""

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


class Flaps:
    """The flap tracks of one rule's alerts, by alert labels: made when an alert changes a
    second time within the window (one change alone is too few to flap), dropped once it
    has settled."""

    def __init__(self, tracks: dict[Labels, FlapTrack] | None = None) -> None:
        self.tracks: dict[Labels, FlapTrack] = dict(tracks or {})
        self._once: dict[Labels, int] = {}
        """Alerts with one change in the window, at that evaluation: no track yet (when
        tens of thousands of alerts fire at once, none of them gets one)."""
        self._watched: set[Labels] = set(self.tracks)
        """Tracks that changed since they were last brought up to date, or flap."""
        self._settling: dict[int, list[Labels]] = {}
        """By evaluation: alerts whose newest change then leaves the window."""

    def __bool__(self) -> bool:
        return bool(self.tracks) or bool(self._once)

    def flapping(self) -> dict[Labels, bool]:
        """Every alert with a change in the window, and whether it flaps."""
        return {**dict.fromkeys(self._once, False),
                **{labels: track.flapping for labels, track in self.tracks.items()}}

    def changed(self, labels: Labels, at: int) -> None:
        """The alert of `labels` started or stopped firing at evaluation `at`."""
        track = self.tracks.get(labels)
        if track is None:
            first = self._once.pop(labels, None)
            if first is None:
                self._once[labels] = at
                self._settling.setdefault(at + HISTORY - 1, []).append(labels)
                return
            track = self.tracks[labels] = FlapTrack([first])
        track.changed(at)
        self._watched.add(labels)

    def update(self, now: int, thresholds: FlapThresholds) -> Iterator[tuple[Labels, FlapTrack]]:
        """Bring up to date, at evaluation `now`, the tracks whose flapping can change (each
        yielded), and forget those settled."""
        few = thresholds.high_percent / MOST_PER_CHANGE  # changes too few to flap with
        if few < 1 and self._once:  # thresholds so low that one change may flap
            for labels, at in self._once.items():
                self.tracks[labels] = FlapTrack([at])
                self._watched.add(labels)
            self._once.clear()
        for labels in list(self._watched):
            track = self.tracks[labels]
            if track.flapping or len(track.changes) > few:
                track.update(now, thresholds)
            yield labels, track
            if not track.flapping:  # from now on its percent only falls
                self._watched.discard(labels)
                self._settle(labels, track)
        for at in [at for at in self._settling if at <= now]:
            for labels in self._settling.pop(at):
                first = self._once.get(labels)
                if first is not None:
                    if first <= now - HISTORY + 1:  # its one change has left the window
                        del self._once[labels]
                    continue
                settling = self.tracks.get(labels)
                if settling is None or labels in self._watched:
                    continue  # gone, or changed again: looked after above
                settling.update(now, thresholds)
                self._settle(labels, settling)

    def _settle(self, labels: Labels, track: FlapTrack) -> None:
        """Forget a track that is not flapping, or note when its newest change goes."""
        if track.settled:
            del self.tracks[labels]
        else:
            self._settling.setdefault(track.changes[-1] + HISTORY - 1, []).append(labels)
