"""Affiliation precision and recall (Huet, Navarro, Rossi; KDD'22), as TSB-AD reports them.

Row i is the interval [i, i + 1). Each labelled range J owns the affiliation zone E around it,
which reaches halfway to the neighbouring ranges (and to the ends of the series). In a zone:

* precision is the mean, over predicted time in E, of the chance that a random point of E lies
  farther from J than the prediction does: 1 inside J, else 1 - (|J| + min(d, m) + d) / |E| with d
  the distance to J and m the smaller margin between J and the edges of E; zones with no
  prediction are left out of the mean;
* recall is the mean, over J, of 1 - (min(d, m_y) + d) / |E| with d the distance from y to the
  nearest prediction inside E and m_y the distance from y to the nearer edge of E; 0 for a zone
  with no prediction.

Both are averaged over zones; F = 2PR / (P + R + 1e-15). Every zone edge is a multiple of 1/2 and
every bend of the integrands a multiple of 1/4, so a midpoint sum over half rows (precision) and
quarter rows (recall) is exact and the whole threshold sweep is a few array passes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dcops.detection.eval.ranges import FloatArray, IntArray, as_inputs, label_ranges

EPS = 1e-15


def _zone_edges(starts: IntArray, stops: IntArray, n: int) -> FloatArray:
    """Edges of the affiliation zones: 0, midpoints between ranges, n (len(starts) + 1 values)."""
    inner = (stops[:-1] + starts[1:]) / 2
    return np.concatenate([[0.0], inner, [float(n)]])


def _precision_weights(n: int, starts: IntArray, stops: IntArray,
                       edges: FloatArray) -> FloatArray:
    """Integral of the precision survival function over each half row [h/2, h/2 + 1/2)."""
    mid = np.arange(2 * n) / 2 + 0.25
    zone = np.searchsorted(edges[1:-1], mid, side="right")
    js, je = starts[zone], stops[zone]
    es, ee = edges[zone], edges[zone + 1]
    margin = np.minimum(js - es, ee - je)
    dist = np.maximum(js - mid, mid - je)
    inside = dist < 0
    dist = np.maximum(dist, 0.0)
    outside = 1 - ((je - js) + np.minimum(dist, margin) + dist) / (ee - es)
    return 0.5 * np.where(inside, 1.0, outside)


def affiliation_pr_sweep(score: object, label: object,
                         thresholds: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(precision, recall) of `score > t` at each t; precision is NaN where nothing fires."""
    s, y = as_inputs(score, label)
    n = len(s)
    starts, ends = label_ranges(y)
    stops = ends + 1
    cuts = np.asarray(thresholds, dtype=np.float64)
    if len(starts) == 0:
        return np.full(len(cuts), np.nan), np.zeros(len(cuts))
    edges = _zone_edges(starts, stops, n)
    pred = s[None, :] > cuts[:, None]  # (thresholds, n)

    weights = _precision_weights(n, starts, stops, edges)
    zone_first = (2 * edges[:-1]).astype(np.int64)
    halves = np.repeat(pred, 2, axis=1)
    mass = np.add.reduceat(halves * weights[None, :], zone_first, axis=1)
    count = np.add.reduceat(halves, zone_first, axis=1, dtype=np.float64)
    has_pred = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        zone_precision = np.where(has_pred, mass / (0.5 * count), np.nan)
        zones_with_pred = has_pred.sum(axis=1)
        precision = np.where(zones_with_pred > 0,
                             np.nansum(zone_precision, axis=1) / zones_with_pred, np.nan)
    recall = _recall(pred, starts, stops, edges, has_pred).mean(axis=1)
    return precision, recall


def _recall(pred: NDArray[np.bool_], starts: IntArray, stops: IntArray, edges: FloatArray,
            has_pred: NDArray[np.bool_]) -> FloatArray:
    """Recall of every zone (columns) at every threshold (rows)."""
    t, n = pred.shape
    index = np.arange(n)
    prev = np.maximum.accumulate(np.where(pred, index, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(pred, index, n)[:, ::-1], axis=1)[:, ::-1]
    zones = len(starts)
    out = np.zeros((t, zones))
    for z in range(zones):
        js, je, es, ee = starts[z], stops[z], edges[z], edges[z + 1]
        y = js + (np.arange(4 * (je - js)) + 0.5) / 4
        cell = np.floor(y).astype(np.int64)
        hit = pred[:, cell]
        left = prev[:, cell]
        right = nxt[:, cell]
        d_left = np.where((left >= 0) & (left + 1 > es), y[None, :] - (left + 1), np.inf)
        d_right = np.where((right < n) & (right < ee), right - y[None, :], np.inf)
        dist = np.where(hit, 0.0, np.minimum(d_left, d_right))
        margin = np.minimum(y - es, ee - y)[None, :]
        with np.errstate(invalid="ignore"):
            value = 1 - (np.minimum(dist, margin) + dist) / (ee - es)
        value = np.where(np.isfinite(dist), value, 0.0)
        out[:, z] = np.where(has_pred[:, z], value.sum(axis=1) / (4 * (je - js)), 0.0)
    return out


def affiliation_f(score: object, label: object, thresholds: int = 100) -> float:
    """Best affiliation F over `thresholds` cuts linspace(min, max) with `score > cut` (TSB-AD).

    0.0 where it is undefined: no labelled range, or a constant score that predicts nothing."""
    s, y = as_inputs(score, label)
    if len(s) == 0 or not y.any():
        return 0.0
    cuts = np.linspace(s.min(), s.max(), thresholds)
    precision, recall = affiliation_pr_sweep(s, y, cuts)
    f = 2 * precision * recall / (precision + recall + EPS)
    f = f[np.isfinite(f)]
    return float(f.max()) if len(f) else 0.0


def affiliation_pr(pred: object, label: object) -> tuple[float, float]:
    """Affiliation (precision, recall) of a 0/1 prediction; precision is NaN if nothing fires."""
    p = np.asarray(pred, dtype=np.float64)
    precision, recall = affiliation_pr_sweep(p, label, np.array([0.5]))
    return float(precision[0]), float(recall[0])
