"""Every series' place in label order, kept current as series are added.

Queries answer series sorted by labels; the store sorts a query's series ids by a rank
per id instead of comparing label tuples. New series get a rank between their neighbours
(ranks are spaced floats), so a few new series cost a binary search each, not a sort of
every label set; many at once, or a gap used up, sort everything again.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from dcops.telemetry.model import Labels

F64 = npt.NDArray[np.float64]
GAP = 1024.0


class LabelOrder:
    """Ranks by series id (NaN for ids not ranked yet)."""

    def __init__(self) -> None:
        self.keys: list[Labels] = []  # label sets in order
        self.sids: list[int] = []  # their ids
        self.rank: F64 = np.zeros(0)
        self.upto = 0  # ids below this have been looked at

    def ranks(self, labels: Mapping[int, Labels], next_id: int) -> F64:
        """Ranks of every id in `labels`; ids up to `next_id` are taken in as needed."""
        if self.upto < next_id:
            if len(self.rank) < next_id:
                grown = np.full(max(next_id, 2 * len(self.rank)), np.nan)
                grown[:len(self.rank)] = self.rank
                self.rank = grown
            new = [sid for sid in range(self.upto, next_id) if sid in labels]
            self.upto = next_id
            if len(new) > len(self.keys) // 8 + 64 or not self._insert(new, labels):
                self._rebuild(labels)
        return self.rank

    def _insert(self, new: list[int], labels: Mapping[int, Labels]) -> bool:
        for sid in new:
            key = labels[sid]
            pos = bisect.bisect(self.keys, key)
            low = self.rank[self.sids[pos - 1]] if pos else (
                self.rank[self.sids[0]] - GAP if self.sids else 0.0)
            high = self.rank[self.sids[pos]] if pos < len(self.sids) else low + 2 * GAP
            middle = (low + high) / 2
            if not low < middle < high:
                return False  # no room left between neighbours
            self.keys.insert(pos, key)
            self.sids.insert(pos, sid)
            self.rank[sid] = middle
        return True

    def _rebuild(self, labels: Mapping[int, Labels]) -> None:
        self.sids = sorted(labels, key=labels.__getitem__)
        self.keys = [labels[sid] for sid in self.sids]
        self.rank[:] = np.nan
        self.rank[np.asarray(self.sids, dtype=np.int64)] = np.arange(len(self.sids)) * GAP
