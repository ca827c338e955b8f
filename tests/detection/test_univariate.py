import numpy as np
import pytest

from dcops.core.errors import Invalid
from dcops.detection.univariate import (
    UnivariateBank,
    UnivariateDetector,
    measure_throughput,
)


def _series(n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 50.0 + 5.0 * np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0.0, 1.0, n)
    x[1500] += 60.0
    return x


def test_scores_are_causal_prefix_of_scores_equals_scores_of_prefix() -> None:
    x = _series()
    full = UnivariateDetector().score(x)
    for cut in (1, 100, 1499, 1501):
        assert np.array_equal(UnivariateDetector().score(x[:cut]), full[:cut])


def test_chunked_scoring_continues_state() -> None:
    x = _series()
    det = UnivariateDetector()
    parts = np.concatenate([det.score(x[:700]), det.score(x[700:701]), det.score(x[701:])])
    assert np.array_equal(parts, UnivariateDetector().score(x))


def test_scores_lie_in_unit_interval_and_spike_stands_out() -> None:
    s = UnivariateDetector().score(_series())
    assert np.all((s >= 0.0) & (s <= 1.0))
    assert int(np.argmax(s)) == 1500
    learnt = np.delete(s[300:], 1200)  # past the first day and a bit, the spike aside
    assert s[1500] > 3 * np.max(learnt)


def test_missing_samples_score_zero_and_do_not_move_state() -> None:
    x = _series()
    gappy = x.copy()
    gappy[800:850] = np.nan
    s = UnivariateDetector().score(gappy)
    assert np.all(s[800:850] == 0.0)
    without = UnivariateDetector().score(np.delete(x, np.s_[800:850]))
    assert np.array_equal(np.delete(s, np.s_[800:850]), without)


def test_constant_series_never_alarms() -> None:
    s = UnivariateDetector().score(np.full(3000, 7.0))
    assert np.all(np.isfinite(s))
    assert np.max(s) == 0.0


def test_flat_zero_series_with_gaps_is_quiet() -> None:
    x = np.zeros(1000)
    x[::7] = np.nan
    assert np.max(UnivariateDetector().score(x)) == 0.0


def test_huge_spike_gives_one_alarm_not_a_flood() -> None:
    x = _series()
    x[1500] = 1e12
    s = UnivariateDetector().score(x)
    assert np.all(np.isfinite(s))
    assert s[1500] > 0.9
    assert int(np.sum(s[1501:] > 0.5)) <= 1


def test_series_shorter_than_warmup_scores_zero() -> None:
    s = UnivariateDetector().score(np.array([1.0, 100.0, -5.0, np.nan, 3.0]))
    assert s.shape == (5,) and np.all(s == 0.0)
    assert UnivariateDetector().score(np.zeros(0)).shape == (0,)


def test_bank_is_the_same_algorithm_as_one_detector_per_series() -> None:
    series = [_series(2000, seed) for seed in range(3)] + [np.full(600, 3.0)]
    bank = UnivariateBank.score_series(series)
    for x, got in zip(series, bank, strict=True):
        assert np.array_equal(got, UnivariateDetector().score(x))
    block = np.stack([s[:500] for s in series], axis=1)
    stepped = UnivariateBank(4)
    rows = np.stack([stepped.step(block[t]) for t in range(500)])
    assert np.array_equal(rows, UnivariateBank(4).score_batch(block))


def test_state_restores_and_continues_identically() -> None:
    x = _series()
    det = UnivariateDetector()
    det.score(x[:1000])
    again = UnivariateDetector.restore(det.state())
    assert np.array_equal(again.score(x[1000:]), det.score(x[1000:]))


def test_damaged_state_is_invalid() -> None:
    with pytest.raises(Invalid, match="state"):
        UnivariateDetector.restore({"bank_n": np.zeros(1)})


def test_explain_names_the_range_component_for_a_new_extreme() -> None:
    det = UnivariateDetector()
    det.score(_series()[:1501])
    top = det.explain().top(1)
    assert top and top[0][0] == "range"


def test_bad_shapes_are_invalid() -> None:
    with pytest.raises(Invalid, match="1-d"):
        UnivariateDetector().score(np.zeros((3, 2)))
    with pytest.raises(Invalid, match="one column per series"):
        UnivariateBank(3).score_batch(np.zeros((4, 2)))


def test_measure_throughput_reports_points_per_second() -> None:
    assert measure_throughput(n_series=1000, steps=5) > 0.0
