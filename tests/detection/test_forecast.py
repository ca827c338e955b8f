from pathlib import Path

import numpy as np
import pytest

from dcops.core.errors import Invalid
from dcops.detection.forecast import ForecastConfig, Forecaster
from dcops.detection.model import FloatArray, load_state, save_state
from tests.detection.data import require

DAY = 288  # 5-minute steps


def sine(n: int, start: int = 0) -> FloatArray:
    t = np.arange(start, start + n, dtype=np.float64)
    out: FloatArray = 50.0 + 10.0 * np.sin(2 * np.pi * t / DAY)
    return out


def test_a_daily_sine_is_forecast_nearly_exactly() -> None:
    f = Forecaster(300.0)
    f.update(sine(6 * DAY))
    fc = f.forecast(DAY)
    truth = sine(DAY, start=6 * DAY)
    assert np.max(np.abs(fc.mean - truth)) < 0.1  # amplitude 10
    assert np.all(fc.lower <= fc.mean) and np.all(fc.mean <= fc.upper)


def test_a_ramp_crosses_where_it_should() -> None:
    f = Forecaster(300.0)
    ramp = 0.5 * np.arange(6 * DAY, dtype=np.float64)
    f.update(ramp)
    ttc = f.time_to_cross(ramp[-1] + 100.0, "above", DAY)
    assert ttc is not None and ttc.mean_steps is not None
    assert abs(ttc.mean_steps - 200) <= 1
    assert ttc.bound_steps <= ttc.mean_steps
    assert f.time_to_cross(-5.0, "below", DAY) is None


def test_intervals_cover_iid_noise_near_nominal() -> None:
    rng = np.random.default_rng(7)
    f = Forecaster(300.0, series=20)
    f.update(rng.normal(size=(4 * DAY, 20)))
    inside: dict[float, list[FloatArray]] = {0.8: [], 0.95: []}
    for _ in range(60):
        fcs = f.forecasts(12)
        nxt = rng.normal(size=(12, 20))
        for lv, fc in fcs.items():
            inside[lv].append((nxt[-1] >= fc.lower[-1]) & (nxt[-1] <= fc.upper[-1]))
        f.update(nxt)
    assert abs(np.mean(inside[0.8]) - 0.8) < 0.05
    assert abs(np.mean(inside[0.95]) - 0.95) < 0.03


def test_gaps_constants_and_counter_resets_do_not_break_it() -> None:
    rng = np.random.default_rng(1)
    gappy = sine(3 * DAY) + rng.normal(size=3 * DAY)
    gappy[100:400] = np.nan
    gappy[rng.random(3 * DAY) < 0.1] = np.nan
    constant = np.full(3 * DAY, 7.0)
    counter = np.concatenate([np.arange(DAY) * 3.0, np.arange(2 * DAY) * 3.0])  # reset
    empty = np.full(3 * DAY, np.nan)
    f = Forecaster(300.0, series=4)
    f.update(np.column_stack([gappy, constant, counter, empty]))
    fc = f.forecast(72, 0.95)
    assert np.isfinite(fc.mean[:, :3]).all() and np.isfinite(fc.upper[:, :3]).all()
    assert np.allclose(fc.mean[:, 1], 7.0) and np.allclose(fc.upper[:, 1], 7.0)
    assert np.isnan(fc.mean[:, 3]).all()
    assert f.time_to_cross(1e9, column=3) is None


def test_infinite_values_count_as_missing() -> None:
    f = Forecaster(300.0)
    f.update(np.array([1.0, np.inf, 1.0, -np.inf, 1.0]))
    assert np.allclose(f.forecast(3).mean, 1.0)


def test_one_call_or_many_give_the_same_forecasts() -> None:
    x = sine(2 * DAY) + np.random.default_rng(3).normal(size=2 * DAY)
    a, b = Forecaster(300.0), Forecaster(300.0)
    a.update(x)
    for chunk in np.array_split(x, 37):
        b.update(chunk)
    fa, fb = a.forecast(DAY), b.forecast(DAY)
    assert np.allclose(fa.mean, fb.mean) and np.allclose(fa.upper, fb.upper, equal_nan=True)


def test_state_round_trip_continues_identically(tmp_path: Path) -> None:
    x = sine(3 * DAY) + np.random.default_rng(4).normal(size=3 * DAY)
    a = Forecaster(300.0, config=ForecastConfig(levels=(0.5, 0.9)))
    a.update(x[:2 * DAY])
    save_state(a.state(), tmp_path / "fc.npz")
    b = Forecaster.restore(load_state(tmp_path / "fc.npz"))
    a.update(x[2 * DAY:])
    b.update(x[2 * DAY:])
    fa, fb = a.forecast(72, 0.9), b.forecast(72, 0.9)
    assert np.array_equal(fa.mean, fb.mean) and np.array_equal(fa.lower, fb.lower)
    assert b.config == a.config and b.t == a.t


def test_a_damaged_state_is_an_error() -> None:
    state = Forecaster(300.0).state()
    state["profile"] = np.zeros(3)
    with pytest.raises(Invalid, match="not usable"):
        Forecaster.restore(state)


def test_bad_input_is_refused() -> None:
    f = Forecaster(60.0, series=2)
    with pytest.raises(Invalid, match="shape"):
        f.update(np.zeros(5))
    with pytest.raises(Invalid, match="horizon"):
        f.forecast(2 * 1440)
    with pytest.raises(Invalid, match="level"):
        f.forecast(10, 0.5)
    with pytest.raises(Invalid, match="step_s"):
        Forecaster(0.0)
    with pytest.raises(Invalid, match="levels"):
        ForecastConfig(levels=(1.2,))
    with pytest.raises(Invalid, match="max_horizon_s"):
        ForecastConfig(max_horizon_s=2 * 86400.0)


def test_before_any_value_the_forecast_is_unknown() -> None:
    fc = Forecaster(300.0).forecast(5)
    assert np.isnan(fc.mean).all() and np.isnan(fc.upper).all()


def test_real_machine_series_beats_seasonal_naive_an_hour_ahead() -> None:
    path = require("nab", "data", "realAWSCloudwatch", "rds_cpu_utilization_e47b3b.csv")
    from dcops.detection.eval.forecast_data import read_nab

    x = read_nab(path)
    f = Forecaster(300.0)
    f.update(x[:2 * DAY])
    err, naive = [], []
    for o in range(2 * DAY, 3 * DAY, 6):
        f.update(x[f.t:o + 1])
        err.append(abs(f.forecast(12).mean[-1] - x[o + 12]))
        naive.append(abs(x[o + 12 - DAY] - x[o + 12]))
    assert np.nanmean(err) < np.nanmean(naive)
