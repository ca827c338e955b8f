"""A plain streaming z-score: the simplest honest univariate detector.

Each value is compared with an exponentially weighted mean and standard deviation of the
values before it; the distance in standard deviations becomes a score in [0, 1]. Values
far out move the mean and spread only as far as `clip_sigma` allows, so one wild sample
does not teach the detector that wild is normal. It is here so the detection service can
run end to end before the learned detectors (``univariate``, ``multivariate``) are plugged
in, and as a baseline they must beat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import numpy as np

from dcops.core.errors import Invalid
from dcops.detection.model import Explanation, FloatArray, State, StateValue
from dcops.detection.saved import as_float as _num


class ZScoreDetector:
    """Exponentially weighted z-score of one series; scores 0 until `warmup` samples."""

    name = "zscore"

    def __init__(self, *, alpha: float = 0.05, warmup: int = 10, half_sigma: float = 4.0,
                 clip_sigma: float = 6.0, metric: str = "value") -> None:
        if not 0.0 < alpha <= 1.0:
            raise Invalid(f"alpha must be in (0, 1], not {alpha}", where="zscore.alpha")
        if warmup < 2 or half_sigma <= 0 or clip_sigma <= 0:
            raise Invalid("warmup must be >= 2, half_sigma and clip_sigma > 0", where="zscore")
        self.alpha, self.warmup = float(alpha), int(warmup)
        self.half_sigma, self.clip_sigma = float(half_sigma), float(clip_sigma)
        self.metric = metric
        self.mean = 0.0
        self.var = 0.0
        self.count = 0
        self.last_score = 0.0

    def score(self, values: FloatArray) -> FloatArray:
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 1:
            raise Invalid(f"zscore scores one series: shape (T,), not {x.shape}")
        out = np.zeros(len(x))
        for t, value in enumerate(x.tolist()):
            if not np.isfinite(value):
                continue
            out[t] = self._one(value)
        return out

    def _one(self, value: float) -> float:
        if self.count == 0:
            self.mean, self.count = value, 1
            return 0.0
        spread = max(np.sqrt(self.var), 1e-3 * abs(self.mean), 1e-9)
        z = (value - self.mean) / spread
        score = z * z / (z * z + self.half_sigma**2) if self.count >= self.warmup else 0.0
        step = float(np.clip(value - self.mean, -self.clip_sigma * spread,
                             self.clip_sigma * spread)) if self.count >= self.warmup \
            else value - self.mean
        a = max(self.alpha, 1.0 / (self.count + 1))
        self.mean += a * step
        self.var = (1 - a) * (self.var + a * step * step)
        self.count += 1
        self.last_score = score
        return score

    def explain(self) -> Explanation:
        if self.last_score <= 0.0:
            return Explanation()
        return Explanation(((self.metric, 1.0),))

    def state(self) -> State:
        return {"alpha": self.alpha, "warmup": self.warmup, "half_sigma": self.half_sigma,
                "clip_sigma": self.clip_sigma, "metric": self.metric, "mean": self.mean,
                "var": self.var, "count": self.count, "last_score": self.last_score}

    @classmethod
    def restore(cls, state: Mapping[str, StateValue]) -> Self:
        try:
            made = cls(alpha=_num(state["alpha"]), warmup=int(_num(state["warmup"])),
                       half_sigma=_num(state["half_sigma"]),
                       clip_sigma=_num(state["clip_sigma"]), metric=str(state["metric"]))
            made.mean, made.var = _num(state["mean"]), _num(state["var"])
            made.count = int(_num(state["count"]))
            made.last_score = _num(state["last_score"])
        except (KeyError, TypeError, ValueError) as exc:
            raise Invalid(f"zscore state does not fit: {exc}") from None
        return made
