from pathlib import Path

import numpy as np
import pytest

from dcops.detection.eval.forecast import SeriesForecast, evaluate, score_series
from dcops.detection.eval.forecast_data import Series, nab_series, read_nab
from dcops.detection.forecast import ForecastConfig
from tests.detection.data import require

DAY = 288


def synthetic(days: int = 6) -> Series:
    rng = np.random.default_rng(5)
    t = np.arange(days * DAY)
    daily = 10.0 * np.sin(2 * np.pi * t / DAY)
    walk = np.cumsum(rng.normal(scale=0.3, size=len(t)))
    flat = np.full(len(t), 3.0)
    x = np.column_stack([daily + rng.normal(size=len(t)), walk, flat])
    return Series("synthetic", "smd", 300.0, x, 3 * DAY, ("daily", "walk", "flat"))


def test_forecasts_beat_seasonal_naive_and_cover_near_nominal() -> None:
    rows, skipped = score_series(synthetic(), ForecastConfig(), 900.0)
    by = {r.name: r for r in rows}
    assert skipped == ["flat (constant on test)"]
    assert by["daily"].mase_1h < 1.0 and by["walk"].mase_1h < 0.5
    for r in rows:
        assert 0.6 < r.coverage_80_1h < 1.0 and 0.8 < r.coverage_95_1h <= 1.0
        assert r.points > 0 and r.naive_mae_1h > 0


def test_seasonal_naive_scores_one_by_construction() -> None:
    s = synthetic()
    rows, _ = score_series(s, ForecastConfig(), 900.0)
    r = rows[0]
    assert r.mase_1h == pytest.approx(r.mae_1h / r.naive_mae_1h)


def test_nothing_to_evaluate_gives_an_empty_report() -> None:
    rep = evaluate(None, None)
    assert rep.series == () and np.isnan(rep.mase_1h)
    d = rep.to_dict()
    assert {"mase_1h", "mase_6h", "coverage_80", "coverage_95", "series", "config"} <= set(d)


def test_a_report_gathers_units_and_halves() -> None:
    rows, _ = score_series(synthetic(), ForecastConfig(), 900.0)
    assert all(isinstance(r, SeriesForecast) and r.unit == "synthetic" for r in rows)
    assert not any(r.tune for r in rows)


def test_nab_files_are_laid_on_a_regular_grid(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:10:00,3\n"
                 "2014-01-01 00:05:00,2\n2014-01-01 00:10:00,4\n2014-01-01 00:20:00,5\n")
    got = read_nab(p)
    assert np.array_equal(got[:3], [1.0, 2.0, 4.0]) and np.isnan(got[3]) and got[4] == 5.0


def test_one_real_nab_series_scores_sensibly() -> None:
    root = require("nab", "data").parent
    s = next(x for x in nab_series(root) if "rds_cpu_utilization_e47b3b" in x.name)
    (row,), _ = score_series(s, ForecastConfig(), 3600.0)
    assert row.mase_1h < 0.8 and 0.6 < row.coverage_80_1h < 0.95
