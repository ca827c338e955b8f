"""The multivariate detector: all metrics of one machine scored together, row by row.

A node exports dozens of metrics at once (CPU, memory, disk, network, ...). This detector learns
what a normal row looks like from a stretch of history taken as normal (`fit`), then scores each
new row causally (`score`), continuing its state across calls.

The raw score of a row is the weighted mean of three parts, each divided by its 99.9 % quantile
over the training rows so that 1 is the train tail:

* level: the mean of the `top_k` largest per-metric distances |x_d - level_d| / spread_d
  (`top_k` 1: the largest alone). A few metrics moving at once count for more than one noisy
  metric; one metric far from its level still scores, at about 1 / `top_k` of its distance.
  Each distance is first damped by the metric's weight (at most 1): train std_d / the
  `damping_quantile` quantile of its train distance, relative to the median metric's, so a
  metric with rare big spikes in normal history cannot raise false alarms on its own;
* Mahalanobis: the distance of the whole row from the levels under the training covariance
  (Ledoit-Wolf shrunk, plus a small ridge), each metric's deviation first shrunk by its train
  scale / current spread. It catches metrics that normally move together but now disagree,
  even when each one looks ordinary on its own (weight `mahalanobis_weight`);
* change: the largest per-metric distance from a fast moving average of that metric (half-life
  `change_halflife_rows`). It catches a sudden step or spike (weight `change_weight`).

`spread_d` starts at max(train std_d, `scale_floor`). The floor is in the metric's own units,
so a metric that hardly moved in training does not alarm over a tiny change. The raw score is
smoothed causally: the larger of its mean over the last `smooth_rows` rows and 0.7 times its
mean over the last 5 rows, so a short burst is not averaged away, but at most `tail_factor`
times its mean over the last `tail_rows` rows, so the alarm ends soon after the raw score falls
back instead of lingering for the whole window. In these means each raw score counts for at
most `smooth_clip` (1: the train tail), so one wild row cannot hold the smoothed score up for
the whole window after it. The score is the largest of five terms:

* that smoothed score;
* the least raw score of the last `sustain_rows` rows: an anomaly that lasts counts in full,
  unclipped, and stops counting a few rows after it ends;
* `spike_weight` times the row's own raw score: a single wild row scores at once;
* the baseline term: `baseline_weight` times the mean over the last `smooth_rows` rows of the
  `baseline_rank`-th largest damped distance of a metric from the training level, divided by
  its train tail. That level moves only slowly (half-life `baseline_halflife_rows`, two weeks
  of minute rows), and the distance is in train scales, not in the adaptive spreads. So an
  anomaly of two or more metrics that lasts for hours keeps scoring after the adaptive parts
  have learnt it as the new normal, while one metric that moves for good (a disk filling, a
  restart to a new level) does not hold it up. A change that lasts for weeks fades from it too.
* the local term: `local_weight` times the largest per-metric distance from that metric's
  own recent past, divided by its train tail. Each metric keeps a fast level and variance
  of its own (half-life `local_halflife_rows`); its distance is |x_d - local level_d| / its
  local deviation (at least `local_floor`, in the metric's units), over that metric's
  train tail of the same distance (at least 1). A metric that has sat still for hours and
  jumps scores at once, even where training saw jumps as large from a noisier level, so
  the level and change parts, measured in training spreads, hardly move. Each step of the
  local level is bounded by ten local deviations, so one wild value does not blow the
  local variance up.

The score is then mapped to [0, 1) as s / (s + 1), so 0.5 is the train tail.

Settling. Each metric also keeps its mean change from one row to the next, in train scales
(half-life `settle_halflife_rows`). Where that falls below `settle_flatness` the metric has
come to rest, and the level the level part measures it from catches up with it at the same
half-life, instead of at the gated drift. The Mahalanobis part takes the smaller of the
row's distance from the drifting levels and from these settled ones. So metrics that drop
after a restart and sit still at their new values stop scoring within a few rows, where the
gated drift, held back by the alarm itself, would keep the alarm up for a hundred rows; a
row whose metrics disagree still scores from both levels, and metrics that go on moving as
they did are never taken as settled (their levels are the drifting ones, bit for bit). A
metric that hardly moved in training counts as at rest whenever it sits still: a step of
it still scores in the change part and the local term, and its level part fades within a
few rows of its new value.

Drift. Each metric's level follows the recent rows (half-life `drift_halflife_rows`), and its
spread grows towards the recent typical distance (half-life `spread_halflife_rows`, never below
the train value). A level or a noise level that changes for good therefore stops alarming. The
level's drift slows while the smoothed raw score is high: its rate is divided by 1 + (smoothed
raw / `drift_gate`)^4, so the level inside an anomaly is not learnt at full speed (the spread
still adapts, which is what ends the alarm of a shift that lasts). Each
step is bounded by the metric's train-tail distance, so one wild value cannot drag them away.

`threshold` is fixed from training data only: the cut an operator would alarm on without
labels. It is the `threshold_quantile` quantile of the scores the detector gives the training
rows, lowered to their median + `threshold_mads` x their MAD where that is lower. SMD's train
halves are not clean: their score tails are heavy, and the quantile lands far above the bulk
of normal scores on some machines; the MAD rule follows the bulk. On a clean, light-tailed
train the quantile is the lower of the two.

Missing values (NaN) are left out of a row: the row is scored on the metrics it has. A row with
none scores 0 and changes nothing. A metric that is absent (all NaN) in training has no baseline
and is never scored. Values far outside the training range give a large but finite score.

How each setting was chosen on SMD, round by round, with the figures that decided it, is in
`docs/multivariate-tuning.md`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np

from dcops.core.errors import Invalid
from dcops.detection.model import Explanation, FloatArray, Progress, State, StateValue
from dcops.detection.multivariate_kernel import local_rows, step_rows
from dcops.detection.saved import check_kind
from dcops.detection.shrinkage import ledoit_wolf

MIN_TRAIN_ROWS = 20
CALIB_PARTS = 5
"""The train tails kept: level, Mahalanobis, change, baseline and local parts."""
MIN_MAD = 1e-3
"""The smallest spread of the train scores the threshold rule counts on (scores are in [0, 1)),
so training rows that all score alike do not put the threshold at their score."""
UNSETTLED = 1.0
"""Where each metric's mean change a row starts, in train scales: no metric counts as having
come to rest until its own rows show it."""
SHORT_ROWS = 5
SHORT_WEIGHT = 0.7
"""A burst shorter than the smoothing window still counts: the score is at least SHORT_WEIGHT
times the mean raw score of the last SHORT_ROWS rows."""


class MultivariateDetector:
    """A streaming anomaly detector over all metrics of one machine (see the module doc)."""

    name = "multivariate"

    def __init__(self, names: Sequence[str] | None = None, *, scale_floor: float = 0.02,
                 mahalanobis_weight: float = 0.5, tail_quantile: float = 0.999,
                 ridge: float = 1e-4, smooth_rows: int = 20, drift_halflife_rows: float = 180.0,
                 change_weight: float = 1.5, change_halflife_rows: float = 15.0,
                 spread_halflife_rows: float = 2880.0, top_k: int = 3,
                 threshold_quantile: float = 0.99, threshold_mads: float = 8.0,
                 damping_quantile: float = 0.99, drift_gate: float = 0.1,
                 tail_rows: int = 10, tail_factor: float = 1.1,
                 change_top_k: int = 1, smooth_clip: float = 1.0, spike_weight: float = 0.35,
                 baseline_weight: float = 0.3, baseline_rank: int = 2,
                 baseline_halflife_rows: float = 20160.0, sustain_rows: int = 3,
                 local_weight: float = 0.12, local_halflife_rows: float = 400.0,
                 local_floor: float = 0.01, settle_flatness: float = 0.1,
                 settle_halflife_rows: float = 5.0) -> None:
        _check_settings(scale_floor, mahalanobis_weight, tail_quantile, ridge, smooth_rows,
                        drift_halflife_rows, threshold_quantile)
        if threshold_mads < 0:
            raise Invalid("threshold_mads is out of range", where="multivariate",
                          hint="give 0 (use threshold_quantile) or more")
        if tail_rows < 0 or tail_factor <= 0:
            raise Invalid("tail_rows or tail_factor is out of range", where="multivariate",
                          hint="give tail_rows >= 0 (0: no cut) and tail_factor > 0")
        if drift_gate < 0:
            raise Invalid("drift_gate is out of range", where="multivariate",
                          hint="give 0 (no gate) or a positive raw score")
        if not 0 <= damping_quantile < 1:
            raise Invalid("damping_quantile is out of range", where="multivariate",
                          hint="give 0 (no damping) or a quantile below 1")
        if top_k < 1 or change_top_k < 1:
            raise Invalid("top_k or change_top_k is out of range", where="multivariate",
                          hint="give 1 or more")
        if smooth_clip < 0 or spike_weight < 0 or baseline_weight < 0:
            raise Invalid("smooth_clip, spike_weight or baseline_weight is negative",
                          where="multivariate", hint="give 0 (off) or more")
        if baseline_rank < 1 or baseline_halflife_rows < 0 or sustain_rows < 0:
            raise Invalid("baseline_rank, baseline_halflife_rows or sustain_rows is out of range",
                          where="multivariate",
                          hint="give a rank of 1 or more, a half-life of 0 (fixed) or more "
                               "and sustain_rows of 0 (off) or more")
        if local_weight < 0 or local_halflife_rows <= 0 or local_floor <= 0:
            raise Invalid("local_weight, local_halflife_rows or local_floor is out of range",
                          where="multivariate",
                          hint="give a weight of 0 (off) or more, a half-life > 0 and a "
                               "positive floor in the metrics' units")
        if settle_flatness < 0 or settle_halflife_rows <= 0:
            raise Invalid("settle_flatness or settle_halflife_rows is out of range",
                          where="multivariate",
                          hint="give a flatness of 0 (off) or more train scales a row and a "
                               "half-life > 0")
        if change_weight < 0 or change_halflife_rows <= 0 or spread_halflife_rows < 0:
            raise Invalid("change_weight or change_halflife_rows is out of range",
                          where="multivariate", hint="give a weight >= 0 and a half-life > 0")
        self.names: tuple[str, ...] | None = tuple(names) if names is not None else None
        self.scale_floor = float(scale_floor)
        self.mahalanobis_weight = float(mahalanobis_weight)
        self.tail_quantile = float(tail_quantile)
        self.ridge = float(ridge)
        self.smooth_rows = int(smooth_rows)
        self.drift_halflife_rows = float(drift_halflife_rows)
        self.change_weight = float(change_weight)
        self.change_halflife_rows = float(change_halflife_rows)
        self.spread_halflife_rows = float(spread_halflife_rows)
        self.top_k = int(top_k)
        self.change_top_k = int(change_top_k)
        self.threshold_quantile = float(threshold_quantile)
        self.threshold_mads = float(threshold_mads)
        self.damping_quantile = float(damping_quantile)
        self.drift_gate = float(drift_gate)
        self.tail_rows = int(tail_rows)
        self.tail_factor = float(tail_factor)
        self.smooth_clip = float(smooth_clip)
        self.spike_weight = float(spike_weight)
        self.baseline_weight = float(baseline_weight)
        self.baseline_rank = int(baseline_rank)
        self.baseline_halflife_rows = float(baseline_halflife_rows)
        self.sustain_rows = int(sustain_rows)
        self.local_weight = float(local_weight)
        self.local_halflife_rows = float(local_halflife_rows)
        self.local_floor = float(local_floor)
        self.settle_flatness = float(settle_flatness)
        self.settle_halflife_rows = float(settle_halflife_rows)
        self.threshold = 0.5
        self._fitted = False
        self._present = np.zeros(0)
        self._base_mean = np.zeros(0)
        self._mean = np.zeros(0)
        self._recent = np.zeros(0)
        self._spread = np.zeros(0)
        self._scale = np.zeros(0)
        self._weight = np.zeros(0)
        self._precision = np.zeros((0, 0))
        self._calib = np.ones(CALIB_PARTS)
        self._ring = np.zeros(self.smooth_rows)
        self._base = np.zeros(0)
        self._base_ring = np.zeros(self.smooth_rows)
        self._cursor = np.zeros(2, dtype=np.int64)
        self._contrib = np.zeros(0)
        self._local_mean = np.zeros(0)
        self._local_var = np.zeros(0)
        self._local_calib = np.zeros(0)
        self._settled = np.zeros(0)
        self._flat = np.zeros(0)
        self._last = np.zeros(0)

    @property
    def dims(self) -> int:
        return len(self._present)

    def fit(self, train: FloatArray, progress: Progress | None = None) -> Self:
        """Learns the baseline from `train` (T, D), rows taken as normal; resets the stream."""
        x = _as_matrix(train, "train")
        if x.shape[0] < MIN_TRAIN_ROWS:
            raise Invalid(f"train has {x.shape[0]} rows", where="fit",
                          hint=f"give at least {MIN_TRAIN_ROWS} rows of normal history")
        names = self.names or tuple(f"m{i + 1}" for i in range(x.shape[1]))
        if len(names) != x.shape[1]:
            raise Invalid(f"{len(names)} names for {x.shape[1]} metrics", where="fit",
                          hint="give one name for each column of train")
        self.names = names
        finite = np.isfinite(x)
        present = finite.sum(axis=0) >= 2
        filled = np.where(finite, x, np.nan)
        mean = np.zeros(x.shape[1])
        std = np.zeros(x.shape[1])
        mean[present] = np.nanmean(filled[:, present], axis=0)
        std[present] = np.nanstd(filled[:, present], axis=0)
        if progress:
            progress("fit", 1, 3)
        centred = np.where(finite & present, x - mean, 0.0)[:, present]
        cov = ledoit_wolf(centred) + self.ridge * np.eye(int(present.sum()))
        precision = np.zeros((x.shape[1], x.shape[1]))
        precision[np.ix_(present, present)] = np.linalg.inv(cov)
        self._present = present.astype(np.float64)
        self._base_mean = mean
        self._scale = np.maximum(std, self.scale_floor)
        self._weight = self._damping(np.where(finite, np.abs(x - mean), np.nan), present)
        self._precision = precision
        self._calib = self._train_calibration(centred, present)
        self._calib[2] = self._change_calibration(np.where(finite, x, mean), present)
        self._local_calib, self._calib[4] = self._local_calibration(x, present)
        if progress:
            progress("fit", 2, 3)
        self._fitted = True
        self._reset_stream()
        self.threshold = self._train_threshold(self.score(x))
        self._reset_stream()
        if progress:
            progress("fit", 3, 3)
        return self

    def _damping(self, dev: FloatArray, present: FloatArray) -> FloatArray:
        """Each metric's level weight: its train std / its `damping_quantile` train distance,
        relative to the median metric's, capped at 1. A metric whose tail is long for its
        spread (rare big spikes in normal history) is damped; the others keep weight 1."""
        weight = np.ones(dev.shape[1])
        if not self.damping_quantile or not present.any():
            return weight
        tail = np.maximum(np.nanquantile(dev[:, present], self.damping_quantile, axis=0),
                          self.scale_floor)
        ratio = self._scale[present] / tail
        weight[present] = np.minimum(ratio / np.median(ratio), 1.0)
        return weight

    def _train_threshold(self, train_scores: FloatArray) -> float:
        """The `threshold_quantile` quantile of the train scores, lowered to median +
        `threshold_mads` x MAD where that is lower (0: never). The MAD rule follows the bulk of
        the normal scores, so a heavy train tail (anomalies hidden in the training rows) does
        not lift the threshold; on a clean, light-tailed train the quantile is the lower."""
        cut = float(np.quantile(train_scores, self.threshold_quantile))
        if not self.threshold_mads:
            return cut
        median = float(np.median(train_scores))
        mad = max(float(np.median(np.abs(train_scores - median))), MIN_MAD)
        return min(cut, median + self.threshold_mads * mad)

    def _alpha(self, halflife_rows: float) -> float:
        return 1.0 - 0.5 ** (1.0 / halflife_rows) if halflife_rows else 0.0

    def _change_calibration(self, x: FloatArray, present: FloatArray) -> float:
        """The train tail of each row's change part (the mean of its `top_k` largest
        distances from the fast average of the rows before it, that average moving as the
        scoring loop moves it)."""
        if not present.any():
            return 1.0
        a = self._alpha(self.change_halflife_rows)
        cols = x[:, present]
        scale = self._scale[present]
        bound = self._calib[0] * scale
        level = self._base_mean[present].copy()
        dist = np.empty(cols.shape)
        for t, row in enumerate(cols):
            step = row - level
            dist[t] = np.abs(step) / scale
            level += a * np.clip(step, -bound, bound)
        c = _top_mean(dist, self.change_top_k)
        return max(float(np.quantile(c, self.tail_quantile)), 1e-6)

    def _local_calibration(self, x: FloatArray, present: FloatArray) -> tuple[FloatArray, float]:
        """Each metric's train tail of its local distance (at least 1) and the train tail of
        each row's largest local distance over those, the local levels moving from the
        training level as the scoring loop moves them."""
        z = np.zeros(x.shape)
        local_rows(x, present, self._base_mean.copy(), self._scale ** 2, self.local_floor,
                   self._alpha(self.local_halflife_rows), z)
        calib = np.ones(x.shape[1])
        if not present.any():
            return calib, 1.0
        keep = present.astype(bool)
        calib[keep] = np.maximum(np.quantile(z[:, keep], self.tail_quantile, axis=0), 1.0)
        largest = np.max(z[:, keep] / calib[keep], axis=1)
        return calib, max(float(np.quantile(largest, self.tail_quantile)), 1e-6)

    def _train_calibration(self, centred: FloatArray, present: FloatArray) -> FloatArray:
        """The train tails of the level, Mahalanobis and baseline parts (the change part's,
        third, is filled in by `_change_calibration`)."""
        if centred.shape[1] == 0:
            return np.ones(CALIB_PARTS)
        keep = present.astype(bool)
        dist = self._weight[keep] * np.abs(centred) / self._scale[keep]
        z = _top_mean(dist, self.top_k)
        rank = min(self.baseline_rank, dist.shape[1])
        b = np.partition(dist, dist.shape[1] - rank, axis=1)[:, -rank]
        p = self._precision[np.ix_(keep, keep)]
        m = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", centred, p, centred), 0.0))
        tails = np.array([np.quantile(z, self.tail_quantile), np.quantile(m, self.tail_quantile),
                          1.0, np.quantile(b, self.tail_quantile), 1.0])
        out: FloatArray = np.maximum(tails, 1e-6)
        return out

    def _reset_stream(self) -> None:
        self._mean = self._base_mean.copy()
        self._recent = self._base_mean.copy()
        self._spread = self._scale.copy()
        self._ring = np.zeros(self.smooth_rows)
        self._base = self._base_mean.copy()
        self._base_ring = np.zeros(self.smooth_rows)
        self._cursor = np.zeros(2, dtype=np.int64)
        self._contrib = np.zeros(self.dims)
        self._local_mean = self._base_mean.copy()
        self._local_var = self._scale ** 2
        self._settled = self._base_mean.copy()
        self._flat = np.full(self.dims, UNSETTLED)
        self._last = self._base_mean.copy()

    def _params(self) -> FloatArray:
        alpha = self._alpha(self.drift_halflife_rows)
        return np.array([self._calib[0], self._calib[1], self.mahalanobis_weight, alpha,
                         self._calib[2], self.change_weight,
                         self._alpha(self.change_halflife_rows), SHORT_ROWS, SHORT_WEIGHT,
                         self._alpha(self.spread_halflife_rows), self.top_k,
                         self.drift_gate, self.tail_rows, self.tail_factor,
                         self.change_top_k, self.smooth_clip, self.spike_weight,
                         self.baseline_weight, self.baseline_rank, self._calib[3],
                         self._alpha(self.baseline_halflife_rows), self.sustain_rows,
                         self.local_weight, self._calib[4],
                         self._alpha(self.local_halflife_rows), self.local_floor,
                         self.settle_flatness, self._alpha(self.settle_halflife_rows)])

    def score(self, values: FloatArray) -> FloatArray:
        """Scores the next rows (T, D) in time order: T values in [0, 1)."""
        if not self._fitted:
            raise Invalid("the detector has not been fitted", where=self.name,
                          hint="call fit(train) with normal history first")
        x = _as_matrix(values, "values")
        if x.shape[1] != self.dims:
            raise Invalid(f"rows have {x.shape[1]} metrics, the detector {self.dims}",
                          where=self.name, hint="score rows with the columns it was fitted on")
        out = np.zeros(x.shape[0])
        step_rows(x, self._present, self._mean, self._recent, self._spread, self._scale,
                  self._weight, self._precision, self._params(), self._ring, self._cursor, out,
                  self._contrib, self._base, self._base_ring, self._local_mean, self._local_var,
                  self._local_calib, self._settled, self._flat, self._last)
        return out

    def explain(self) -> Explanation:
        """The metrics that drove the last scored row, largest share first."""
        if not self._fitted or self.names is None:
            return Explanation()
        return Explanation.from_weights(list(self.names), self._contrib)

    def state(self) -> State:
        if not self._fitted or self.names is None:
            raise Invalid("the detector has not been fitted", where=self.name,
                          hint="only a fitted detector has state to save")
        return {
            "kind": self.name, "names": "\n".join(self.names),
            "scale_floor": self.scale_floor, "mahalanobis_weight": self.mahalanobis_weight,
            "tail_quantile": self.tail_quantile, "ridge": self.ridge,
            "smooth_rows": self.smooth_rows, "drift_halflife_rows": self.drift_halflife_rows,
            "change_weight": self.change_weight,
            "change_halflife_rows": self.change_halflife_rows,
            "spread_halflife_rows": self.spread_halflife_rows, "top_k": self.top_k,
            "threshold_quantile": self.threshold_quantile,
            "threshold_mads": self.threshold_mads, "threshold": self.threshold,
            "damping_quantile": self.damping_quantile, "weight": self._weight.copy(),
            "drift_gate": self.drift_gate, "tail_rows": self.tail_rows,
            "tail_factor": self.tail_factor, "change_top_k": self.change_top_k,
            "smooth_clip": self.smooth_clip, "spike_weight": self.spike_weight,
            "baseline_weight": self.baseline_weight, "baseline_rank": self.baseline_rank,
            "baseline_halflife_rows": self.baseline_halflife_rows,
            "sustain_rows": self.sustain_rows, "base": self._base.copy(),
            "base_ring": self._base_ring.copy(),
            "present": self._present.copy(), "base_mean": self._base_mean.copy(),
            "mean": self._mean.copy(), "recent": self._recent.copy(),
            "spread": self._spread.copy(), "scale": self._scale.copy(),
            "precision": self._precision.copy(), "calib": self._calib.copy(),
            "ring": self._ring.copy(), "cursor": self._cursor.astype(np.float64),
            "contrib": self._contrib.copy(),
            "local_weight": self.local_weight,
            "local_halflife_rows": self.local_halflife_rows, "local_floor": self.local_floor,
            "local_mean": self._local_mean.copy(), "local_var": self._local_var.copy(),
            "local_calib": self._local_calib.copy(),
            "settle_flatness": self.settle_flatness,
            "settle_halflife_rows": self.settle_halflife_rows,
            "settled": self._settled.copy(), "flat": self._flat.copy(),
            "last": self._last.copy(),
        }

    @classmethod
    def restore(cls, state: Mapping[str, StateValue]) -> Self:
        check_kind(state, cls.name)
        try:
            det = cls(str(state["names"]).split("\n"), scale_floor=_num(state, "scale_floor"),
                      mahalanobis_weight=_num(state, "mahalanobis_weight"),
                      tail_quantile=_num(state, "tail_quantile"), ridge=_num(state, "ridge"),
                      smooth_rows=int(_num(state, "smooth_rows")),
                      drift_halflife_rows=_num(state, "drift_halflife_rows"),
                      change_weight=_num(state, "change_weight"),
                      change_halflife_rows=_num(state, "change_halflife_rows"),
                      spread_halflife_rows=_num(state, "spread_halflife_rows"),
                      top_k=int(_num(state, "top_k")) if "top_k" in state else 1,
                      threshold_quantile=_num(state, "threshold_quantile"),
                      threshold_mads=(_num(state, "threshold_mads")
                                      if "threshold_mads" in state else 0.0),
                      damping_quantile=(_num(state, "damping_quantile")
                                        if "damping_quantile" in state else 0.0),
                      drift_gate=_num(state, "drift_gate") if "drift_gate" in state else 0.0,
                      tail_rows=int(_num(state, "tail_rows")) if "tail_rows" in state else 0,
                      tail_factor=(_num(state, "tail_factor")
                                   if "tail_factor" in state else 1.5),
                      change_top_k=(int(_num(state, "change_top_k"))
                                    if "change_top_k" in state else 1),
                      smooth_clip=_num(state, "smooth_clip"),
                      spike_weight=_num(state, "spike_weight"),
                      baseline_weight=_num(state, "baseline_weight"),
                      baseline_rank=int(_num(state, "baseline_rank")),
                      baseline_halflife_rows=_num(state, "baseline_halflife_rows"),
                      sustain_rows=int(_num(state, "sustain_rows")),
                      local_weight=_num(state, "local_weight"),
                      local_halflife_rows=_num(state, "local_halflife_rows"),
                      local_floor=_num(state, "local_floor"),
                      settle_flatness=_num(state, "settle_flatness"),
                      settle_halflife_rows=_num(state, "settle_halflife_rows"))
            det.threshold = _num(state, "threshold")
            det._present = _arr(state, "present")
            det._base_mean = _arr(state, "base_mean")
            det._mean = _arr(state, "mean")
            det._recent = _arr(state, "recent")
            det._spread = _arr(state, "spread")
            det._scale = _arr(state, "scale")
            det._weight = (_arr(state, "weight") if "weight" in state
                           else np.ones(len(det._scale)))
            det._precision = _arr(state, "precision").reshape(det.dims, det.dims)
            det._calib = _arr(state, "calib")
            det._ring = _arr(state, "ring")
            det._base = _arr(state, "base")
            det._base_ring = _arr(state, "base_ring")
            det._cursor = _arr(state, "cursor").astype(np.int64)
            det._contrib = _arr(state, "contrib")
            det._local_mean = _arr(state, "local_mean")
            det._local_var = _arr(state, "local_var")
            det._local_calib = _arr(state, "local_calib")
            det._settled = _arr(state, "settled")
            det._flat = _arr(state, "flat")
            det._last = _arr(state, "last")
        except KeyError as exc:
            raise Invalid(f"state lacks {exc}", where=cls.name,
                          hint="the state file is from another version; fit again") from exc
        if (len(det._ring) != det.smooth_rows or len(det._mean) != det.dims
                or len(det._weight) != det.dims or len(det._base) != det.dims
                or len(det._base_ring) != det.smooth_rows or len(det._calib) != CALIB_PARTS
                or len(det._local_mean) != det.dims or len(det._local_var) != det.dims
                or len(det._local_calib) != det.dims or len(det._settled) != det.dims
                or len(det._flat) != det.dims or len(det._last) != det.dims):
            raise Invalid("state arrays do not fit together", where=cls.name,
                          hint="the state file is damaged; fit again")
        det._fitted = True
        return det


def _top_mean(z: FloatArray, k: int) -> FloatArray:
    """Each row's mean of its `k` largest values (all of them where the row has fewer)."""
    k = min(k, z.shape[1])
    out: FloatArray = np.mean(np.partition(z, z.shape[1] - k, axis=1)[:, -k:], axis=1)
    return out


