"""The fleet-relative detector: each GPU against its identical peers at the same moment.

A GPU of a model that runs 8 degrees hotter than every other GPU of that model, under the
same workload, is news even when 8 degrees hotter is within its own history. At each
timestamp the detector takes one value per GPU and metric, finds each peer group's median
and median absolute deviation (MAD, scaled to a standard deviation), and gives each GPU a
robust z-score: how many peer spreads it sits from its peers' median. The z-scores are
smoothed causally over time (an exponentially weighted mean per GPU whose step towards a
new value is clipped to `clip_sigma`), so one noisy sample cannot raise an alarm however
wild, but a GPU that stays away from its peers does; the
score in [0, 1] grows with the largest smoothed deviation over the metrics.

Everything is vectorised across the fleet with numpy: one sort per peer group and step.
A group with fewer than `min_group` GPUs reporting gets no score (two GPUs cannot say which
of them is odd), a NaN value scores 0 and leaves its GPU's state alone, and GPUs may appear
(new state, starting at "like its peers") or be forgotten (`forget`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Self

import numpy as np
from numpy.typing import NDArray

from dcops.core.errors import Invalid
from dcops.detection.model import Explanation, FloatArray, State, StateValue
from dcops.detection.saved import as_float as _num

Direction = Literal["both", "high", "low"]
DIRECTIONS: tuple[Direction, ...] = ("both", "high", "low")
IntArray = NDArray[np.int64]
MAD_TO_SIGMA = 1.4826
"""The MAD of a normal distribution times this is its standard deviation."""


@dataclass(frozen=True)
class Deviation:
    """How far one GPU's metric stood from its peers at its last scored sample."""

    metric: str
    sigma: float
    """Smoothed distance from the peers' median, in peer spreads (signed: + is above)."""
    value: float
    peer_median: float
    peers: int
    """GPUs in the group that reported then, this one included."""


