import numpy as np
import pytest

from dcops.core.errors import Invalid, NotFound
from dcops.detection.forecast import Forecaster
from dcops.detection.predict import CrossingRule, predict, probability_past

DAY = 288


def filling_disk() -> Forecaster:
    """Disk use (percent) rising 0.01 point per 5 minutes, with a little noise."""
    rng = np.random.default_rng(0)
    f = Forecaster(300.0)
    f.update(40.0 + 0.1 * np.arange(6 * DAY) * 0.1 + 0.01 * rng.normal(size=6 * DAY))
    return f


def test_disk_full_is_predicted_at_the_right_time() -> None:
    f = filling_disk()
    now = 40.0 + 0.01 * (6 * DAY - 1)
    rule = CrossingRule("disk_used_percent", now + 0.01 * 72, horizon_s=86400.0,
                        label="disk full")
    (p,) = predict({"disk_used_percent": f}, [rule], now_s=1_000_000.0)
    assert p.in_s is not None and abs(p.in_s - 72 * 300.0) <= 2 * 300.0
    assert p.earliest_s <= p.in_s and p.likely
    assert p.at_s == pytest.approx(1_000_000.0 + p.in_s)
    assert 0.4 < p.confidence <= 1.0
    assert p.message().startswith("disk full in 6 h")


def test_no_crossing_means_no_prediction() -> None:
    f = filling_disk()
    assert predict({"d": f}, [CrossingRule("d", 1000.0, horizon_s=3600.0)]) == []
    assert predict({"d": f}, [CrossingRule("d", 0.0, "below", horizon_s=3600.0)]) == []


def test_predictions_come_soonest_first_over_columns() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(4 * DAY)
    # at the end rack1 is at 26.7 C, rising 0.0015 C a step; rack2 at 25.8 C, rising 0.005
    inlet = np.column_stack([25.0 + 0.0015 * t, 20.0 + 0.005 * t]) + 0.01 * rng.normal(
        size=(len(t), 2))
    f = Forecaster(300.0, series=2)
    f.update(inlet)
    rules = [CrossingRule(n, 27.0, horizon_s=86400.0, label=f"{n} inlet above 27 C")
             for n in ("rack1", "rack2")]
    got = predict({"rack1": (f, 0), "rack2": (f, 1)}, rules)
    assert [p.series for p in got] == ["rack1", "rack2"]
    assert [round((p.in_s or 0.0) / 300.0 / 20) for p in got] == [9, 12]  # 180, 248 steps


def test_probability_is_monotone_in_the_threshold() -> None:
    fcs = filling_disk().forecasts(12)
    probs = [float(probability_past(fcs, thr, "above")[-1]) for thr in (40.0, 55.0, 70.0)]
    assert probs[0] >= probs[1] >= probs[2]
    below = float(probability_past(fcs, 55.0, "below")[-1])
    assert below == pytest.approx(1.0 - probs[1])


def test_unknown_series_and_bad_rules_are_errors() -> None:
    f = filling_disk()
    with pytest.raises(NotFound):
        predict({}, [CrossingRule("nope", 1.0)])
    with pytest.raises(Invalid, match="horizon"):
        predict({"d": f}, [CrossingRule("d", 1.0, horizon_s=3 * 86400.0)])
    with pytest.raises(Invalid, match="level"):
        predict({"d": f}, [CrossingRule("d", 1.0, level=0.5)])
