"""Functions over range vectors (``rate``, ``*_over_time``), vectorized across series and steps.

For one series, each step t looks at the samples with timestamps in ``[t - range, t]``
(both ends included, as Prometheus 2.x does). All series of a selector arrive as one
`SeriesBlock` (flat columns); one ``np.searchsorted`` over a (series, time) key finds the
window of every series at every step at once, so a range function costs a few numpy
calls however many series it reads. Window contents are gathered into a
windows-by-samples matrix where a function needs them all.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dcops.query.vector import BoolArray, FloatArray, IntArray
from dcops.telemetry.model import SeriesBlock

WindowResult = tuple[FloatArray, BoolArray]

_MAX_KEY = 2**62


def search(block: SeriesBlock, targets: IntArray, side: str) -> IntArray:
    """Per series s and target t, ``offsets[s] + searchsorted(ts of s, t, side)``: (S, T)."""
    return search_all(block, [(targets, side)])[0]


def search_all(block: SeriesBlock, queries: list[tuple[IntArray, str]]) -> list[IntArray]:
    """`search` for several (targets, side) pairs over one (series, time) key array."""
    n_series, ts = len(block), block.ts_ms
    if n_series == 0 or not all(len(t) for t, _ in queries):
        return [np.zeros((n_series, len(t)), dtype=np.int64) for t, _ in queries]
    lows = [int(t.min()) for t, _ in queries] + ([int(ts.min())] if len(ts) else [])
    highs = [int(t.max()) for t, _ in queries] + ([int(ts.max())] if len(ts) else [])
    base, width = min(lows), max(highs) - min(lows) + 2
    if width * n_series >= _MAX_KEY:  # keys would overflow: one search per series
        bounds = list(zip(block.offsets[:-1].tolist(), block.offsets[1:].tolist(), strict=True))
        return [np.stack([a + np.searchsorted(ts[a:b], t, side=side)  # type: ignore[call-overload]
                          for a, b in bounds]) for t, side in queries]
    owner = np.repeat(np.arange(n_series, dtype=np.int64) * width, np.diff(block.offsets))
    keys = owner + (ts - base)
    rows = np.arange(n_series, dtype=np.int64)[:, None] * width
    return [np.asarray(np.searchsorted(keys, rows + (t - base)[None, :], side=side),  # type: ignore[call-overload]
                       dtype=np.int64) for t, side in queries]


def series_starts(block: SeriesBlock) -> BoolArray:
    """True at the first sample of each series: no sample pair spans two series."""
    first = np.zeros(len(block.ts_ms), dtype=np.bool_)
    first[block.offsets[:-1][np.diff(block.offsets) > 0]] = True
    return first


class Windows:
    """Windows over flat sample columns: window i holds samples ``lo[i]:hi[i]``, ending at
    ``ends[i]``; `first` marks samples that start a series (no pair reaches across)."""

    def __init__(self, ts: IntArray, values: FloatArray, ends: IntArray, range_ms: int) -> None:
        """The windows of one series at steps `ends`."""
        lo = np.searchsorted(ts, ends - range_ms, side="left").astype(np.int64)
        hi = np.searchsorted(ts, ends, side="right").astype(np.int64)
        first = np.zeros(len(ts), dtype=np.bool_)
        first[:1] = True
        self._set(ts, values, first, ends, lo, hi, range_ms)

    @classmethod
    def of_block(cls, block: SeriesBlock, times: IntArray, range_ms: int) -> Windows:
        """Every series' window at every step of `times`, series after series."""
        w = object.__new__(cls)
        lo, hi = (x.ravel() for x in search_all(block, [(times - range_ms, "left"),
                                                        (times, "right")]))
        w._set(block.ts_ms, block.values, series_starts(block), np.tile(times, len(block)),
               lo, hi, range_ms)
        return w

    def _set(self, ts: IntArray, values: FloatArray, first: BoolArray, ends: IntArray,
             lo: IntArray, hi: IntArray, range_ms: int) -> None:
        self.ts, self.values, self.first = ts, values, first
        self.ends, self.lo, self.hi, self.range_ms = ends, lo, hi, range_ms
        self.count = hi - lo

    def split(self, max_cells: int = 4_000_000) -> list[Windows]:
        """These windows in runs whose gathered matrix stays under `max_cells`."""
        width = max(int(self.count.max()) if len(self.count) else 0, 1)
        rows = max(max_cells // width, 1)
        if rows >= len(self.ends):
            return [self]
        parts = []
        for a in range(0, len(self.ends), rows):
            part = object.__new__(Windows)
            part._set(self.ts, self.values, self.first, self.ends[a:a + rows],
                      self.lo[a:a + rows], self.hi[a:a + rows], self.range_ms)
            parts.append(part)
        return parts

    def previous(self) -> FloatArray:
        """Each sample's predecessor in its series (0 for a series' first sample)."""
        prev = np.concatenate(([0.0], self.values[:-1]))
        prev[self.first] = 0.0
        return prev

    def matrix(self) -> tuple[FloatArray, BoolArray]:
        """Window values as a (windows, longest window) matrix and the mask of real entries."""
        width = int(self.count.max()) if len(self.count) else 0
        idx = self.lo[:, None] + np.arange(max(width, 1), dtype=np.int64)[None, :]
        mask = idx < self.hi[:, None]
        if not len(self.values):
            return np.zeros(idx.shape), mask
        np.minimum(idx, len(self.values) - 1, out=idx)  # lo >= 0, so only the top can spill
        return self.values[idx], mask


def extrapolated_rate(w: Windows, *, counter: bool, per_second: bool) -> WindowResult:
    """rate / increase / delta: Prometheus's extrapolation to the edges of the range."""
    ok = w.count >= 2
    if not len(w.values):
        return np.full(len(w.ends), np.nan), ok
    first = np.clip(w.lo, 0, len(w.values) - 1)
    last = np.clip(w.hi - 1, 0, len(w.values) - 1)
    result = w.values[last] - w.values[first]
    if counter:
        prev = w.previous()
        drops = np.where((w.values < prev) & ~w.first, prev, 0.0)
        cum = np.cumsum(drops)
        result = result + (cum[last] - cum[first])
    with np.errstate(all="ignore"):
        t_first = w.ts[first].astype(np.float64)
        t_last = w.ts[last].astype(np.float64)
        to_start = (t_first - (w.ends - w.range_ms)) / 1000.0
        to_end = (w.ends - t_last) / 1000.0
        sampled = (t_last - t_first) / 1000.0
        average = sampled / (w.count - 1)
        if counter:
            to_zero = sampled * (w.values[first] / result)
            use_zero = (result > 0) & (w.values[first] >= 0) & (to_zero < to_start)
            to_start = np.where(use_zero, to_zero, to_start)
        threshold = average * 1.1
        interval = sampled + np.where(to_start < threshold, to_start, average / 2)
        interval = interval + np.where(to_end < threshold, to_end, average / 2)
        factor = interval / sampled
        if per_second:
            factor = factor / (w.range_ms / 1000.0)
        result = result * factor
    return result, ok


def instant_rate(w: Windows, *, per_second: bool) -> WindowResult:
    """irate / idelta: from the last two samples of each window."""
    ok = w.count >= 2
    if not len(w.values):
        return np.full(len(w.ends), np.nan), ok
    last = np.clip(w.hi - 1, 0, len(w.values) - 1)
    prev = np.clip(w.hi - 2, 0, len(w.values) - 1)
    lv, pv = w.values[last], w.values[prev]
    if per_second:
        result = np.where(lv < pv, lv, lv - pv)
        with np.errstate(all="ignore"):
            result = result / ((w.ts[last] - w.ts[prev]) / 1000.0)
    else:
        result = lv - pv
    return result, ok


def _sum(vals: FloatArray, mask: BoolArray) -> FloatArray:
    return np.asarray(np.sum(vals, axis=1, where=mask), dtype=np.float64)


def _avg(vals: FloatArray, mask: BoolArray) -> FloatArray:
    with np.errstate(all="ignore"):
        return np.asarray(_sum(vals, mask) / mask.sum(axis=1), dtype=np.float64)


def _var(vals: FloatArray, mask: BoolArray) -> FloatArray:
    mean = _avg(vals, mask)
    with np.errstate(all="ignore"):
        return np.asarray(_sum((vals - mean[:, None]) ** 2, mask) / mask.sum(axis=1),
                          dtype=np.float64)


def _min(vals: FloatArray, mask: BoolArray) -> FloatArray:
    return np.asarray(np.fmin.reduce(vals, axis=1, where=mask, initial=np.nan))


def _max(vals: FloatArray, mask: BoolArray) -> FloatArray:
    return np.asarray(np.fmax.reduce(vals, axis=1, where=mask, initial=np.nan))


OVER_TIME: dict[str, Callable[[FloatArray, BoolArray], FloatArray]] = {
    "sum_over_time": _sum,
    "avg_over_time": _avg,
    "min_over_time": _min,
    "max_over_time": _max,
    "count_over_time": lambda v, m: m.sum(axis=1).astype(np.float64),
    "present_over_time": lambda v, m: np.ones(len(v)),
    "stdvar_over_time": _var,
    "stddev_over_time": lambda v, m: np.sqrt(_var(v, m)),
}


def over_time(name: str, w: Windows) -> WindowResult:
    ok = w.count >= 1
    if name == "last_over_time":
        last = np.clip(w.hi - 1, 0, max(len(w.values) - 1, 0))
        return (w.values[last] if len(w.values) else np.full(len(w.ends), np.nan)), ok
    vals, mask = w.matrix()
    return OVER_TIME[name](vals, mask), ok


def quantile_sorted(sorted_vals: FloatArray, count: IntArray, q: FloatArray) -> FloatArray:
    """Prometheus's quantile over each row's first `count` sorted values (linear interpolation)."""
    n = count.astype(np.float64)
    rank = q * (n - 1)
    with np.errstate(all="ignore"):
        lower = np.maximum(0, np.floor(rank))
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - np.floor(rank)
    rows = np.arange(len(sorted_vals))
    width = sorted_vals.shape[1]
    lo_i = np.clip(np.nan_to_num(lower), 0, width - 1).astype(np.int64)
    up_i = np.clip(np.nan_to_num(upper), 0, width - 1).astype(np.int64)
    out = sorted_vals[rows, lo_i] * (1 - weight) + sorted_vals[rows, up_i] * weight
    out = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, out))
    return np.asarray(np.where(count == 0, np.nan, out), dtype=np.float64)


