"""histogram_quantile over classic histograms (``*_bucket`` series with an ``le`` label)."""

from __future__ import annotations

import math

import numpy as np

from dcops.query.vector import BoolArray, FloatArray, Series, Vector, drop_name
from dcops.telemetry.model import Labels


def _bound(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def bucket_quantile(q: FloatArray, bounds: FloatArray, counts: FloatArray) -> FloatArray:
    """Prometheus's bucketQuantile for every step: `counts` is buckets x steps, sorted by bound.

    Buckets are made monotonic (a running maximum), then the quantile is interpolated
    linearly inside the bucket where the rank falls.
    """
    steps = counts.shape[1]
    if not len(bounds) or not math.isinf(bounds[-1]) or bounds[-1] < 0 or len(bounds) < 2:
        return _bounded(q, np.full(steps, np.nan))
    counts = np.maximum.accumulate(counts, axis=0)
    observations = counts[-1]
    rank = q * observations
    reached = counts[:-1] >= rank[None, :]
    b = np.where(reached.any(axis=0), reached.argmax(axis=0), len(bounds) - 1)
    cols = np.arange(steps)
    prev = np.maximum(b - 1, 0)
    start = np.where(b > 0, bounds[prev], 0.0)
    end = bounds[np.minimum(b, len(bounds) - 1)]
    below = np.where(b > 0, counts[prev, cols], 0.0)
    in_bucket = counts[np.minimum(b, len(bounds) - 1), cols] - below
    with np.errstate(all="ignore"):
        result = start + (end - start) * ((rank - below) / in_bucket)
    result = np.where(b == len(bounds) - 1, bounds[-2], result)
    result = np.where((b == 0) & (bounds[0] <= 0), bounds[0], result)
    return _bounded(q, np.where(observations == 0, np.nan, result))


def _bounded(q: FloatArray, result: FloatArray) -> FloatArray:
    """Quantiles outside [0, 1] are -Inf/+Inf whatever the buckets hold; NaN stays NaN."""
    result = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, result))
    return np.asarray(np.where(np.isnan(q), np.nan, result), dtype=np.float64)


def histogram_quantile(q: FloatArray, vector: Vector, steps: int) -> Vector:
    """One series per histogram (labels without ``le``): the q-quantile at every step.

    Steps at which some of a histogram's buckets are missing are computed from the buckets
    that are there, one step at a time.
    """
    groups: dict[Labels, list[tuple[float, Series]]] = {}
    for s in vector.series:
        pairs = dict(s.labels)
        bound = _bound(pairs.get("le", ""))
        if bound is None:
            continue
        key = tuple(p for p in drop_name(s.labels) if p[0] != "le")
        groups.setdefault(key, []).append((bound, s))
    out = []
    for key, members in sorted(groups.items()):
        members.sort(key=lambda m: m[0])
        bounds = np.array([b for b, _ in members])
        values = np.stack([m.values for _, m in members])
        present = np.stack([m.present for _, m in members])
        result = np.full(steps, np.nan)
        full = present.all(axis=0)
        result[full] = _coalesced(q[full], bounds, values[:, full], present[:, full])
        for step in np.flatnonzero(~full & present.any(axis=0)).tolist():
            rows = present[:, step]
            result[step] = _coalesced(q[step:step + 1], bounds[rows], values[rows, step:step + 1],
                                      present[rows, step:step + 1])[0]
        out.append(Series(key, result, np.asarray(present.any(axis=0), dtype=np.bool_)))
    return Vector(out)


def _coalesced(q: FloatArray, bounds: FloatArray, values: FloatArray,
               present: BoolArray) -> FloatArray:
    """Sum buckets that share a bound (``le="1"`` and ``le="1.0"``), then take the quantile."""
    unique, inverse = np.unique(bounds, return_inverse=True)
    summed = np.zeros((len(unique), values.shape[1]))
    np.add.at(summed, inverse, np.where(present, values, 0.0))
    return bucket_quantile(q, unique, summed)
