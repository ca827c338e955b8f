"""Garbage collection out of the way of latency-bound work.

Python's cyclic collector runs whenever enough objects have been allocated, in whichever
thread allocates next. A rule evaluation cycle over a large fleet allocates hundreds of
thousands of short-lived objects, so collections landed inside it (tens of milliseconds
each for the youngest generation, a few tenths of a second for the middle one) and made
the slowest cycles slower. `deferred` holds automatic collections off while such work
runs and then collects the young generations at once, when the thread is about to go idle:
the same work, done between cycles instead of inside them. Objects are still freed by
reference counting as they go; only garbage in reference cycles waits for the end.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Deferral:
    """Blocks holding collections off now, and whether the collector was on before."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.was_enabled = True


_deferral = _Deferral()


@contextmanager
def deferred(generation: int = 1) -> Iterator[None]:
    """No automatic collection while the block runs; generations up to `generation`
    collected when the last block holding them off ends (unless the collector was off
    before the first began: then it stays off, and nothing is collected)."""
    d = _deferral
    with d.lock:
        d.holders += 1
        if d.holders == 1:
            d.was_enabled = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with d.lock:
            d.holders -= 1
            collect = d.holders == 0 and d.was_enabled
            if collect:
                gc.enable()
        if collect:
            gc.collect(generation)