class FleetDetector:
    """Robust peer z-scores per GPU and metric, smoothed over time, as scores in [0, 1].

    `score(values, keys, groups)` takes ``(N, D)`` values (N GPUs, D metrics, one moment)
    or ``(T, N, D)`` (T moments in time order); `keys` name the GPUs (stable across calls,
    so state follows a GPU whatever its position) and `groups` their peer groups. It
    returns ``(N,)`` or ``(T, N)`` scores."""

    name = "fleet"

    def __init__(self, metrics: Sequence[str] = ("value",), *, alpha: float = 0.3,
                 clip_sigma: float = 8.0, half_sigma: float = 3.0, min_group: int = 3,
                 direction: Direction = "both", rel_spread: float = 0.01,
                 abs_spread: float = 1e-9) -> None:
        if not metrics:
            raise Invalid("a fleet detector needs at least one metric")
        if not 0.0 < alpha <= 1.0:
            raise Invalid(f"alpha must be in (0, 1], not {alpha}", where="fleet.alpha")
        if clip_sigma <= 0 or half_sigma <= 0:
            raise Invalid("clip_sigma and half_sigma must be positive", where="fleet")
        if min_group < 3:
            raise Invalid(f"min_group must be at least 3, not {min_group}",
                          where="fleet.min_group", hint="two GPUs cannot say which is odd")
        if direction not in DIRECTIONS:
            raise Invalid(f"direction must be one of {', '.join(DIRECTIONS)}, not "
                          f"{direction!r}", where="fleet.direction")
        if rel_spread < 0 or abs_spread <= 0:
            raise Invalid("rel_spread must be >= 0 and abs_spread > 0", where="fleet")
        self.metrics = tuple(metrics)
        self.alpha = float(alpha)
        self.clip_sigma = float(clip_sigma)
        self.half_sigma = float(half_sigma)
        """The smoothed deviation (in sigmas) that scores 0.5."""
        self.min_group = int(min_group)
        self.direction: Direction = direction
        self.rel_spread = float(rel_spread)
        """The peer spread is at least this share of the peers' median (identical GPUs
        reading the same value must not make a 0.1 degree difference infinite)."""
        self.abs_spread = float(abs_spread)
        self._keys: list[str] = []
        self._slot: dict[str, int] = {}
        d = len(self.metrics)
        self._smooth = np.zeros((0, d))
        self._count = np.zeros(0, dtype=np.int64)
        self._last = np.full((0, 4, d), np.nan)
        """Per slot: last value, peer median, peers, raw z (for explanations)."""
        self._last_score = np.zeros(0)
        self._top: str | None = None

    # -- scoring --------------------------------------------------------------------------

    def score(self, values: FloatArray, keys: Sequence[str] | None = None,
              groups: Sequence[str] | None = None) -> FloatArray:
        x = np.asarray(values, dtype=np.float64)
        single = x.ndim == 2
        if single:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != len(self.metrics):
            raise Invalid(f"fleet values must be (N, {len(self.metrics)}) or "
                          f"(T, N, {len(self.metrics)}), not {np.shape(values)}")
        n = x.shape[1]
        names = [str(i) for i in range(n)] if keys is None else list(keys)
        peers = [""] * n if groups is None else list(groups)
        if len(names) != n or len(peers) != n or len(set(names)) != n:
            raise Invalid(f"{n} GPUs need {n} distinct keys and {n} groups")
        x = np.where(np.isfinite(x), x, np.nan)
        z, median, count = self._peer_z(x, peers)
        slots = self._slots(names)
        out = np.zeros(x.shape[:2])
        for t in range(x.shape[0]):
            out[t] = self._step(slots, x[t], z[t], median[t], count[t])
        if n:
            self._top = names[int(np.argmax(out[-1]))] if out[-1].max() > 0 else None
        return out[0] if single else out

    def _peer_z(self, x: FloatArray, groups: list[str]
                ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Robust z of every value against its group at its moment: (T, N, D) each for z,
        the group's median and the group's count of reporting GPUs."""
        z = np.full(x.shape, np.nan)
        median = np.full(x.shape, np.nan)
        count = np.zeros(x.shape)
        _, codes = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        for idx in np.split(order, bounds) if len(order) else []:
            sub = x[:, idx, :]
            n_ok = np.isfinite(sub).sum(axis=1, keepdims=True)
            med = _median(sub, n_ok)
            mad = _median(np.abs(sub - med), n_ok)
            spread = np.maximum(np.maximum(MAD_TO_SIGMA * mad, self.rel_spread * np.abs(med)),
                                self.abs_spread)
            zz = (sub - med) / spread
            zz = np.where(n_ok >= self.min_group, zz, np.nan)
            z[:, idx, :] = zz
            median[:, idx, :] = np.broadcast_to(med, sub.shape)
            count[:, idx, :] = np.broadcast_to(n_ok, sub.shape)
        return z, median, count

    def _step(self, idx: IntArray, x: FloatArray, z: FloatArray, median: FloatArray,
              count: FloatArray) -> FloatArray:
        """One moment: smooth the finite z-scores into their GPUs' state; the scores."""
        ok = np.isfinite(z)
        prev = self._smooth[idx]
        step = np.clip(np.where(ok, z, 0.0) - prev, -self.clip_sigma, self.clip_sigma)
        new = np.where(ok, prev + self.alpha * step, prev)
        self._smooth[idx] = new
        seen = ok.any(axis=1)
        self._count[idx] += seen
        last = np.stack([x, median, count, z], axis=1)
        self._last[idx] = np.where(ok[:, None, :], last, self._last[idx])
        scores = np.where(seen, self._to_score(new), 0.0)
        self._last_score[idx[seen]] = scores[seen]
        return scores

    def _magnitude(self, smooth: FloatArray) -> FloatArray:
        if self.direction == "high":
            return np.maximum(smooth, 0.0)
        if self.direction == "low":
            return np.maximum(-smooth, 0.0)
        return np.abs(smooth)

    def _to_score(self, smooth: FloatArray) -> FloatArray:
        m2 = np.asarray(self._magnitude(smooth).max(axis=-1), dtype=np.float64) ** 2
        return np.asarray(m2 / (m2 + self.half_sigma**2), dtype=np.float64)

    # -- GPUs appearing and vanishing -----------------------------------------------------

    def _slots(self, keys: list[str]) -> IntArray:
        fresh = [k for k in keys if k not in self._slot]
        if fresh:
            d = len(self.metrics)
            start = len(self._keys)
            for i, key in enumerate(fresh):
                self._slot[key] = start + i
            self._keys += fresh
            self._smooth = np.concatenate([self._smooth, np.zeros((len(fresh), d))])
            self._count = np.concatenate([self._count, np.zeros(len(fresh), np.int64)])
            self._last = np.concatenate([self._last, np.full((len(fresh), 4, d), np.nan)])
            self._last_score = np.concatenate([self._last_score, np.zeros(len(fresh))])
        return np.array([self._slot[k] for k in keys], dtype=np.int64)

    def forget(self, keys: Sequence[str]) -> None:
        """Drop the state of GPUs that are gone (a GPU seen again later starts afresh)."""
        gone = {k for k in keys if k in self._slot}
        if not gone:
            return
        keep = np.array([i for i, k in enumerate(self._keys) if k not in gone], dtype=np.int64)
        self._keys = [self._keys[i] for i in keep]
        self._slot = {k: i for i, k in enumerate(self._keys)}
        self._smooth, self._count = self._smooth[keep], self._count[keep]
        self._last, self._last_score = self._last[keep], self._last_score[keep]
        if self._top in gone:
            self._top = None

    @property
    def keys(self) -> list[str]:
        """The GPUs the detector holds state for."""
        return list(self._keys)

    # -- explanations ---------------------------------------------------------------------

    def deviations(self, key: str) -> list[Deviation]:
        """Per metric, how far `key` stood from its peers when last scored (largest first)."""
        slot = self._slot.get(key)
        if slot is None:
            return []
        last = self._last[slot]
        smooth = self._smooth[slot]
        found = [Deviation(self.metrics[d], float(smooth[d]), float(last[0, d]),
                           float(last[1, d]), int(last[2, d]))
                 for d in range(len(self.metrics)) if np.isfinite(last[3, d])]
        return sorted(found, key=lambda dev: -float(self._magnitude(np.array(dev.sigma))))

    def explain_key(self, key: str) -> Explanation:
        """Which metrics drove `key`'s score: shares of the squared smoothed deviations."""
        slot = self._slot.get(key)
        if slot is None:
            return Explanation()
        weights = self._magnitude(self._smooth[slot]) ** 2
        return Explanation.from_weights(list(self.metrics), weights)

    def explain(self) -> Explanation:
        """The explanation of the highest-scoring GPU of the last call."""
        return Explanation() if self._top is None else self.explain_key(self._top)

    def last_score(self, key: str) -> float:
        slot = self._slot.get(key)
        return 0.0 if slot is None else float(self._last_score[slot])

    # -- state ----------------------------------------------------------------------------

    def state(self) -> State:
        return {"metrics": json.dumps(list(self.metrics)), "keys": json.dumps(self._keys),
                "alpha": self.alpha, "clip_sigma": self.clip_sigma,
                "half_sigma": self.half_sigma, "min_group": self.min_group,
                "direction": self.direction, "rel_spread": self.rel_spread,
                "abs_spread": self.abs_spread, "smooth": self._smooth.copy(),
                "count": self._count.astype(np.float64), "last": self._last.copy(),
                "last_score": self._last_score.copy()}

    @classmethod
    def restore(cls, state: Mapping[str, StateValue]) -> Self:
        try:
            metrics = json.loads(str(state["metrics"]))
            keys = json.loads(str(state["keys"]))
            direction = str(state["direction"])
            if direction not in DIRECTIONS:
                raise ValueError(f"direction {direction!r}")
            made = cls(metrics, alpha=_num(state["alpha"]), clip_sigma=_num(state["clip_sigma"]),
                       half_sigma=_num(state["half_sigma"]),
                       min_group=int(_num(state["min_group"])),
                       direction=direction,
                       rel_spread=_num(state["rel_spread"]), abs_spread=_num(state["abs_spread"]))
            d, n = len(metrics), len(keys)
            smooth = np.asarray(state["smooth"], dtype=np.float64).reshape(n, d)
            count = np.asarray(state["count"], dtype=np.float64).reshape(n)
            last = np.asarray(state["last"], dtype=np.float64).reshape(n, 4, d)
            last_score = np.asarray(state["last_score"], dtype=np.float64).reshape(n)
        except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise Invalid(f"fleet detector state does not fit: {exc}",
                          hint="the detector starts afresh") from None
        made._keys = [str(k) for k in keys]
        made._slot = {k: i for i, k in enumerate(made._keys)}
        made._smooth, made._count = smooth, count.astype(np.int64)
        made._last, made._last_score = last, last_score
        return made


def _median(sub: FloatArray, n_ok: FloatArray) -> FloatArray:
    """Median along axis 1 over the finite values (NaN where there are none), by one sort:
    NaNs sort last, so the middle of the first `n_ok` values is the median."""
    ranked = np.sort(sub, axis=1)
    n = np.maximum(n_ok, 1)
    lo = np.take_along_axis(ranked, (n - 1) // 2, axis=1)
    hi = np.take_along_axis(ranked, n // 2, axis=1)
    return np.where(n_ok > 0, (lo + hi) / 2.0, np.nan)