def _num(state: Mapping[str, StateValue], key: str) -> float:
    value = state[key]
    if isinstance(value, str):
        raise Invalid(f"state {key} is text", where="multivariate", hint="fit again")
    return float(value)


def _arr(state: Mapping[str, StateValue], key: str) -> FloatArray:
    return np.array(state[key], dtype=np.float64)


def _as_matrix(values: FloatArray, what: str) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise Invalid(f"{what} has shape {x.shape}", where="multivariate",
                      hint="give a (rows, metrics) array")
    return np.ascontiguousarray(x)


def _check_settings(scale_floor: float, mahalanobis_weight: float, tail_quantile: float,
                    ridge: float, smooth_rows: int, drift_halflife_rows: float,
                    threshold_quantile: float) -> None:
    checks = [
        (scale_floor > 0, "scale_floor", "a positive distance in the metrics' units"),
        (mahalanobis_weight >= 0, "mahalanobis_weight", "0 or more"),
        (0.5 <= tail_quantile < 1, "tail_quantile", "between 0.5 and 1"),
        (ridge > 0, "ridge", "a small positive number"),
        (smooth_rows >= 1, "smooth_rows", "1 or more"),
        (drift_halflife_rows >= 0, "drift_halflife_rows", "0 (no drift) or more"),
        (0 < threshold_quantile <= 1, "threshold_quantile", "in (0, 1]"),
    ]
    for ok, key, hint in checks:
        if not ok:
            raise Invalid(f"{key} is out of range", where="multivariate", hint=f"give {hint}")


def measure_throughput(rows: int = 200_000, dims: int = 38) -> float:
    """Rows a second the scoring path sustains on synthetic data (the fit is not timed)."""
    rng = np.random.default_rng(0)
    det = MultivariateDetector().fit(rng.random((5_000, dims)))
    det.score(rng.random((10, dims)))
    values = rng.random((rows, dims))
    start = time.perf_counter()
    det.score(values)
    return rows / (time.perf_counter() - start)
