"""How well the forecaster predicts telemetry 1 h and 6 h ahead, against seasonal naive.

Protocol (rolling origin, causal). Each series is fed to one `Forecaster` in time order. The
first part is warm-up only: the first half of a NAB series, the train half of an SMD machine.
From then on, every `origin_every_s` (5 min) the forecaster, having seen the rows up to the
origin t and nothing after, forecasts t + h for h = 1 h and 6 h; then it is given the rows up
to the next origin. SMD machines are forecast as 38 series in lockstep; a metric constant on
test is skipped, and so is a series whose seasonal-naive error is zero at a horizon.

MASE. For a series and horizon h, over the origins t where the target x[t+h] and the value
one season earlier x[t+h-S] are both present (S = 1 day of steps):

    MASE_h = mean_t |x[t+h] - f_t(t+h)|  /  mean_t |x[t+h] - x[t+h-S]|

that is the MAE of the forecast divided by the MAE of the seasonal-naive forecast (the value
one day before the target) over the same forecast points, so seasonal naive scores exactly
1.0 and below 1 is better. It is the error at lead time h exactly, not averaged over 1..h.
Aggregates:

- `mase_*` is the arithmetic mean of per-series ratios (a NAB series or an SMD metric),
- `gmean_*` their geometric mean (the usual mean for relative errors),
- `pooled_*` the ratio of summed MAEs; meaningful inside SMD (all metrics scaled to [0, 1]),
  not across NAB series of different units.

The overall figures weigh each NAB series and each SMD machine (its metrics' mean) equally.

Coverage: the share of scored points inside the forecast's 80 % (95 %) interval, per series
and horizon, averaged the same way. The target is within 5 points of nominal.

Tuning protocol: the configuration was tuned on the `tune` half (NAB series at even
positions of `NAB_MACHINE_SERIES`, SMD machines 1-2, 1-4, 1-6, 1-8) and confirmed on the
other; the report gives both halves.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dcops.detection.eval.forecast_data import (
    NAB_MACHINE_SERIES,
    Series,
    nab_series,
    smd_series,
)
from dcops.detection.forecast import ForecastConfig, Forecaster
from dcops.detection.model import FloatArray, Progress

HORIZONS_S = (3600.0, 6 * 3600.0)
TUNE_SMD = ("machine-1-2", "machine-1-4", "machine-1-6", "machine-1-8")
TUNE_NAB = NAB_MACHINE_SERIES[::2]


@dataclass(frozen=True)
class SeriesForecast:
    """Forecast quality on one series (a NAB file, or one metric of an SMD machine)."""

    name: str
    dataset: str
    unit: str  # what it is averaged under in the overall figures: the file or the machine
    points: int
    mase_1h: float
    mase_6h: float
    mae_1h: float
    mae_6h: float
    naive_mae_1h: float
    naive_mae_6h: float
    coverage_80_1h: float
    coverage_80_6h: float
    coverage_95_1h: float
    coverage_95_6h: float

    @property
    def tune(self) -> bool:
        return self.unit in TUNE_SMD or self.unit in TUNE_NAB


@dataclass(frozen=True)
class Figures:
    """Aggregates over a set of series (see the module docstring for each mean)."""

    series: int
    mase_1h: float
    mase_6h: float
    gmean_1h: float
    gmean_6h: float
    pooled_1h: float
    pooled_6h: float
    coverage_80_1h: float
    coverage_80_6h: float
    coverage_95_1h: float
    coverage_95_6h: float

    @property
    def coverage_80(self) -> float:
        return (self.coverage_80_1h + self.coverage_80_6h) / 2

    @property
    def coverage_95(self) -> float:
        return (self.coverage_95_1h + self.coverage_95_6h) / 2


@dataclass(frozen=True)
class ForecastReport:
    """The forecast benchmark: per-series figures, aggregates per dataset and overall."""

    series: tuple[SeriesForecast, ...]
    overall: Figures
    nab: Figures | None
    smd: Figures | None
    tune: Figures
    confirm: Figures
    skipped: tuple[str, ...]
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def mase_1h(self) -> float:
        return self.overall.mase_1h

    @property
    def mase_6h(self) -> float:
        return self.overall.mase_6h

    @property
    def coverage_80(self) -> float:
        return self.overall.coverage_80

    @property
    def coverage_95(self) -> float:
        return self.overall.coverage_95

    def to_dict(self) -> dict[str, Any]:
        def figs(f: Figures | None) -> dict[str, Any] | None:
            if f is None:
                return None
            return {**asdict(f), "coverage_80": f.coverage_80, "coverage_95": f.coverage_95}

        return {"mase_1h": self.mase_1h, "mase_6h": self.mase_6h,
                "coverage_80": self.coverage_80, "coverage_95": self.coverage_95,
                "overall": figs(self.overall), "nab": figs(self.nab), "smd": figs(self.smd),
                "tune": figs(self.tune), "confirm": figs(self.confirm),
                "series": [asdict(s) for s in self.series], "skipped": list(self.skipped),
                "seconds": self.seconds, "config": self.config}


def evaluate(nab_dir: Path | None, smd_dir: Path | None, *, progress: Progress | None = None,
             config: ForecastConfig | None = None, origin_every_s: float = 300.0,
             smd_machines: tuple[str, ...] | None = None) -> ForecastReport:
    """Runs the protocol above on the NAB machine series and the SMD dev machines."""
    started = time.monotonic()
    cfg = config or ForecastConfig()
    jobs: list[Series] = []
    if nab_dir is not None:
        jobs += nab_series(nab_dir)
    if smd_dir is not None:
        jobs += smd_series(smd_dir, *(() if smd_machines is None else (smd_machines,)))
    results: list[SeriesForecast] = []
    skipped: list[str] = []
    for i, s in enumerate(jobs):
        if progress:
            progress(f"forecast {s.name}", i, len(jobs))
        got, skip = score_series(s, cfg, origin_every_s)
        results += got
        skipped += skip
    if progress:
        progress("forecast", len(jobs), len(jobs))
    every = tuple(results)
    return ForecastReport(
        series=every, overall=_by_unit(every), nab=_maybe([r for r in every if r.dataset == "nab"]),
        smd=_maybe([r for r in every if r.dataset == "smd"]),
        tune=_by_unit([r for r in every if r.tune]),
        confirm=_by_unit([r for r in every if not r.tune]), skipped=tuple(skipped),
        seconds=time.monotonic() - started,
        config={**asdict(cfg), "origin_every_s": origin_every_s})


def score_series(s: Series, cfg: ForecastConfig,
                 origin_every_s: float) -> tuple[list[SeriesForecast], list[str]]:
    """Rolling-origin forecasts on one series; per-metric figures and the skipped metrics."""
    x = s.values
    season = max(1, round(cfg.season_s / s.step_s))
    hs = [max(1, round(h / s.step_s)) for h in HORIZONS_S]
    every = max(1, round(origin_every_s / s.step_s))
    fc = Forecaster(s.step_s, series=x.shape[1], config=cfg)
    fc.update(x[:s.warmup])
    seen = s.warmup
    origins = np.arange(s.warmup - 1, len(x) - 1 - max(hs), every)
    got = np.full((2, 1, len(origins), x.shape[1]), np.nan)  # horizon, mean, origin, metric
    bounds = np.full((2, 4, len(origins), x.shape[1]), np.nan)
    for k, o in enumerate(origins.tolist()):
        fc.update(x[seen:o + 1])
        seen = o + 1
        by_level = fc.forecasts(max(hs))
        f80, f95 = by_level[0.8], by_level[0.95]
        for j, h in enumerate(hs):
            got[j, 0, k] = _row(f80.mean, h)
            bounds[j, :, k] = [_row(f80.lower, h), _row(f80.upper, h), _row(f95.lower, h),
                               _row(f95.upper, h)]
    out, skipped = [], []
    test = x[s.warmup:]
    for d, metric in enumerate(s.metrics):
        col = test[:, d]
        if not np.isfinite(col).any() or np.nanstd(col) == 0:
            skipped.append(f"{metric} (constant on test)")
            continue
        row = _metric(s, metric, x[:, d], origins, hs, season, got[:, 0, :, d], bounds[..., d])
        if row is None:
            skipped.append(f"{metric} (seasonal naive is exact)")
        else:
            out.append(row)
    return out, skipped


def _row(a: FloatArray, h: int) -> FloatArray:
    return np.asarray(a[h - 1], dtype=np.float64).reshape(-1)


def _metric(s: Series, metric: str, x: FloatArray, origins: np.ndarray, hs: list[int],
            season: int, mean: FloatArray, bounds: FloatArray) -> SeriesForecast | None:
    figs: list[float] = []
    points = 0
    for j, h in enumerate(hs):
        target = x[origins + h]
        naive = x[origins + h - season]
        ok = np.isfinite(target) & np.isfinite(naive) & np.isfinite(mean[j])
        if not ok.any():
            return None
        e_f = np.abs(target[ok] - mean[j][ok]).mean()
        e_n = np.abs(target[ok] - naive[ok]).mean()
        if e_n <= 0:
            return None
        lo80, hi80, lo95, hi95 = (b[ok] for b in bounds[j])
        t = target[ok]
        figs += [e_f / e_n, e_f, e_n, float(np.mean((t >= lo80) & (t <= hi80))),
                 float(np.mean((t >= lo95) & (t <= hi95)))]
        points = max(points, int(ok.sum()))
    a, b = figs[:5], figs[5:]
    return SeriesForecast(metric if s.dataset == "smd" else s.name, s.dataset, s.name, points,
                          a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4])


def _maybe(rows: list[SeriesForecast]) -> Figures | None:
    return _figures(rows) if rows else None


def _figures(rows: list[SeriesForecast]) -> Figures:
    def col(name: str) -> FloatArray:
        return np.array([getattr(r, name) for r in rows], dtype=np.float64)

    def gmean(v: FloatArray) -> float:
        return float(np.exp(np.mean(np.log(np.maximum(v, 1e-12))))) if v.size else math.nan

    def mean(v: FloatArray) -> float:
        return float(v.mean()) if v.size else math.nan

    def pooled(h: str) -> float:
        den = col(f"naive_mae_{h}").sum()
        return float(col(f"mae_{h}").sum() / den) if den > 0 else math.nan

    return Figures(len(rows), mean(col("mase_1h")), mean(col("mase_6h")), gmean(col("mase_1h")),
                   gmean(col("mase_6h")), pooled("1h"), pooled("6h"),
                   mean(col("coverage_80_1h")), mean(col("coverage_80_6h")),
                   mean(col("coverage_95_1h")), mean(col("coverage_95_6h")))


def _by_unit(rows: list[SeriesForecast] | tuple[SeriesForecast, ...]) -> Figures:
    """Each unit (a NAB file, an SMD machine) weighs the same: its rows are averaged first."""
    units: dict[str, list[SeriesForecast]] = {}
    for r in rows:
        units.setdefault(r.unit, []).append(r)
    per_unit = [_figures(v) for v in units.values()]
    if not per_unit:
        return _figures([])

    def avg(name: str) -> float:
        return float(np.mean([getattr(f, name) for f in per_unit]))

    gm = {h: float(np.exp(np.mean([math.log(max(getattr(f, f"gmean_{h}"), 1e-12))
                                   for f in per_unit]))) for h in ("1h", "6h")}
    return Figures(len(rows), avg("mase_1h"), avg("mase_6h"), gm["1h"], gm["6h"],
                   avg("pooled_1h"), avg("pooled_6h"), avg("coverage_80_1h"),
                   avg("coverage_80_6h"), avg("coverage_95_1h"), avg("coverage_95_6h"))
