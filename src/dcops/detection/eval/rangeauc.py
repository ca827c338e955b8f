"""Volume under the surface (VUS-PR, VUS-ROC) as TSB-AD computes it (`RangeAUC_volume_opt`).

Paparrizos et al., VLDB'22. Around each labelled range a buffer of w // 2 rows on either side gets a
soft label sqrt(1 - distance / w) (overlaps add, then cap at 1). For each of `thresholds` cut
points taken from the sorted scores (`score >= cut`), with P labelled rows, N_pred predicted rows
and S the soft-label mass of the predicted buffer rows:

* TP = predicted labelled rows + S, and P_new = (P + P + S) / 2;
* recall = min(TP / P_new, 1), times the share of merged (range + buffer) segments holding any
  prediction: that product is the range TPR;
* FPR = (N_pred - TP) / (rows - P_new) and precision = TP / N_pred.

The ROC curve runs from (0, 0) through the cuts to (1, 1) (trapezoids); the PR area is the sum of
TPR steps times the precision at the step's end, starting from TPR 0. Both areas are averaged over
the buffer sizes w = 0, 1, ..., sliding_window.

The reference loops over every window, cut and segment in Python; here the work is a cumulative
sum over the few rows near labelled ranges, one for each window.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dcops.detection.eval.ranges import label_ranges, merged_ranges

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _cut_points(score: FloatArray, thresholds: int) -> FloatArray:
    """The reference's cuts: sorted-descending scores at linspace(0, n - 1, thresholds) as int."""
    ordered = np.sort(score)[::-1]
    return ordered[np.linspace(0, len(score) - 1, thresholds).astype(np.int64)]


def _soft_labels(n: int, starts: IntArray, ends: IntArray, max_window: int) -> FloatArray:
    """Buffer weight of every row for every window 0..max_window, shape (max_window + 1, n)."""
    soft = np.zeros((max_window + 1, n))
    windows = np.arange(max_window + 1)
    for d in range(1, max_window // 2 + 1):
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = np.where(windows // 2 >= d, np.sqrt(np.clip(1 - d / windows, 0, None)), 0.0)
        right = ends + d
        keep = right < n
        soft[:, right[keep]] += weight[:, None]
        left = starts - d
        keep = left >= 0
        soft[:, left[keep]] += weight[:, None]
    np.minimum(soft, 1.0, out=soft)
    return soft


def vus(score: NDArray[np.floating], label: NDArray[np.integer], sliding_window: int = 100,
        thresholds: int = 250) -> tuple[float, float]:
    """(VUS-ROC, VUS-PR) of `score` against 0/1 `label`, TSB-AD's definition.

    Without any labelled row both are 0.0 (the reference fails there)."""
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(label).astype(np.int64)
    n = len(s)
    starts, ends = label_ranges(y)
    if len(starts) == 0 or n == 0:
        return 0.0, 0.0
    positive = y == 1
    total_p = float(positive.sum())
    cuts = _cut_points(s, thresholds)  # descending

    sorted_all = np.sort(s)
    n_pred = (n - np.searchsorted(sorted_all, cuts, side="left")).astype(np.float64)
    sorted_pos = np.sort(s[positive])
    tp_orig = (len(sorted_pos) - np.searchsorted(sorted_pos, cuts, side="left")).astype(np.float64)

    soft = _soft_labels(n, starts, ends, sliding_window)
    soft[:, positive] = 0.0
    buffer_rows = np.flatnonzero(soft[-1] > 0)
    order = buffer_rows[np.argsort(-s[buffer_rows], kind="stable")]
    buffer_scores = s[order]
    # rows of the buffer at or above each cut: a prefix of the descending order
    taken = len(buffer_scores) - np.searchsorted(np.sort(buffer_scores), cuts, side="left")
    prefix = np.concatenate([np.zeros((sliding_window + 1, 1)),
                             np.cumsum(soft[:, order], axis=1)], axis=1)
    tp_buffer = prefix[:, taken]  # (windows, cuts)

    tp = tp_orig[None, :] + tp_buffer
    p_new = (2 * total_p + tp_buffer) / 2
    recall = np.minimum(tp / p_new, 1.0)
    existence = _existence(s, starts, ends, sliding_window, cuts)
    tpr = recall * existence
    negatives = n - p_new  # 0 only when every row is labelled; then nothing can be a false positive
    fpr = np.divide(n_pred[None, :] - tp, negatives, out=np.zeros_like(tp), where=negatives > 0)
    precision = tp / n_pred[None, :]

    rows = sliding_window + 1
    tpr_curve = np.concatenate([np.zeros((rows, 1)), tpr, np.ones((rows, 1))], axis=1)
    fpr_curve = np.concatenate([np.zeros((rows, 1)), fpr, np.ones((rows, 1))], axis=1)
    roc = np.sum(np.diff(fpr_curve, axis=1) * (tpr_curve[:, 1:] + tpr_curve[:, :-1]) / 2, axis=1)
    ap = np.sum(np.diff(tpr_curve[:, :-1], axis=1) * precision, axis=1)
    return float(roc.mean()), float(ap.mean())


def _existence(score: FloatArray, starts: IntArray, ends: IntArray, max_window: int,
               cuts: FloatArray) -> FloatArray:
    """Share of merged (range + w // 2 buffer) segments with a row at or above each cut."""
    padded = np.append(score, -np.inf)
    out = np.empty((max_window + 1, len(cuts)))
    for w in range(max_window + 1):
        seg_starts, seg_ends = merged_ranges(starts, ends, w // 2, len(score))
        bounds = np.empty(2 * len(seg_starts), dtype=np.int64)
        bounds[0::2] = seg_starts
        bounds[1::2] = seg_ends + 1
        peaks = np.sort(np.maximum.reduceat(padded, bounds)[0::2])
        hit = len(peaks) - np.searchsorted(peaks, cuts, side="left")
        out[w] = hit / len(peaks)
    return out