def quantile_over_time(q: FloatArray, w: Windows) -> WindowResult:
    vals, mask = w.matrix()
    ordered = np.sort(np.where(mask, vals, np.inf), axis=1)
    return quantile_sorted(ordered, w.count, q), w.count >= 1


def _count_pairs(w: Windows, flags: BoolArray) -> WindowResult:
    """How many consecutive sample pairs inside each window have `flags` set on the later one."""
    cum = np.cumsum(flags.astype(np.float64))
    if not len(cum):
        return np.full(len(w.ends), np.nan), w.count >= 1
    first = np.clip(w.lo, 0, len(cum) - 1)
    last = np.clip(w.hi - 1, 0, len(cum) - 1)
    return cum[last] - cum[first], w.count >= 1


def changes(w: Windows) -> WindowResult:
    """changes(): pairs whose values differ (two NaNs count as equal)."""
    prev = w.previous()
    differ = (w.values != prev) & ~(np.isnan(w.values) & np.isnan(prev)) & ~w.first
    return _count_pairs(w, differ)


def resets(w: Windows) -> WindowResult:
    """resets(): pairs where a counter went down."""
    down = (w.values < w.previous()) & ~w.first
    return _count_pairs(w, down)


def linear_regression(w: Windows, intercept_ms: IntArray) -> tuple[FloatArray, FloatArray]:
    """Least-squares slope (per second) and value at `intercept_ms`, per window.

    Window sums come from compensated running sums that restart with each series, time
    measured from the series' middle and value from its first sample, so that differences
    of sums keep their digits;
    windows holding NaN or an infinity are worked out one sample at a time.
    """
    if not len(w.values):
        return np.full(len(w.ends), np.nan), np.full(len(w.ends), np.nan)
    if int(w.count.sum()) <= 2 * len(w.values):  # windows barely overlap: gather them
        return _regression_in_pieces(w, intercept_ms)
    n_all = len(w.values)
    starts = np.flatnonzero(w.first)  # where each (non-empty) series begins
    lengths = np.diff(np.r_[starts, n_all])
    ends = starts + lengths - 1
    finite = np.isfinite(w.values)
    all_finite = bool(finite.all())
    first_value = w.values[starts] if all_finite else \
        np.where(finite[starts], w.values[starts], 0.0)
    origin = np.repeat(w.ts[starts] // 2 + w.ts[ends] // 2, lengths)  # mid-series: small |u|
    u = w.ts - origin  # milliseconds: integer sums of u and u² are exact
    widest = float(np.abs(u).max()) if n_all else 0.0
    if widest * widest * float(w.count.max()) >= 2.0**62:  # series spanning months
        return _regression_in_pieces(w, intercept_ms)
    y = w.values - np.repeat(first_value, lengths)
    if not all_finite:
        y[~finite] = 0.0
    window_sum = _window_sums(w)
    n = w.count.astype(np.float64)
    s_u, s_uu = (_exact_window_sum(w, x) for x in (u, u * u))
    s_y, s_uy = (window_sum(x) for x in (y, u * y))
    lo = np.minimum(w.lo, n_all - 1)
    series = np.searchsorted(starts, lo, side="right") - 1  # each window's series
    with np.errstate(all="ignore"):
        slope = 1000.0 * (s_uy - s_u * s_y / n) / (s_uu - s_u * s_u / n)  # per second
        mean_u = s_u / n / 1000.0
        mean_y = s_y / n + first_value[series]
        t_u = (intercept_ms - origin[lo]) / 1000.0
        intercept = mean_y + slope * (t_u - mean_u)
    differ = np.empty(n_all, dtype=np.int32)  # value changes; NaNs always differ
    differ[0] = 0
    np.not_equal(w.values[1:], w.values[:-1], out=differ[1:], casting="unsafe")
    differ[starts] = 0
    run = np.zeros(n_all + 1, dtype=np.int64)  # value changes before each index
    np.cumsum(differ, out=run[1:])
    constant = run[w.hi] - run[np.minimum(w.lo + 1, w.hi)] == 0
    first = w.values[lo]
    slope = np.where(constant, np.where(np.isinf(first), np.nan, 0.0), slope)
    intercept = np.where(constant, np.where(np.isinf(first), np.nan, first), intercept)
    bad = np.zeros(0, dtype=np.int64)
    if not all_finite:
        odd = np.concatenate(([0], np.cumsum(~finite)))
        bad = np.flatnonzero((odd[w.hi] - odd[w.lo] > 0) & ~constant)
    if len(bad):  # NaN or ±Inf inside: sums cannot be taken apart again
        part = object.__new__(Windows)
        part._set(w.ts, w.values, w.first, w.ends[bad], w.lo[bad], w.hi[bad], w.range_ms)
        slope[bad], intercept[bad] = _regression_in_pieces(part, intercept_ms[bad])
    return np.asarray(slope, dtype=np.float64), np.asarray(intercept, dtype=np.float64)


def _exact_window_sum(w: Windows, x: IntArray) -> FloatArray:
    """Each window's sum of integers `x`: running sums in int64 may wrap around, but their
    differences are exact wherever a window's own sum fits in 63 bits."""
    run = np.zeros(len(x) + 1, dtype=np.int64)
    np.cumsum(x, out=run[1:])
    return (run[w.hi] - run[w.lo]).astype(np.float64)


def _window_sums(w: Windows) -> Callable[[FloatArray], FloatArray]:
    """A function giving each window's sum of a per-sample quantity, as the difference of
    two compensated running sums (see `_compensated_cumsum`): about 106 bits, so a small
    window far into a long block loses none of its digits."""
    def window_sum(x: FloatArray) -> FloatArray:
        total, carry = _compensated_cumsum(x)
        return np.asarray((total[w.hi] - total[w.lo]) + (carry[w.hi] - carry[w.lo]),
                          dtype=np.float64)
    return window_sum


def _compensated_cumsum(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Running sums from 0 (one more than `x`), and the rounding error each carries (Knuth's
    TwoSum of every step, itself summed)."""
    total = np.zeros(len(x) + 1)
    np.cumsum(x, out=total[1:])
    before = total[:-1]
    after = total[1:]
    back = after - before
    carry = np.zeros(len(x) + 1)
    np.cumsum((before - (after - back)) + (x - back), out=carry[1:])
    return total, carry


def _regression_in_pieces(w: Windows, intercept_ms: IntArray) -> tuple[FloatArray, FloatArray]:
    """_regression_per_sample in runs of windows whose gathered matrix stays bounded."""
    slopes, intercepts = [], []
    done = 0
    for piece in w.split():
        s, i = _regression_per_sample(piece, intercept_ms[done:done + len(piece.ends)])
        done += len(piece.ends)
        slopes.append(s)
        intercepts.append(i)
    return np.concatenate(slopes), np.concatenate(intercepts)


def _regression_per_sample(w: Windows,
                           intercept_ms: IntArray) -> tuple[FloatArray, FloatArray]:
    """linear_regression over each window's gathered samples (what NaN and ±Inf need)."""
    vals, mask = w.matrix()
    idx = w.lo[:, None] + np.arange(vals.shape[1], dtype=np.int64)[None, :]
    ts = w.ts[np.clip(idx, 0, max(len(w.ts) - 1, 0))] if len(w.ts) else np.zeros(idx.shape)
    x = (ts - intercept_ms[:, None]).astype(np.float64) / 1000.0
    n = mask.sum(axis=1)
    with np.errstate(all="ignore"):
        mean_x = np.sum(x, axis=1, where=mask) / n
        mean_y = np.sum(vals, axis=1, where=mask) / n
        dx = x - mean_x[:, None]
        cov = np.sum(dx * (vals - mean_y[:, None]), axis=1, where=mask)
        var = np.sum(dx * dx, axis=1, where=mask)
        slope = cov / var
        intercept = mean_y - slope * mean_x
    first = vals[:, 0]
    constant = np.all((vals == first[:, None]) | ~mask, axis=1)
    slope = np.where(constant, np.where(np.isinf(first), np.nan, 0.0), slope)
    intercept = np.where(constant, np.where(np.isinf(first), np.nan, first), intercept)
    return np.asarray(slope, dtype=np.float64), np.asarray(intercept, dtype=np.float64)
