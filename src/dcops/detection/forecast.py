"""Forecasts of telemetry (GPU demand, temperature, power, disk use) with calibrated intervals.

A `Forecaster` follows one or more regularly sampled series in lockstep, causally, and says
where each is heading over the next minutes to a day. Its point forecast is a blend of five
simple forecasts, each right for a different kind of series (`forecast_blend`):

- `fast` and `slow`: smoothed levels (half-lives of 5 min and 1 h): random walks, noise
  around a drifting level;
- `trend`: Holt's linear trend: a disk filling at a steady rate;
- `seasonal`: the daily profile plus today's deviation from it, decaying over hours:
  demand that follows the working day;
- `profile`: the daily profile alone, the median of the last 5 days at that time of day:
  far ahead on a daily series; a burst on one day does not enter it.

Spikes are clipped (to a few times the typical one-step change around the fast level)
before they reach the slow level, the trend and the deviation.

At a ladder of horizons (1-3 steps, 5, 10, 15, 30 min, 1, 2, 3, 6, 12, 24 h) the forecaster
scores each of its own past forecasts once the value arrives, and weighs the five by an
inverse power of their recent error at that horizon. The same scoring calibrates the
intervals: per horizon and bound an online quantile tracker (conformal quantile tracking,
Angelopoulos et al. 2023) moves the bound up when a value falls above it and down otherwise,
so that in the long run the nominal share of values (80 %, 95 %) falls inside. Horizons
between two rungs are interpolated in log horizon.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal, Self

import numpy as np

from dcops.core.errors import Invalid
from dcops.detection.forecast_blend import Blend, Rates, ladder, normal_ppf
from dcops.detection.model import FloatArray, State, StateValue

Direction = Literal["above", "below"]
_CHUNK = 512


@dataclass(frozen=True)
class ForecastConfig:
    """One configuration for every series; times are in seconds so it fits any sampling step.

    Half-lives set how fast each smoothed state forgets; `profile_days` is how many days the
    profile's median spans; `clip` is how many typical one-step changes a value may stray
    from the fast level before it is clipped for the other states; `error_power` and
    `weight_power` shape the weights (the mean of |error| ** error_power, to the power
    -weight_power / error_power: a low error_power keeps one burst from evening out all
    candidates); `quantile_rate` and `width_rate` are the interval trackers' steps per
    5 minutes, as shares of the recent absolute error and of the interval's own width.

    The defaults were tuned on half of the development series and confirmed on the other half
    (see `dcops.detection.eval.forecast`)."""

    season_s: float = 86400.0
    max_horizon_s: float = 86400.0
    fast_halflife_s: float = 300.0
    slow_halflife_s: float = 3600.0
    trend_halflife_s: float = 6 * 3600.0
    profile_days: int = 5
    deviation_halflife_s: float = 6 * 3600.0
    error_halflife_s: float = 86400.0
    error_power: float = 0.5
    weight_power: float = 2.0
    scale_halflife_s: float = 86400.0
    clip: float = 4.0
    quantile_rate: float = 0.02
    quantile_halflife_s: float = 86400.0
    width_rate: float = 0.002
    levels: tuple[float, ...] = (0.8, 0.95)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "levels" or (name == "width_rate" and value == 0):
                continue
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise Invalid(f"{name} must be a positive number, not {value!r}",
                              where="forecast config")
        if self.max_horizon_s > self.season_s:
            raise Invalid("max_horizon_s cannot exceed season_s", where="forecast config",
                          hint="forecast at most one season (a day) ahead")
        if not self.levels or any(not 0.0 < lv < 1.0 for lv in self.levels):
            raise Invalid(f"levels must lie strictly between 0 and 1, not {self.levels!r}",
                          where="forecast config", hint="for example (0.8, 0.95)")


@dataclass(frozen=True)
class TimeToCross:
    """When a forecast reaches a threshold, in steps after the last value (1 = the next one).

    `mean_steps` is where the point forecast gets there, `bound_steps` where the interval
    bound on the threshold's side does (the upper bound for "above"): the earliest time the
    crossing is plausible at `level`. `mean_steps` is None when the point forecast does not
    get there within the horizon."""

    threshold: float
    direction: Direction
    level: float
    mean_steps: int | None
    bound_steps: int


@dataclass(frozen=True)
class Forecast:
    """Point forecast and interval for the next `len(mean)` steps; row k is k + 1 steps ahead.

    Arrays are (H,) for a single series and (H, D) for D series. Before the forecaster has
    seen a value the mean is NaN; before it has scored a forecast the bounds are NaN."""

    mean: FloatArray
    lower: FloatArray
    upper: FloatArray
    level: float

    def column(self, j: int) -> Forecast:
        if self.mean.ndim == 1:
            return self
        return Forecast(self.mean[:, j], self.lower[:, j], self.upper[:, j], self.level)

    def time_to_cross(self, threshold: float, direction: Direction = "above") -> TimeToCross | None:
        """Earliest step where the forecast, and separately its bound, is past `threshold`."""
        if self.mean.ndim != 1:
            raise Invalid("time_to_cross needs one series", where="forecast",
                          hint="take .column(j) first")
        if direction not in ("above", "below"):
            raise Invalid(f"direction must be 'above' or 'below', not {direction!r}",
                          where="time_to_cross")
        bound = self.upper if direction == "above" else self.lower
        mean_steps = _first_past(self.mean, threshold, direction)
        bound_steps = _first_past(bound, threshold, direction)
        if mean_steps is not None and (bound_steps is None or bound_steps > mean_steps):
            bound_steps = mean_steps
        if bound_steps is None:
            return None
        return TimeToCross(float(threshold), direction, self.level, mean_steps, bound_steps)


def _first_past(a: FloatArray, threshold: float, direction: Direction) -> int | None:
    with np.errstate(invalid="ignore"):
        past = a >= threshold if direction == "above" else a <= threshold
    hits = np.flatnonzero(past)
    return int(hits[0]) + 1 if hits.size else None


class Forecaster:
    """Causal streaming forecaster of D regularly sampled series (D = `series`).

    `update(values)` takes rows in time order: (T,) for one series, (T, D) for several; NaN
    is a missing sample and moves nothing. `forecast(h)` gives the next h steps. Feeding a
    series in one call or in many gives the same forecasts, and `state()` / `restore()`
    continue exactly."""

    name = "blend"

    def __init__(self, step_s: float, *, series: int = 1,
                 config: ForecastConfig | None = None) -> None:
        if not (isinstance(step_s, int | float) and math.isfinite(step_s) and step_s > 0):
            raise Invalid(f"step_s must be a positive number of seconds, not {step_s!r}",
                          where="forecaster")
        if series < 1:
            raise Invalid(f"series must be at least 1, not {series}", where="forecaster")
        self.config = cfg = config or ForecastConfig()
        self.step_s = float(step_s)
        self.series = series
        self.season = max(1, round(cfg.season_s / step_s))
        self.max_horizon = min(self.season, max(1, round(cfg.max_horizon_s / step_s)))
        self.horizons = ladder(step_s, self.max_horizon)
        self.taus = np.array(sorted({t for lv in cfg.levels
                                     for t in ((1 - lv) / 2, (1 + lv) / 2)} | {0.5}))
        self._blend = Blend(Rates.of(cfg, step_s), self.season, self.horizons, self.taus,
                            series, cfg.quantile_rate * step_s / 300.0,
                            cfg.width_rate * step_s / 300.0, cfg.profile_days)

    @property
    def t(self) -> int:
        """How many rows (present or missing) the forecaster has taken."""
        return self._blend.t

    def update(self, values: FloatArray) -> None:
        """Takes the next rows; a NaN is a missing sample."""
        x = np.asarray(values, dtype=np.float64)
        if x.ndim == 1 and self.series == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.series:
            raise Invalid(f"values have shape {np.shape(values)}; this forecaster follows "
                          f"{self.series} series", where="forecaster.update",
                          hint="pass (T,) for one series or (T, series)")
        x = np.where(np.isfinite(x), x, np.nan)
        for i in range(0, len(x), _CHUNK):
            self._blend.update(x[i:i + _CHUNK])

    def forecasts(self, horizon_steps: int) -> dict[float, Forecast]:
        """The next `horizon_steps` steps at every configured level (0.8, 0.95)."""
        if not (isinstance(horizon_steps, int | np.integer)
                and 1 <= horizon_steps <= self.max_horizon):
            raise Invalid(f"horizon of {horizon_steps!r} steps is outside "
                          f"1..{self.max_horizon}", where="forecast",
                          hint="raise ForecastConfig.max_horizon_s (at most a season)")
        mean, q = self._blend.path(int(horizon_steps))  # (H, D), (H, Q, D)
        out = {}
        for lv in self.config.levels:
            lo = int(np.argmin(np.abs(self.taus - (1 - lv) / 2)))
            hi = int(np.argmin(np.abs(self.taus - (1 + lv) / 2)))
            lower, upper = mean + np.minimum(q[:, lo], 0.0), mean + np.maximum(q[:, hi], 0.0)
            if self.series == 1:
                out[lv] = Forecast(mean[:, 0], lower[:, 0], upper[:, 0], lv)
            else:
                out[lv] = Forecast(mean, lower, upper, lv)
        return out

    def forecast(self, horizon_steps: int, level: float = 0.8) -> Forecast:
        """The next `horizon_steps` steps; the interval holds `level` of values."""
        for lv, fc in self.forecasts(horizon_steps).items():
            if abs(lv - level) < 1e-9:
                return fc
        raise Invalid(f"level {level} is not tracked", where="forecast",
                      hint=f"use one of {self.config.levels} or configure levels")

    def time_to_cross(self, threshold: float, direction: Direction = "above",
                      horizon_steps: int | None = None, *, level: float = 0.8,
                      column: int = 0) -> TimeToCross | None:
        """When series `column` is forecast past `threshold` within the horizon, or None."""
        fc = self.forecast(horizon_steps or self.max_horizon, level)
        return fc.column(column).time_to_cross(threshold, direction)

    def state(self) -> State:
        out: State = {"name": self.name, "step_s": self.step_s, "series": self.series}
        for k, v in asdict(self.config).items():
            out[f"config.{k}"] = ",".join(map(repr, v)) if isinstance(v, tuple) else v
        out.update(self._blend.state())
        return out

    @classmethod
    def restore(cls, state: Mapping[str, StateValue]) -> Self:
        try:
            raw = {k[7:]: state[k] for k in state if k.startswith("config.")}
            levels = tuple(float(v) for v in str(raw.pop("levels")).split(","))
            days = int(_num(raw.pop("profile_days")))
            cfg = ForecastConfig(levels=levels, profile_days=days,
                                 **{k: _num(v) for k, v in raw.items()})
            self = cls(_num(state["step_s"]), series=int(_num(state["series"])), config=cfg)
            self._blend.restore(state)
        except (KeyError, ValueError, TypeError) as exc:
            raise Invalid(f"forecaster state is not usable: {exc}", where="forecaster",
                          hint="start a new forecaster; it learns again") from exc
        return self


def _num(v: StateValue) -> float:
    if isinstance(v, np.ndarray | str):
        raise ValueError(f"expected a number, got {type(v).__name__}")
    return float(v)


__all__ = ["Direction", "Forecast", "ForecastConfig", "Forecaster", "TimeToCross",
           "normal_ppf"]
