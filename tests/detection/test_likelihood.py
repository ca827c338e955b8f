import numpy as np
import pytest

from dcops.core.errors import Invalid
from dcops.detection.likelihood import (
    LikelihoodConfig,
    LikelihoodDetector,
    measure_likelihood_throughput,
)

SMALL = LikelihoodConfig(knn_lags=400, history=1000)


def _series(n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 50.0 + 5.0 * np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0.0, 1.0, n)
    x[1500] += 60.0
    return x


def test_scores_are_causal_prefix_of_scores_equals_scores_of_prefix() -> None:
    x = _series()
    full = LikelihoodDetector(SMALL).score(x)
    for cut in (1, 100, 1499, 1501):
        assert np.array_equal(LikelihoodDetector(SMALL).score(x[:cut]), full[:cut])


def test_chunked_scoring_continues_state() -> None:
    x = _series()
    det = LikelihoodDetector(SMALL)
    parts = np.concatenate([det.score(x[:700]), det.score(x[700:701]), det.score(x[701:])])
    assert np.array_equal(parts, LikelihoodDetector(SMALL).score(x))


def test_scores_lie_in_unit_interval_and_spike_stands_out() -> None:
    s = LikelihoodDetector(SMALL).score(_series())
    assert np.all((s >= 0.0) & (s <= 1.0))
    assert s[1500] == 1.0
    assert int(np.sum(s[600:] >= 0.999)) <= 5


def test_missing_samples_score_zero_and_do_not_move_state() -> None:
    x = _series()
    gappy = x.copy()
    gappy[800:850] = np.nan
    s = LikelihoodDetector(SMALL).score(gappy)
    assert np.all(s[800:850] == 0.0)
    without = LikelihoodDetector(SMALL).score(np.delete(x, np.s_[800:850]))
    assert np.array_equal(np.delete(s, np.s_[800:850]), without)


def test_constant_and_flat_series_never_alarm() -> None:
    s = LikelihoodDetector(SMALL).score(np.full(3000, 7.0))
    assert np.all(np.isfinite(s)) and np.max(s) == 0.0
    x = np.zeros(1000)
    x[::7] = np.nan
    assert np.max(LikelihoodDetector(SMALL).score(x)) == 0.0


def test_huge_spike_gives_one_alarm_not_a_flood() -> None:
    x = _series()
    x[1500] = 1e12
    s = LikelihoodDetector(SMALL).score(x)
    assert np.all(np.isfinite(s))
    assert s[1500] == 1.0
    assert int(np.sum(s[1501:] > 0.5)) <= 1


def test_short_series_score_zero() -> None:
    s = LikelihoodDetector().score(np.array([1.0, 100.0, -5.0, np.nan, 3.0]))
    assert s.shape == (5,) and np.all(s == 0.0)
    assert LikelihoodDetector().score(np.zeros(0)).shape == (0,)


def test_state_restores_and_continues_identically() -> None:
    x = _series()
    det = LikelihoodDetector(SMALL)
    det.score(x[:1000])
    again = LikelihoodDetector.restore(det.state())
    assert again.config == SMALL
    assert np.array_equal(again.score(x[1000:]), det.score(x[1000:]))


def test_damaged_state_is_invalid() -> None:
    with pytest.raises(Invalid, match="state"):
        LikelihoodDetector.restore({"nab_scalars": np.zeros(1)})
    state = LikelihoodDetector(SMALL).state()
    state["nab_dist"] = np.zeros(3)
    with pytest.raises(Invalid, match="shape"):
        LikelihoodDetector.restore(state)


def test_state_saved_before_the_day_long_subsequence_is_refused() -> None:
    # Saved by the detector with three matrix profiles: no day-long window in its settings,
    # three rows of distances and fewer scalars.
    state = LikelihoodDetector(SMALL).state()
    del state["config_knn_window_day"], state["config_knn_tail_day"]
    state["nab_dist"] = np.zeros((3, SMALL.knn_lags + 1))
    with pytest.raises(Invalid, match="knn_window_day"):
        LikelihoodDetector.restore(state)


