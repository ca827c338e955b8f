"""NAB's scoring rule and its global threshold sweep, vectorised.

Each scored row (past the probation) carries what a detection there would be worth: inside an
anomaly window, tp_weight * S(p) / S(-1) with p the position from the window's right edge;
outside, fp_weight * S(p') with p' the distance past the previous window (-1 before any window,
and -1 once p' >= 3). A window scores its earliest detection only, or -fn_weight when it has
none. The sweep scores the whole corpus at every distinct anomaly score taken as threshold,
highest first, as NAB's `Sweeper.calcScoreByThreshold` does, with one sort and cumulative sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dcops.detection.eval.nab_corpus import CostMatrix, NabSeries

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
NO_DETECTION_THRESHOLD = 1.1
"""NAB's starting threshold, above every score: nothing is detected."""


def scaled_sigmoid(p: FloatArray) -> FloatArray:
    """NAB's S(p) = 2 * sigmoid(-5p) - 1, and -1 from p >= 3 (far behind a window)."""
    s = 2.0 / (1.0 + np.exp(5.0 * p)) - 1.0
    return np.where(p >= 3.0, -1.0, s)


_MAX_TP = float(scaled_sigmoid(np.array([-1.0]))[0])


@dataclass(frozen=True)
class RowWorth:
    """The scored rows of one series: row index, window (-1 outside) and unweighted worth.

    `worth` is S(p)/S(-1) for a row inside a window and S(p') for a row outside."""

    rows: IntArray
    window: IntArray
    worth: FloatArray

    def weighted(self, cost: CostMatrix) -> FloatArray:
        return np.where(self.window >= 0, self.worth * cost.tp_weight,
                        self.worth * cost.fp_weight)


def row_worth(series: NabSeries) -> RowWorth:
    """What a detection at each scored row of `series` would be worth, before weights."""
    n = len(series.values)
    idx = np.arange(n, dtype=np.int64)
    window = np.full(n, -1, dtype=np.int64)
    worth = np.full(n, -1.0)
    prev_right = np.full(n, -1, dtype=np.int64)
    prev_width = np.ones(n, dtype=np.int64)
    for k, (lo, hi) in enumerate(series.windows):
        width = hi - lo + 1
        inside = slice(lo, hi + 1)
        window[inside] = k
        worth[inside] = scaled_sigmoid(-(hi - idx[inside] + 1) / width) / _MAX_TP
        prev_right[hi + 1:] = hi
        prev_width[hi + 1:] = width
    after = (window < 0) & (prev_right >= 0)
    with np.errstate(divide="ignore"):
        p = np.abs(prev_right - idx) / (prev_width - 1).astype(np.float64)
    worth[after] = scaled_sigmoid(np.where(np.isfinite(p), p, 3.0))[after]
    keep = idx >= series.probation_rows
    return RowWorth(idx[keep], window[keep], worth[keep])


@dataclass(frozen=True)
class Sweep:
    """Corpus raw score at each threshold, thresholds from highest (nothing detected) down."""

    thresholds: FloatArray
    totals: FloatArray
    windows: int

    def best(self) -> tuple[float, float]:
        """(threshold, raw score) maximising the score; ties go to the higher threshold."""
        i = int(np.argmax(self.totals))
        return float(self.thresholds[i]), float(self.totals[i])


def sweep(scores: FloatArray, window: IntArray, weight: FloatArray, fn_weight: float) -> Sweep:
    """Scores the corpus at every distinct value of `scores` taken as the threshold.

    The arrays hold every scored row of the corpus; `window` numbers windows corpus-wide
    (-1 outside any window) and `weight` is the row's weighted worth."""
    order = np.argsort(-scores, kind="stable")
    a = scores[order]
    g = window[order]
    w = weight[order]
    delta = np.where(g < 0, w, 0.0)
    inside = np.flatnonzero(g >= 0)
    n_windows = len(np.unique(window[window >= 0]))
    if inside.size:
        # Within each window, the running best detection as the threshold falls; each row adds
        # how much it raises its window's best (the first one also cancels the -fn_weight).
        by_window = inside[np.argsort(g[inside], kind="stable")]
        gw = g[by_window]
        span = float(np.max(np.abs(w[by_window]))) + fn_weight + 1.0
        offset = gw.astype(np.float64) * span * 2.0
        best = np.maximum.accumulate(w[by_window] + offset) - offset
        first = np.r_[True, gw[1:] != gw[:-1]]
        before = np.where(first, -fn_weight, np.r_[0.0, best[:-1]])
        delta[by_window] = best - before
    running = -fn_weight * n_windows + np.cumsum(delta)
    last = np.r_[a[1:] != a[:-1], True] if a.size else np.zeros(0, dtype=bool)
    top = max(NO_DETECTION_THRESHOLD, float(np.nextafter(a[0], np.inf))) if a.size else \
        NO_DETECTION_THRESHOLD
    thresholds = np.r_[top, a[last]]
    totals = np.r_[-fn_weight * n_windows, running[last]]
    return Sweep(thresholds, totals, n_windows)
