"""The last samples of every series in memory, so that short windows at the present (an
alert rule's ``rate(x[5m])``, a dashboard's last ten minutes) need not read DuckDB.

Each series has a ring of `capacity` slots holding its newest samples in time order, and
``complete_from``: the time from which the ring holds every sample the series has. A read
of [start, end] comes from the rings only when every series it wants is complete from
`start` on; otherwise the store reads DuckDB as before. Rings are only a copy: a sample
written out of order, or a series written faster than its ring holds, just moves
``complete_from`` forward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

NEVER = np.iinfo(np.int64).max
"""``complete_from`` of a series whose ring cannot answer anything."""


class RecentSamples:
    """Rings of each series' newest samples, by series id."""

    def __init__(self, capacity: int = 40) -> None:
        self.capacity = capacity
        self.ts = _Rows(capacity, np.int64)
        self.values = _Rows(capacity, np.float64)
        self.written: I64 = np.zeros(0, dtype=np.int64)  # samples ever put in each ring
        self.newest: I64 = np.zeros(0, dtype=np.int64)
        self.complete_from: I64 = np.zeros(0, dtype=np.int64)

    def _grow(self, size: int) -> None:
        if size <= len(self.written):
            return
        held = len(self.written)
        rows = max(size, 2 * held)
        self.ts.grow(rows)
        self.values.grow(rows)
        self.written = _grown(self.written, rows)
        self.newest = _grown(self.newest, rows, np.iinfo(np.int64).min)
        # a series first seen now has no earlier samples: complete from the beginning
        self.complete_from = _grown(self.complete_from, rows, np.iinfo(np.int64).min)

    def start(self, series: int, since_ms: int, sids: I64, ts: I64, values: F64) -> None:
        """Begin from stored samples: `series` ids exist, and (sids, ts, values), sorted by
        (series, time), are every stored sample at or after `since_ms`."""
        self._grow(series)
        self.written[:] = 0
        self.newest[:] = np.iinfo(np.int64).min
        self.complete_from[:] = since_ms
        self.append(sids, ts, values)

    def forget_before(self, cut_ms: int) -> None:
        """Samples before `cut_ms` were deleted (retention): answer only from `cut_ms` on."""
        np.maximum(self.complete_from, cut_ms, out=self.complete_from)

    def append(self, sids: I64, ts: I64, values: F64) -> None:
        """Samples just stored, sorted by (series, time), one per (series, time)."""
        if not len(sids):
            return
        self._grow(int(sids.max()) + 1)
        first = np.r_[True, sids[1:] != sids[:-1]]
        group = np.cumsum(first) - 1
        heads = np.flatnonzero(first)
        owners = sids[heads]
        counts = np.diff(np.r_[heads, len(sids)])
        late = ts[heads] <= self.newest[owners]  # out of order, or a rewrite of the newest
        if late.any():  # start those rings again after this batch
            bad = owners[late]
            last = np.maximum(ts[heads[late] + counts[late] - 1], self.newest[bad])
            self.written[bad] = 0
            self.newest[bad] = last
            self.complete_from[bad] = np.maximum(self.complete_from[bad], last + 1)
            keep = ~late[group]
            sids, ts, values, group = sids[keep], ts[keep], values[keep], group[keep]
            if not len(sids):
                return
            first = np.r_[True, sids[1:] != sids[:-1]]
            group = np.cumsum(first) - 1
            heads = np.flatnonzero(first)
            owners = sids[heads]
            counts = np.diff(np.r_[heads, len(sids)])
        rank = np.arange(len(sids)) - heads[group]
        fits = rank >= (counts - self.capacity)[group]  # only a ring's worth of the newest
        slot = (self.written[sids] + rank) % self.capacity
        self.ts.put(sids[fits], slot[fits], ts[fits])
        self.values.put(sids[fits], slot[fits], values[fits])
        self.written[owners] += counts
        self.newest[owners] = ts[heads + counts - 1]
        full = owners[self.written[owners] > self.capacity]
        if len(full):  # wrapped: the oldest sample still held is where the next one goes
            oldest = self.ts.get(full, self.written[full] % self.capacity)
            self.complete_from[full] = np.maximum(self.complete_from[full], oldest)

    def read(self, sids: I64, start_ms: int, end_ms: int) -> tuple[I64, I64, F64] | None:
        """Every sample of `sids` in [start_ms, end_ms] as (counts per series, ts, values),
        series in the order given; None unless every ring is complete from `start_ms`."""
        if len(sids) and (int(sids.max()) >= len(self.written)
                          or int(self.complete_from[sids].max()) > start_ms):
            return None
        held = np.minimum(self.written[sids], self.capacity)
        order = (self.written[sids, None] - held[:, None]
                 + np.arange(self.capacity)[None, :]) % self.capacity
        ts = np.take_along_axis(self.ts.rows(sids), order, axis=1)
        values = np.take_along_axis(self.values.rows(sids), order, axis=1)
        wanted = (np.arange(self.capacity)[None, :] < held[:, None]) & (ts >= start_ms) \
            & (ts <= end_ms)
        return wanted.sum(axis=1), ts[wanted], values[wanted]