def test_explain_names_the_range_component_for_a_new_extreme() -> None:
    det = LikelihoodDetector(SMALL)
    det.score(_series()[:1501])
    top = det.explain().top(1)
    assert top and top[0][0] == "range"
    assert {name for name, _ in det.explain().top(4)} <= {
        "range", "prediction error", "subsequence", "new pattern"}


def test_bad_shapes_are_invalid() -> None:
    with pytest.raises(Invalid, match="1-d"):
        LikelihoodDetector().score(np.zeros((3, 2)))


def test_measure_likelihood_throughput_reports_points_per_second() -> None:
    assert measure_likelihood_throughput(length=2000) > 0.0


def test_default_configuration_is_causal_too() -> None:
    x = _series(2500, seed=3)
    full = LikelihoodDetector().score(x)
    for cut in (1, 777, 2001):
        assert np.array_equal(LikelihoodDetector().score(x[:cut]), full[:cut])


def test_longer_subsequences_catch_a_cycle_of_another_shape() -> None:
    # One daily cycle of a smaller amplitude: every 16-row stretch of it resembles part of
    # a normal cycle, so only the 32- and 64-row subsequences find no close match.
    rng = np.random.default_rng(1)
    t = np.arange(4000)
    x = 50.0 + 20.0 * np.sin(2 * np.pi * t / 288) + rng.normal(0.0, 1.0, t.size)
    odd = slice(2880, 3168)
    x[odd] = 50.0 + 12.0 * np.sin(2 * np.pi * t[odd] / 288) + rng.normal(0.0, 1.0, 288)
    short_only = LikelihoodConfig(knn_window_mid=16, knn_window_long=16, knn_window_day=16,
                                  knn_tail_mid=1e-10, knn_tail_long=1e-10,
                                  knn_tail_day=1e-10)
    with_long = LikelihoodDetector().score(x)
    without = LikelihoodDetector(short_only).score(x)
    assert np.max(with_long[odd]) >= 0.99 > np.max(without[odd])
    elsewhere = np.ones(t.size, dtype=bool)
    elsewhere[odd] = False
    assert np.sum(with_long[elsewhere] >= 0.99) <= np.sum(without[elsewhere] >= 0.99)


def test_day_long_subsequence_catches_a_daily_peak_that_never_came() -> None:
    # A daily plateau (100 of 288 rows high) that one day does not rise: each hour of that
    # day looks like a normal night, so only the day-long subsequence finds no match, and
    # it does so within rows of the missed rise.
    rng = np.random.default_rng(2)
    t = np.arange(4032)
    x = np.where(t % 288 < 100, 80.0, 20.0) + rng.normal(0.0, 2.0, t.size)
    missed = 2880
    x[missed:missed + 100] = 20.0 + rng.normal(0.0, 2.0, 100)
    no_day = LikelihoodConfig(knn_window_day=64, knn_tail_day=1e-3)
    with_day = LikelihoodDetector().score(x)
    without = LikelihoodDetector(no_day).score(x)
    first = int(np.argmax(with_day[missed:] >= 0.99))
    assert first <= 5
    assert np.max(without[missed:missed + 50]) < 0.99
    elsewhere = np.ones(t.size, dtype=bool)
    elsewhere[missed:missed + 288] = False
    assert np.sum(with_day[elsewhere] >= 0.99) <= np.sum(without[elsewhere] >= 0.99)


@pytest.mark.parametrize("bad", [
    {"knn_tail_mid": 0.0}, {"knn_tail_long": 2.0}, {"knn_window_mid": 0},
    {"knn_window_long": 5000}, {"history": 0}, {"gram_order": 0}, {"knn_window_day": 1},
    {"knn_tail_day": 1.0},
])
def test_bad_settings_are_invalid_and_name_the_setting(bad: dict[str, float]) -> None:
    with pytest.raises(Invalid) as exc:
        LikelihoodConfig(**bad)  # type: ignore[arg-type]
    assert next(iter(bad)).split("_")[0] in str(exc.value)
