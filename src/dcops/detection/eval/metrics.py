"""Anomaly-detection metrics of a score series against 0/1 labels, as TSB-AD reports them.

Every function takes one score and one 0/1 label for each row and returns a float. The definitions
follow TSB-AD's `get_metrics(score, label, slidingWindow=100)` (TheDatumOrg/TSB-AD,
TSB_AD/evaluation), re-implemented from their definitions with whole-array work in place of the
reference's per-threshold Python loops:

* AUC-ROC and AUC-PR: area under the ROC curve (ties averaged) and average precision;
* Standard-F1: best point F1 over every distinct score, F = 2PR / (P + R + 1e-5);
* PA-F1: best point-adjusted F1 over 100 cuts linspace(min, max), `score > cut`;
* Event-based-F1: best of event recall x point precision (F = 2RP / (R + P + 1e-15)), 100 cuts;
* Affiliation-F (see `affiliation`), VUS-PR and VUS-ROC (see `rangeauc`);
* PA-F1-dense: best point-adjusted F1 over the cuts unique(quantile(score, 0, 0.001, ..., 0.999)).

Where labels hold no anomaly every metric is 0.0, and AUC-ROC is 0.0 where they hold no normal
row (the reference fails on both).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from dcops.detection.eval.affiliation import affiliation_f
from dcops.detection.eval.rangeauc import vus
from dcops.detection.eval.ranges import FloatArray, IntArray, as_inputs, label_ranges

__all__ = [
    "affiliation_f", "all_metrics", "auc_pr", "auc_roc", "event_f1", "f1_at_threshold", "pa_f1",
    "pa_f1_dense", "pa_sweep", "standard_f1", "vus_pr", "vus_roc",
]

SWEEP = 100
"""TSB-AD's threshold count for PA-F1, Event-based-F1 and Affiliation-F."""


def _desc_counts(s: FloatArray, y: IntArray) -> tuple[FloatArray, FloatArray]:
    """(true positives, predicted) at every distinct score taken as a `>=` cut, high to low."""
    order = np.argsort(-s, kind="stable")
    ordered = s[order]
    last = np.flatnonzero(np.diff(ordered) != 0)
    ends = np.concatenate([last, [len(s) - 1]])
    tps = np.cumsum(y[order])[ends].astype(np.float64)
    return tps, (ends + 1).astype(np.float64)


def auc_roc(score: ArrayLike, label: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half), as sklearn's roc_auc_score."""
    s, y = as_inputs(score, label)
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return 0.0
    order = np.argsort(s, kind="stable")
    ordered = s[order]
    first = np.concatenate([[True], np.diff(ordered) != 0])
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    sizes = np.diff(np.concatenate([starts, [len(s)]]))
    mean_rank = starts + (sizes + 1) / 2
    ranks = np.empty(len(s))
    ranks[order] = mean_rank[group]
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _pr_curve(score: ArrayLike, label: ArrayLike) -> tuple[FloatArray, FloatArray] | None:
    """(precision, recall) at every distinct score as a `>=` cut, high to low; None when
    nothing is labelled anomalous."""
    s, y = as_inputs(score, label)
    total = y.sum()
    if total == 0:
        return None
    tps, predicted = _desc_counts(s, y)
    return tps / predicted, tps / total


def auc_pr(score: ArrayLike, label: ArrayLike) -> float:
    """Average precision (sklearn's average_precision_score), which TSB-AD reports as AUC-PR."""
    curve = _pr_curve(score, label)
    if curve is None:
        return 0.0
    precision, recall = curve
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def standard_f1(score: ArrayLike, label: ArrayLike) -> float:
    """Best point-wise F1 over every distinct score as a `>=` cut; no point adjustment."""
    curve = _pr_curve(score, label)
    if curve is None:
        return 0.0
    precision, recall = curve
    return float(np.max(2 * precision * recall / (precision + recall + 1e-5)))


def f1_at_threshold(score: ArrayLike, label: ArrayLike, threshold: float) -> float:
    """Plain point F1 of the prediction `score > threshold` (0.0 where nothing is right)."""
    s, y = as_inputs(score, label)
    pred = s > threshold
    tp = float(np.sum(pred & (y == 1)))
    denominator = float(pred.sum() + y.sum())
    return 2 * tp / denominator if denominator else 0.0


def _f1(tp: FloatArray, fp: FloatArray, fn: FloatArray) -> FloatArray:
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, 0.0)


