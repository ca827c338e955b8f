"""Latency-bound work that background housekeeping waits for.

On a machine with few cores, housekeeping that runs beside a rule evaluation cycle makes
the cycle slower: the metrics store moving its write-ahead log into DuckDB encodes new
series under the interpreter lock and keeps DuckDB's threads on the cores. The cycle in
which tens of thousands of alerts fire at once is the one that also writes tens of
thousands of new series, so it was hit hardest. Work whose latency matters is marked with
`busy()`; housekeeping calls `wait_quiet(limit_s)` first, which returns as soon as no such
work is in progress, and after `limit_s` at the most: housekeeping is put off, never
starved. What waits is only moved, not lost: the store's samples are in its write-ahead log
and its in-memory caches meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class _Foreground:
    """How many blocks of foreground work are in progress."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.busy = 0


_foreground = _Foreground()

POLL_S = 0.1
"""How often a waiting housekeeper looks at its `stop` event."""


@contextmanager
def busy() -> Iterator[None]:
    """Mark the block as foreground work: housekeeping waits (a while) for it to end."""
    f = _foreground
    with f.changed:
        f.busy += 1
    try:
        yield
    finally:
        with f.changed:
            f.busy -= 1
            if f.busy == 0:
                f.changed.notify_all()


def in_progress() -> bool:
    """Whether foreground work is running now."""
    with _foreground.changed:
        return _foreground.busy > 0


def wait_quiet(limit_s: float, stop: threading.Event | None = None) -> bool:
    """Wait until no foreground work is in progress, `limit_s` at the most (less if `stop`
    is set meanwhile); whether none is now."""
    f = _foreground
    deadline = time.monotonic() + limit_s
    with f.changed:
        while f.busy:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                return False
            f.changed.wait(min(left, POLL_S))
        return True
