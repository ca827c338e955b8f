"""Each series' newest sample in memory, so that selectors at "now" need not read DuckDB.

Dashboards and alert rules ask for the present again and again; what an instant vector
selector at time t needs is each series' newest sample at or before t. When no matching
series has a sample after t, that is simply each series' newest sample, kept here as two
arrays indexed by series id and updated with every batch written to DuckDB.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

NONE = np.iinfo(np.int64).min
"""Timestamp of a series that has no sample."""


class NewestSamples:
    """Newest timestamp and value by series id; the writer keeps it current."""

    def __init__(self) -> None:
        self.ts: I64 = np.full(0, NONE, dtype=np.int64)
        self.values: F64 = np.zeros(0, dtype=np.float64)

    def _grow(self, size: int) -> None:
        if size > len(self.ts):
            more = max(size, 2 * len(self.ts)) - len(self.ts)
            self.ts = np.concatenate([self.ts, np.full(more, NONE, dtype=np.int64)])
            self.values = np.concatenate([self.values, np.zeros(more)])

    def update(self, sids: I64, ts: I64, values: F64) -> None:
        """Samples just written, sorted by (series, time) with duplicates already resolved:
        each series' last row counts if it is at least as new as what is known (an equal
        timestamp is a rewrite: last write wins)."""
        if not len(sids):
            return
        last = np.r_[sids[1:] != sids[:-1], True]
        s, t, v = sids[last], ts[last], values[last]
        self._grow(int(s.max()) + 1)
        newer = t >= self.ts[s]
        self.ts[s[newer]] = t[newer]
        self.values[s[newer]] = v[newer]

    def reset(self, sids: I64, ts: I64, values: F64) -> None:
        """Start again from each series' newest stored sample (after retention dropped some)."""
        self.ts = np.full(len(self.ts), NONE, dtype=np.int64)
        self.values = np.zeros(len(self.ts))
        if len(sids):
            self._grow(int(sids.max()) + 1)
            self.ts[sids] = ts
            self.values[sids] = values

    def forget_before(self, cut_ms: int) -> None:
        """Samples before `cut_ms` were deleted (retention): forget those that were newest."""
        gone = self.ts < cut_ms
        self.ts[gone] = NONE

    def at(self, sids: I64, start_ms: int, end_ms: int) -> tuple[I64, I64, F64] | None:
        """Of `sids`, those with a newest sample in [start_ms, end_ms], with it; None when
        some series has samples after `end_ms` (then the store must be read)."""
        known = sids[sids < len(self.ts)]
        ts = self.ts[known]
        if len(ts) and int(ts.max()) > end_ms:
            return None
        keep = ts >= start_ms
        return known[keep], ts[keep], self.values[known[keep]]