def pa_sweep(score: ArrayLike, label: ArrayLike,
             cuts: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Point-adjusted (F1, precision, recall) of `score > cut` for each cut.

    A labelled range counts as wholly predicted once any row of it fires. As in TSB-AD's
    `adjust_predicts`, a range that starts at row 0 is filled back to row 1 only, so row 0 keeps
    its own prediction."""
    s, y = as_inputs(score, label)
    c = np.asarray(cuts, dtype=np.float64)
    starts, ends = label_ranges(y)
    normal = np.sort(s[y == 0])
    fp = (len(normal) - np.searchsorted(normal, c, side="right")).astype(np.float64)
    tp = np.zeros(len(c))
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        peak = s[start:end + 1].max()
        credit = np.where(peak > c, end - start + 1, 0).astype(np.float64)
        if start == 0:
            credit -= ((peak > c) & (s[0] <= c)).astype(np.float64)
        tp += credit
    fn = float(y.sum()) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
    return _f1(tp, fp, fn), precision, recall


def _sweep_cuts(s: FloatArray, count: int = SWEEP) -> FloatArray:
    return np.linspace(s.min(), s.max(), count) if len(s) else np.zeros(0)


def pa_f1(score: ArrayLike, label: ArrayLike) -> float:
    """TSB-AD's PA-F1: best point-adjusted F1 over 100 cuts linspace(min, max), `score > cut`."""
    s, y = as_inputs(score, label)
    if not y.any():
        return 0.0
    f1, _, _ = pa_sweep(s, y, _sweep_cuts(s))
    return float(f1.max())


def dense_cuts(score: ArrayLike) -> FloatArray:
    """unique(quantile(score, linspace(0, 1, 1001)[:-1])): the PA-F1-dense threshold grid."""
    s = np.asarray(score, dtype=np.float64)
    return np.unique(np.quantile(s, np.linspace(0, 1, 1001)[:-1]))


def pa_f1_dense_prf(score: ArrayLike, label: ArrayLike) -> tuple[float, float, float]:
    """(F1, precision, recall) of the best point-adjusted F1 over the dense quantile grid."""
    s, y = as_inputs(score, label)
    if not y.any():
        return 0.0, 0.0, 0.0
    f1, precision, recall = pa_sweep(s, y, dense_cuts(s))
    best = int(np.argmax(f1))
    return float(f1[best]), float(precision[best]), float(recall[best])


def pa_f1_dense(score: ArrayLike, label: ArrayLike) -> float:
    """Best point-adjusted F1 over the 1000 quantile cuts (`score > cut`)."""
    return pa_f1_dense_prf(score, label)[0]


def _events(y: IntArray) -> tuple[IntArray, IntArray]:
    """TSB-AD's `_get_events`: ranges, but one reaching the last row ends a row early."""
    starts, ends = label_ranges(y)
    if len(ends) and ends[-1] == len(y) - 1:
        ends = ends.copy()
        ends[-1] -= 1
    return starts, ends


def event_f1(score: ArrayLike, label: ArrayLike) -> float:
    """Composite F1 (Garg et al.): event recall x point precision, best over 100 cuts (TSB-AD)."""
    s, y = as_inputs(score, label)
    if not y.any():
        return 0.0
    cuts = _sweep_cuts(s)
    starts, ends = _events(y)
    found = np.zeros(len(cuts))
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if end >= start:
            found += s[start:end + 1].max() > cuts
    recall = found / len(starts)
    ordered = np.sort(s)
    predicted = len(s) - np.searchsorted(ordered, cuts, side="right")
    positives = np.sort(s[y == 1])
    hits = len(positives) - np.searchsorted(positives, cuts, side="right")
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
    return float(np.max(2 * recall * precision / (recall + precision + 1e-15)))


def vus_pr(score: ArrayLike, label: ArrayLike, sliding_window: int = 100,
           thresholds: int = 250) -> float:
    """VUS-PR (TSB-AD `RangeAUC_volume_opt`, buffers 0..sliding_window, 250 cuts)."""
    s, y = as_inputs(score, label)
    return vus(s, y, sliding_window, thresholds)[1]


def vus_roc(score: ArrayLike, label: ArrayLike, sliding_window: int = 100,
            thresholds: int = 250) -> float:
    """VUS-ROC, the ROC twin of `vus_pr`."""
    s, y = as_inputs(score, label)
    return vus(s, y, sliding_window, thresholds)[0]


def all_metrics(score: ArrayLike, label: ArrayLike, sliding_window: int = 100) -> dict[str, float]:
    """Every metric, keyed as the columns of smd_baselines_dev.csv."""
    s, y = as_inputs(score, label)
    vus_roc_value, vus_pr_value = vus(s, y, sliding_window)
    dense_f1, dense_p, dense_r = pa_f1_dense_prf(s, y)
    return {
        "VUS-PR": vus_pr_value,
        "AUC-PR": auc_pr(s, y),
        "Standard-F1": standard_f1(s, y),
        "Event-based-F1": event_f1(s, y),
        "Affiliation-F": affiliation_f(s, y),
        "PA-F1": pa_f1(s, y),
        "PA-F1-dense": dense_f1,
        "VUS-ROC": vus_roc_value,
        "AUC-ROC": auc_roc(s, y),
        "PA-F1-dense-P": dense_p,
        "PA-F1-dense-R": dense_r,
    }
