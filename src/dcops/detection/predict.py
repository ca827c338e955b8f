"""Alert-ready predictions: "disk full in 6 h", "rack inlet above 27 C in 40 min".

A `CrossingRule` asks whether a named series will cross a threshold within a horizon; the
forecaster of that series answers with a `Prediction`: when the point forecast gets there,
the earliest time its interval bound does, and how likely the crossing is. Alert rules
turn predictions into alerts; nothing here sends anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dcops.core.errors import Invalid, NotFound
from dcops.detection.forecast import Direction, Forecast, Forecaster
from dcops.detection.model import FloatArray


@dataclass(frozen=True)
class CrossingRule:
    """Will `series` be `direction` `threshold` within `horizon_s`? `label` names the event
    for people ("disk full", "inlet too hot"); `level` is the interval whose bound counts."""

    series: str
    threshold: float
    direction: Direction = "above"
    horizon_s: float = 6 * 3600.0
    label: str = ""
    level: float = 0.8


@dataclass(frozen=True)
class Prediction:
    """A predicted crossing. `in_s` is when the point forecast crosses (None when only the
    bound does), `earliest_s` when the bound does; `confidence` is the forecast probability
    that the series is past the threshold at the likeliest step of the horizon; `at_s` is
    the wall-clock time of the crossing when the caller gave `now_s`."""

    series: str
    label: str
    threshold: float
    direction: Direction
    in_s: float | None
    earliest_s: float
    confidence: float
    level: float
    at_s: float | None = None

    @property
    def likely(self) -> bool:
        return self.in_s is not None

    def message(self) -> str:
        what = self.label or f"{self.series} {self.direction} {self.threshold:g}"
        if self.in_s is not None:
            return f"{what} in {_duration(self.in_s)} ({self.confidence:.0%} likely)"
        return (f"{what} possible in {_duration(self.earliest_s)} "
                f"({self.confidence:.0%} likely within the horizon)")


def predict(forecasters: Mapping[str, Forecaster | tuple[Forecaster, int]],
            rules: Sequence[CrossingRule], *, now_s: float | None = None) -> list[Prediction]:
    """The rules whose series is forecast to cross, soonest first.

    `forecasters` maps a series name to its forecaster, or to (forecaster, column) when one
    forecaster follows several series."""
    out = []
    for rule in rules:
        got = forecasters.get(rule.series)
        if got is None:
            raise NotFound(kind="series", id=rule.series,
                           hint="forecast the series before asking about its crossings")
        fc, column = got if isinstance(got, tuple) else (got, 0)
        p = crossing(fc, column, rule, now_s)
        if p is not None:
            out.append(p)
    return sorted(out, key=lambda p: (p.in_s if p.in_s is not None else p.earliest_s,
                                      p.earliest_s))


def crossing(fc: Forecaster, column: int, rule: CrossingRule,
             now_s: float | None = None) -> Prediction | None:
    """One rule against one forecaster column; None when nothing crosses in the horizon."""
    steps = round(rule.horizon_s / fc.step_s)
    if not 1 <= steps <= fc.max_horizon:
        raise Invalid(f"horizon {rule.horizon_s:g} s is outside what {rule.series!r} is "
                      f"forecast for ({fc.max_horizon * fc.step_s:g} s)", where="crossing rule",
                      hint="shorten the rule's horizon or raise the forecaster's")
    by_level = {lv: f.column(column) for lv, f in fc.forecasts(steps).items()}
    if rule.level not in by_level:
        raise Invalid(f"level {rule.level} is not tracked", where="crossing rule",
                      hint=f"use one of {sorted(by_level)}")
    ttc = by_level[rule.level].time_to_cross(rule.threshold, rule.direction)
    if ttc is None:
        return None
    chance = float(np.max(probability_past(by_level, rule.threshold, rule.direction)))
    in_s = None if ttc.mean_steps is None else ttc.mean_steps * fc.step_s
    earliest_s = ttc.bound_steps * fc.step_s
    at = None if now_s is None else now_s + (in_s if in_s is not None else earliest_s)
    return Prediction(rule.series, rule.label, float(rule.threshold), rule.direction, in_s,
                      earliest_s, chance, rule.level, at)


def probability_past(by_level: Mapping[float, Forecast], threshold: float,
                     direction: Direction) -> FloatArray:
    """Per step, the forecast probability that the value is past `threshold`, read off the
    predictive quantiles (the bounds of every level and the point forecast as the median),
    linearly between them and held at the outermost ones."""
    any_fc = next(iter(by_level.values()))
    points = [(0.5, any_fc.mean)]
    for lv, f in by_level.items():
        points += [((1 - lv) / 2, f.lower), ((1 + lv) / 2, f.upper)]
    points.sort(key=lambda p: p[0])
    taus = np.array([p[0] for p in points])
    values = np.sort(np.vstack([p[1] for p in points]), axis=0)  # (Q, H)
    cdf = np.array([np.interp(threshold, values[:, k], taus) if np.isfinite(values[:, k]).all()
                    else np.nan for k in range(values.shape[1])])
    below = np.where(np.isfinite(cdf), cdf, 1.0 if direction == "above" else 0.0)
    return 1.0 - below if direction == "above" else below


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60.0)
    if minutes < 60:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    return f"{h} h" if m == 0 else f"{h} h {m} min"
