"""The arithmetic behind `Forecaster`: smoothed states, the five candidate forecasts, their
online weights and the error quantiles that calibrate the intervals.

Rows are taken in chunks. Only two things must run row by row: the smoothed states (they
clip spikes, which is not linear) and the quantile trackers. Everything else, scoring the
forecasts made h steps ago, the mean absolute errors (bias-corrected exponential averages,
so a missing value simply adds no weight) and the blend, is vectorised over the chunk.

A forecast made at origin o for o + h uses the profile entry of the target's time of day.
For h up to a season that entry is not written again between o and the target, so the
value the target finds before its own update is the one the origin used: the forecast can
be rebuilt at the target from the states kept at the origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import lfilter  # type: ignore[import-untyped]

from dcops.detection.model import FloatArray, State, StateValue

if TYPE_CHECKING:
    from dcops.detection.forecast import ForecastConfig

CANDIDATES = ("fast", "slow", "trend", "seasonal", "profile")
LADDER_MIN = (5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
"""Horizons (minutes) at which errors are kept, besides the first three steps."""
FAST, SLOW, HOLT, TREND, DEV, SCALE = range(6)  # rows of the state
_KEPT = 5  # rows kept per origin: all but the scale
_CELLS = 1 << 18  # chunk rows * rungs * candidates * series held at once


def ladder(step_s: float, max_horizon_steps: int) -> np.ndarray:
    """The horizons (steps) at which a forecaster with this step keeps its errors."""
    rungs = {1, 2, 3} | {max(1, round(m * 60.0 / step_s)) for m in LADDER_MIN}
    return np.array(sorted(h for h in rungs if h <= max_horizon_steps), dtype=np.int64)


def normal_ppf(p: FloatArray) -> FloatArray:
    unit = NormalDist()
    return np.array([unit.inv_cdf(float(v)) for v in np.ravel(p)]).reshape(np.shape(p))


def _gain(halflife_steps: float) -> float:
    return float(1.0 - 0.5 ** (1.0 / max(halflife_steps, 1e-9)))


@dataclass(frozen=True)
class Rates:
    """Per-step gains of the smoothed states and decays of the error averages."""

    fast: float
    slow: float
    trend: float
    deviation: float
    phi: float
    error_decay: float
    scale: float
    clip: float
    quantile_decay: float
    error_power: float
    weight_power: float

    @classmethod
    def of(cls, cfg: ForecastConfig, step_s: float) -> Rates:
        return cls(fast=_gain(cfg.fast_halflife_s / step_s),
                   slow=_gain(cfg.slow_halflife_s / step_s),
                   trend=_gain(cfg.trend_halflife_s / step_s),
                   deviation=_gain(cfg.fast_halflife_s / step_s),
                   phi=0.5 ** (1.0 / max(cfg.deviation_halflife_s / step_s, 1e-9)),
                   error_decay=1.0 - _gain(cfg.error_halflife_s / step_s),
                   scale=_gain(cfg.scale_halflife_s / step_s), clip=cfg.clip,
                   quantile_decay=1.0 - _gain(cfg.quantile_halflife_s / step_s),
                   error_power=cfg.error_power, weight_power=cfg.weight_power / cfg.error_power)


_ARRAYS = ("level", "profile", "days", "ring_state", "ring_blend", "mae_num", "mae_den",
           "blend_num", "blend_den", "errors", "quantile", "seen")


class Blend:
    """The learnt state of D series and the chunked update that moves it."""

    def __init__(self, rates: Rates, season: int, horizons: np.ndarray, taus: FloatArray,
                 series: int, quantile_rate: float, width_rate: float,
                 profile_days: int) -> None:
        self.rates, self.season, self.horizons, self.taus = rates, season, horizons, taus
        self.quantile_rate = quantile_rate
        self.width_rate = width_rate
        b, c, q, d = len(horizons), len(CANDIDATES), len(taus), series
        r = int(horizons[-1]) + 1
        self.chunk = int(max(8, min(1024, _CELLS // (b * c * d))))
        self.t = 0
        self.level = np.full((6, d), np.nan)
        self.profile = np.full((season, d), np.nan)
        self.days = np.full((profile_days, season, d), np.nan)
        self.ring_state = np.full((r, _KEPT, d), np.nan)
        self.ring_blend = np.full((r, b, d), np.nan)
        self.mae_num, self.mae_den = np.zeros((b, c, d)), np.zeros((b, c, d))
        self.blend_num, self.blend_den = np.zeros((b, d)), np.zeros((b, d))
        self.errors = np.zeros((b, d))
        self.quantile = np.zeros((b, q, d))
        self.seen = np.zeros(d)

    # ------------------------------------------------------------------ update

    def update(self, x: FloatArray) -> None:
        for i in range(0, len(x), self.chunk):
            self._chunk(x[i:i + self.chunk])

    def _chunk(self, x: FloatArray) -> None:
        n, s, hz, t0 = len(x), self.season, self.horizons, self.t
        prof_before = self.profile[(t0 + np.arange(s)) % s]  # written at t0-S .. t0-1
        kept, prof_post = self._smooth(x)
        hist_st = np.concatenate([self.ring_state, kept])
        hist_prof = np.concatenate([prof_before, prof_post])
        r = len(self.ring_state)
        i = np.arange(n)[:, None]
        # score the candidates made h steps before each row, against the row
        cands = candidates(hist_st[r + i - hz], hist_prof[:n, None, :], hz, self.rates.phi)
        # only the part of the miss that tells candidates apart: a value beyond all of
        # them (a burst) counts from the nearest, so one spike does not even them out
        lo = np.fmin.reduce(cands, axis=2, keepdims=True)
        hi = np.fmax.reduce(cands, axis=2, keepdims=True)
        err = np.abs(np.clip(x[:, None, None, :], lo, hi) - cands) ** self.rates.error_power
        mae = self._average(err, "mae_num", "mae_den")
        # blend this chunk's forecasts with the weights as they stood at each origin
        own = candidates(kept[:, None], hist_prof[i + hz], hz, self.rates.phi)
        blended = weighted(own, weights(mae, self.rates.weight_power))
        hist_blend = np.concatenate([self.ring_blend, blended])
        e = x[:, None, :] - hist_blend[r + i - hz, np.arange(len(hz))]
        self._track(e, self._average(np.abs(e), "blend_num", "blend_den",
                                     self.rates.quantile_decay))
        self.ring_state = hist_st[-r:]
        self.ring_blend = hist_blend[-r:]
        self.t = t0 + n

    def _average(self, err: FloatArray, num: str, den: str,
                 decay: float | None = None) -> FloatArray:
        """Bias-corrected exponential mean of err over rows; NaN rows add no weight."""
        w = self.rates.error_decay if decay is None else decay
        ok = np.isfinite(err)
        out = []
        for name, u in ((num, np.where(ok, err, 0.0)), (den, ok.astype(np.float64))):
            prev = getattr(self, name)
            y, _ = lfilter([1.0], [1.0, -w], u, axis=0, zi=(w * prev)[None])
            setattr(self, name, y[-1].copy())
            out.append(y)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(out[1] > 0, out[0] / out[1], np.nan)

    def _smooth(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Moves the smoothed states row by row; returns them and the written profile."""
        rt, s, t0 = self.rates, self.season, self.t
        lv, prof, days = self.level, self.profile, self.days
        k = len(days)
        ok = np.isfinite(x)
        xs = np.where(ok, x, 0.0)
        gi = ok.astype(np.float64)
        kept = np.empty((len(x), _KEPT, x.shape[1]))
        written = np.empty_like(x)
        fast, slow, holt, trend, dev, scale = lv  # views: updated in place
        for i in range(len(x)):
            g, xi = gi[i], xs[i]
            if self.seen.min() == 0 and (new := ok[i] & (self.seen == 0)).any():
                for row, v in ((FAST, xi), (SLOW, xi), (HOLT, xi), (TREND, 0.0), (DEV, 0.0),
                               (SCALE, 0.0)):
                    lv[row] = np.where(new, v, lv[row])
                self.seen = np.maximum(self.seen, new)
            inn = np.abs(xi - fast)
            cap = np.where(scale > 0, 6.0 * scale, inn)
            scale += rt.scale * g * (np.minimum(inn, cap) - scale)
            band = rt.clip * scale
            xc = np.clip(xi, fast - band, fast + band)
            fast += rt.fast * g * (xi - fast)
            slow += rt.slow * g * (xc - slow)
            pred = holt + trend
            new_holt = pred + rt.slow * g * (xc - pred)
            trend += rt.trend * g * (new_holt - holt - trend)
            holt[:] = new_holt
            phase = (t0 + i) % s
            p = prof[phase]
            have = np.isfinite(p)
            gd = rt.deviation * g * have
            dev += gd * (xc - np.where(have, p, 0.0) - dev)
            # the profile is the median of the last K days at this time of day: a burst
            # on one day does not enter it, a job that runs every day does
            slot = ((t0 + i) // s) % k
            col = days[:, phase]
            held = col[(slot - 1) % k].copy()
            col[slot] = np.where(ok[i], xi, held)
            if (fresh := ok[i] & ~np.isfinite(held)).any():
                col[:] = np.where(fresh, xi, col)
            srt = np.sort(col, axis=0)
            p = 0.5 * (srt[(k - 1) // 2] + srt[k // 2])
            prof[phase] = p
            written[i] = p
            kept[i] = lv[:_KEPT]
        return kept, written

    def _track(self, e: FloatArray, mae: FloatArray) -> None:
        """Conformal quantile tracking: each bound steps towards its share of errors.

        The step is a share of the recent absolute error plus the bound's distance from the
        median, so a bound far too wide (after a burst) comes back geometrically."""
        q, n = self.quantile, self.errors
        mid = int(np.argmin(np.abs(self.taus - 0.5)))
        tail = (1.0 - self.taus)[None, :, None]
        start = normal_ppf(self.taus)[None, :, None] * 1.25
        ok = np.isfinite(e)
        eta = self.quantile_rate * np.where(ok, mae, 0.0)[:, :, None, :]
        es = np.where(ok, e, 0.0)[:, :, None, :]
        for i in range(len(e)):
            if (first := ok[i] & (n == 0)).any():
                q[:] = np.where(first[:, None, :], start * np.abs(es[i]), q)
                n += first
                eta_i = eta[i] * ~first[:, None, :]
            else:
                eta_i = eta[i]
            q += (eta_i + self.width_rate * np.abs(q - q[:, mid:mid + 1])) * (
                (es[i] > q) - tail)
        n += ok.sum(axis=0)

    # ------------------------------------------------------------------ forecast

    def path(self, h: int) -> tuple[FloatArray, FloatArray]:
        """Blended forecast (H, D) and error quantiles (H, Q, D) for 1..h steps ahead."""
        steps = np.arange(1, h + 1)
        prof = self.profile[(self.t - 1 + steps) % self.season]
        with np.errstate(invalid="ignore", divide="ignore"):
            mae = np.where(self.mae_den > 0, self.mae_num / self.mae_den, np.nan)
        cands = candidates(self.level[None, :_KEPT], prof, steps, self.rates.phi)
        mean = weighted(cands, interp(steps, self.horizons, weights(mae, self.rates.weight_power)))
        ready = (self.errors > 0)[:, None, :]
        q = interp(steps, self.horizons, np.where(ready, self.quantile, np.nan))
        return mean, np.sort(q, axis=1)

    # ------------------------------------------------------------------ state

    def state(self) -> State:
        out: State = {"t": self.t}
        for k in _ARRAYS:
            out[k] = np.array(getattr(self, k), dtype=np.float64)
        return out

    def restore(self, state: Mapping[str, StateValue]) -> None:
        t = state["t"]
        if isinstance(t, np.ndarray | str):
            raise ValueError("t must be a number")
        self.t = int(t)
        for k in _ARRAYS:
            got = np.asarray(state[k], dtype=np.float64)
            want = getattr(self, k)
            if got.shape != want.shape:
                raise ValueError(f"{k} has shape {got.shape}, expected {want.shape}")
            setattr(self, k, got.copy())


def candidates(st: FloatArray, prof: FloatArray, h: np.ndarray, phi: float) -> FloatArray:
    """The five forecasts (..., C, D) from origin states st (..., 5, D) for the target whose
    profile entry is prof (..., D), h steps ahead (h broadcasts against st's leading axes)."""
    hh = h.astype(np.float64)[..., None]
    dev = st[..., DEV, :]
    parts = np.broadcast_arrays(st[..., FAST, :], st[..., SLOW, :],
                                st[..., HOLT, :] + hh * st[..., TREND, :],
                                prof + phi ** hh * dev, prof)
    return np.stack(parts, axis=-2)


def weights(mae: FloatArray, power: float) -> FloatArray:
    """Inverse power of recent error over the candidate axis (-2); uniform before any."""
    m = np.where(np.isfinite(mae), mae, np.nan)
    base = np.maximum(np.fmin.reduce(m, axis=-2, keepdims=True),
                      1e-12 * np.fmax.reduce(m, axis=-2, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(base > 0, np.maximum(m, base) / base, 1.0)  # 1 for the best
    w = np.where(np.isfinite(m), rel ** -power, 0.0)
    total = w.sum(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(total > 0, w / total, 1.0 / mae.shape[-2])
    return out


def weighted(cands: FloatArray, w: FloatArray) -> FloatArray:
    """Blend over the candidate axis (-2), leaving out candidates without a forecast."""
    have = np.isfinite(cands)
    ws = np.where(have, w, 0.0)
    total = ws.sum(axis=-2)
    num = (np.where(have, cands, 0.0) * ws).sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, num / total, np.nan)


def interp(h: np.ndarray, rungs: np.ndarray, values: FloatArray) -> FloatArray:
    """values (B, ...) given at the rungs, linear in log horizon at h (H,); held past the ends."""
    lh, lr = np.log(h.astype(np.float64)), np.log(rungs.astype(np.float64))
    j = np.clip(np.searchsorted(lr, lh, side="right") - 1, 0, len(lr) - 1)
    j1 = np.minimum(j + 1, len(lr) - 1)
    span = np.where(j1 > j, lr[j1] - lr[j], 1.0)
    f = np.clip((lh - lr[j]) / span, 0.0, 1.0).reshape((-1,) + (1,) * (values.ndim - 1))
    lo, hi = values[j], values[j1]
    return np.where(np.isfinite(lo) & np.isfinite(hi), lo + f * (hi - lo),
                    np.where(np.isfinite(lo), lo, hi))
