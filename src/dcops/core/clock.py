"""Time as an input: production code asks a Clock, tests and the simulator set it."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Where the current time comes from."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class SystemClock:
    """The wall clock of this machine."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to: for tests and the simulator."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._t = start

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds

    def set(self, t: float) -> None:
        self._t = t


def now_ms(clock: Clock) -> int:
    """The clock's time in integer milliseconds, the unit of sample timestamps."""
    return int(clock.now() * 1000)
