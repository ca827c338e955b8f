"""Series ids in label order, without comparing label tuples query after query.

Queries answer series sorted by labels. The store ranks every series by its labels once
and sorts a query's ids by rank (numpy, no tuple comparisons). Series added since then
have no rank yet: a query that matches any of them sorts its own few by their labels
instead, and once many have been added the ranks are computed again.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from dcops.telemetry.model import Labels

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class LabelOrder:
    """Ranks by series id (NaN for ids added since the ranks were computed)."""

    def __init__(self) -> None:
        self.rank: F64 = np.zeros(0)
        self.ranked_upto = 0  # ids below this were ranked

    def sort(self, ids: I64, labels: Mapping[int, Labels], next_id: int) -> I64:
        """`ids` in the order of their labels."""
        added = next_id - self.ranked_upto
        if added > len(self.rank) // 8 + 1024:  # many new series: rank everything again
            self._rebuild(labels, next_id)
            added = 0
        if not len(ids):
            return ids
        if int(ids.max()) >= self.ranked_upto:  # some are newer than the ranks
            if added <= 64 or len(ids) <= 4096:
                return np.fromiter(sorted(ids.tolist(), key=labels.__getitem__),
                                   dtype=np.int64, count=len(ids))
            self._rebuild(labels, next_id)
        return ids[np.argsort(self.rank[ids], kind="stable")]

    def _rebuild(self, labels: Mapping[int, Labels], next_id: int) -> None:
        order = np.fromiter(sorted(labels, key=labels.__getitem__), dtype=np.int64,
                            count=len(labels))
        self.rank = np.full(max(next_id, 1), np.nan)
        self.rank[order] = np.arange(len(order), dtype=np.float64)
        self.ranked_upto = next_id