def _grown(array: npt.NDArray[np.generic], rows: int, fill: int = 0) -> npt.NDArray[Any]:
    """`array` with `rows` rows, the new ones `fill`: zeroed pages come from the system
    untouched (calloc), so only the rows already held are copied."""
    out = np.zeros((rows, *array.shape[1:]), dtype=array.dtype)
    out[:len(array)] = array
    if fill:
        out[len(array):] = fill
    return out


BLOCK_SHIFT = 16
"""Series per block of ring rows: 2**16 (21 MB per block of timestamps or values)."""


class _Rows:
    """A (series, capacity) matrix kept in blocks of series, so that room for more series
    is a new block, never a copy of the hundreds of MB already held."""

    def __init__(self, capacity: int, dtype: type[np.generic]) -> None:
        self.capacity = capacity
        self.dtype = dtype
        self.blocks: list[npt.NDArray[Any]] = []

    def __len__(self) -> int:
        return len(self.blocks) << BLOCK_SHIFT

    def grow(self, rows: int) -> None:
        while len(self) < rows:
            self.blocks.append(np.zeros((1 << BLOCK_SHIFT, self.capacity), dtype=self.dtype))

    def _split(self, sids: I64) -> list[tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None,
                                              I64]]:
        """(block, which of `sids` are in it, their rows there) for every block hit."""
        block = sids >> BLOCK_SHIFT
        rows = sids & ((1 << BLOCK_SHIFT) - 1)
        first, last = (int(block.min()), int(block.max())) if len(sids) else (0, 0)
        if first == last:
            return [(self.blocks[first], None, rows)] if len(sids) else []
        out = []
        for b in np.unique(block).tolist():
            mask = block == b
            out.append((self.blocks[b], mask, rows[mask]))
        return out

    def put(self, sids: I64, slots: I64, values: npt.NDArray[Any]) -> None:
        for block, mask, rows in self._split(sids):
            if mask is None:
                block[rows, slots] = values
            else:
                block[rows, slots[mask]] = values[mask]

    def get(self, sids: I64, slots: I64) -> npt.NDArray[Any]:
        out = np.empty(len(sids), dtype=self.dtype)
        for block, mask, rows in self._split(sids):
            if mask is None:
                return np.asarray(block[rows, slots])
            out[mask] = block[rows, slots[mask]]
        return out

    def rows(self, sids: I64) -> npt.NDArray[Any]:
        """The rings of `sids`, in that order (a copy)."""
        out = np.empty((len(sids), self.capacity), dtype=self.dtype)
        for block, mask, rows in self._split(sids):
            if mask is None:
                return np.asarray(block[rows])
            out[mask] = block[rows]
        return out
