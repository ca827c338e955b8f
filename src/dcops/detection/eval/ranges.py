"""Labelled ranges: runs of 1 in a 0/1 label vector, as the range-aware metrics see them."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dcops.core.errors import Invalid

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def label_ranges(label: NDArray[np.integer] | NDArray[np.bool_]) -> tuple[IntArray, IntArray]:
    """(starts, ends) of the runs of nonzero values; both ends inclusive."""
    flag = np.asarray(label) != 0
    edges = np.diff(np.concatenate([[0], flag.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1).astype(np.int64)
    ends = (np.flatnonzero(edges == -1) - 1).astype(np.int64)
    return starts, ends


def merged_ranges(starts: IntArray, ends: IntArray, pad: int, n: int) -> tuple[IntArray, IntArray]:
    """Ranges grown by `pad` rows on each side, merged where they touch or overlap.

    As TSB-AD's `new_sequence`: two grown ranges stay apart only when the first ends strictly
    before the second begins; the first start is clipped at 0 and the last end at n - 1."""
    if len(starts) == 0:
        return starts, ends
    grown_start = starts - pad
    grown_end = ends + pad
    apart = grown_end[:-1] < grown_start[1:]
    first = np.concatenate([[True], apart])
    last = np.concatenate([apart, [True]])
    out_start = grown_start[first].copy()
    out_end = grown_end[last].copy()
    out_start[0] = max(out_start[0], 0)
    out_end[-1] = min(out_end[-1], n - 1)
    return out_start, out_end


def as_inputs(score: object, label: object) -> tuple[FloatArray, IntArray]:
    """Score and label as 1-D float64 / int64 arrays of one length, or Invalid saying why."""
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(label)
    if s.ndim != 1 or y.ndim != 1:
        raise Invalid(f"score and label must be 1-D, not {s.shape} and {y.shape}",
                      hint="pass one score and one 0/1 label for each row")
    if len(s) != len(y):
        raise Invalid(f"{len(s)} scores for {len(y)} labels",
                      hint="score and label must have one value for each row")
    if not np.all(np.isfinite(s)):
        raise Invalid("score holds NaN or infinite values",
                      hint="replace them (for example with the lowest score) before evaluating")
    if y.size and not np.all((y == 0) | (y == 1)):
        raise Invalid("label holds values other than 0 and 1", hint="labels are 0/1 per row")
    return s, y.astype(np.int64)
