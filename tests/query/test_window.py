"""Range functions per window: chunked evaluation and the counter rules, on known numbers."""

from __future__ import annotations

import numpy as np

from dcops.query import window
from dcops.telemetry.model import SeriesBlock


def _random_windows() -> window.Windows:
    rng = np.random.default_rng(1)
    ts = np.cumsum(rng.integers(1_000, 20_000, 3_000)).astype(np.int64)
    ends = np.arange(ts[0], ts[-1], 7_000, dtype=np.int64)
    return window.Windows(ts, rng.random(3_000), ends, 600_000)


def test_split_windows_give_the_same_answers_as_whole_ones() -> None:
    whole = _random_windows()
    parts = whole.split(2_000)
    assert len(parts) > 1
    assert sum(len(p.ends) for p in parts) == len(whole.ends)
    for name in [*window.OVER_TIME, "last_over_time"]:
        joined = np.concatenate([window.over_time(name, p)[0] for p in parts])
        assert np.allclose(window.over_time(name, whole)[0], joined, equal_nan=True), name


def test_increase_counts_a_reset_and_extrapolates_to_the_window_edges() -> None:
    # samples every 15 s; the counter restarts from 0 between the 3rd and 4th sample
    ts = np.array([15_000, 30_000, 45_000, 60_000], dtype=np.int64)
    w = window.Windows(ts, np.array([10.0, 20.0, 30.0, 5.0]), np.array([60_000]), 60_000)
    value, ok = window.extrapolated_rate(w, counter=True, per_second=False)
    # raw increase 10 + 10 + 5 = 25 over 45 s; the start extrapolates 15 s (< 1.1 x 15 s),
    # as the zero point (10 / 25 x 45 s = 18 s back) is further away: 25 x 60 / 45
    assert ok.tolist() == [True]
    assert np.isclose(value[0], 25 * 60 / 45)


def test_changes_and_resets_count_pairs_inside_each_window() -> None:
    ts = np.arange(1, 7, dtype=np.int64) * 1_000
    w = window.Windows(ts, np.array([1.0, 1.0, 2.0, 0.0, 0.0, 3.0]),
                       np.array([3_000, 6_000]), 2_000)
    assert window.changes(w)[0].tolist() == [1.0, 1.0]
    assert window.resets(w)[0].tolist() == [0.0, 0.0]
    wide = window.Windows(ts, w.values, np.array([6_000]), 10_000)
    assert window.changes(wide)[0].tolist() == [3.0]
    assert window.resets(wide)[0].tolist() == [1.0]


def test_regression_from_running_sums_matches_the_per_sample_one() -> None:
    rng = np.random.default_rng(3)
    n = 4_000
    ts = np.cumsum(rng.integers(1_000, 20_000, n)).astype(np.int64)
    kinds = [40 + rng.normal(0, 2, n),  # a noisy gauge
             1e12 + np.cumsum(rng.integers(0, 10**6, n)).astype(np.float64),  # a big counter
             np.repeat(rng.integers(0, 3, n // 100), 100).astype(np.float64)]  # steps: constants
    odd = kinds[0].copy()
    odd[[500, 501, 1700]] = [np.nan, np.inf, -np.inf]
    times = np.arange(ts[0], ts[-1], 9_000, dtype=np.int64)
    for values in [*kinds, odd]:
        # three series back to back, each with its own stretch of the same clock
        block = SeriesBlock([(("s", "a"),), (("s", "b"),), (("s", "c"),)],
                            np.array([0, 1000, 2500, n]), ts, values)
        w = window.Windows.of_block(block, times, 900_000)
        at = np.tile(times, 3) - 30_000
        fast = window.linear_regression(w, at)
        slow = window._regression_per_sample(w, at)
        ok = w.count >= 2
        assert ok.sum() > 1000
        for a, b in zip(fast, slow, strict=True):
            assert np.allclose(a[ok], b[ok], rtol=1e-9, atol=1e-12, equal_nan=True)
