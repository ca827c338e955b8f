"""Values inside the evaluator: every expression is evaluated at all steps of the grid at once.

An instant vector is a list of series, each with one value per step and a mask of the steps
at which it has a sample; a scalar is one value per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dcops.query.result import QueryError
from dcops.telemetry.model import Labels, SeriesBlock, format_labels

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

STALE_NAN_BITS = 0x7FF0000000000002
"""Prometheus's staleness marker: a NaN with this exact bit pattern ends a series."""


def is_stale(values: FloatArray) -> BoolArray:
    return np.asarray(values.view(np.uint64) == STALE_NAN_BITS, dtype=np.bool_)


@dataclass(slots=True)
class Series:
    """One series of an instant vector over the step grid."""

    labels: Labels
    values: FloatArray
    present: BoolArray


class Vector:
    """An instant vector evaluated at every step: a list of series, or (series, steps)
    matrices whose rows are the series, made into `Series` only when asked for (most
    operators work on the matrices, and a selector's hundreds of rows need no objects)."""

    __slots__ = ("_labels", "_present", "_series", "_values", "unique")

    def __init__(self, series: list[Series]) -> None:
        self._series: list[Series] | None = series
        self._labels: list[Labels] | None = None
        self._values: FloatArray | None = None
        self._present: BoolArray | None = None
        self.unique = False
        """Whether its series' labels are known to differ (a selector's, a grouping's)."""

    @classmethod
    def of_rows(cls, labels: list[Labels], values: FloatArray, present: BoolArray, *,
                unique: bool = False) -> Vector:
        """The vector whose series are the rows of `values` and `present`."""
        vector = cls.__new__(cls)
        vector._series = None
        vector._labels, vector._values, vector._present = labels, values, present
        vector.unique = unique
        return vector

    @property
    def series(self) -> list[Series]:
        if self._series is None:
            assert self._labels is not None and self._values is not None \
                and self._present is not None
            self._series = rows(self._labels, self._values, self._present)
        return self._series

    @property
    def labels(self) -> list[Labels]:
        """Each series' labels, in order."""
        if self._labels is not None:
            return self._labels
        return [s.labels for s in self.series]

    def matrices(self) -> tuple[FloatArray, BoolArray] | None:
        """The (series, steps) values and presence, if the vector was made of them."""
        if self._values is None or self._present is None:
            return None
        return self._values, self._present

    def __len__(self) -> int:
        return len(self._labels) if self._labels is not None else len(self.series)


@dataclass(slots=True)
class Scalar:
    """A scalar evaluated at every step."""

    values: FloatArray


@dataclass(slots=True)
class String:
    """A string literal."""

    value: str


Value = Vector | Scalar | String


def rows(labels: list[Labels], values: npt.NDArray[np.float64],
         present: npt.NDArray[np.bool_]) -> list[Series]:
    """Series from (series, steps) matrices, one row each (views, not copies)."""
    return [Series(lab, v, p) for lab, v, p in zip(labels, values, present, strict=True)]


def merged_rows(labels: list[Labels], values: npt.NDArray[np.float64],
                present: npt.NDArray[np.bool_]) -> list[Series]:
    """`merge_same_labels` of matrix rows; when labels are unique, no per-row numpy work."""
    if len(set(labels)) < len(labels):
        return merge_same_labels(rows(labels, values, present))
    keep = np.flatnonzero(present.any(axis=1)).tolist()
    return [Series(labels[i], values[i], present[i]) for i in keep]


def merged_vector(labels: list[Labels], values: npt.NDArray[np.float64],
                  present: npt.NDArray[np.bool_], *, unique: bool = False) -> Vector:
    """`merged_rows` as a vector, kept as matrices where labels are unique (known to be,
    with `unique`, or checked)."""
    if not unique and len(set(labels)) < len(labels):
        return Vector(merge_same_labels(rows(labels, values, present)))
    keep = present.any(axis=1)
    if keep.all():
        return Vector.of_rows(labels, values, present, unique=True)
    chosen = np.flatnonzero(keep)
    return Vector.of_rows([labels[i] for i in chosen.tolist()], values[chosen], present[chosen],
                          unique=True)


def stacked(vector: Vector, steps: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """A vector's values and presence as (series, steps) matrices."""
    found = vector.matrices()
    if found is not None:
        return found
    if not vector.series:
        return np.zeros((0, steps)), np.zeros((0, steps), dtype=np.bool_)
    return (np.stack([s.values for s in vector.series]),
            np.stack([s.present for s in vector.series]))


def without_stale(block: SeriesBlock) -> SeriesBlock:
    """`block` less its staleness markers (range functions never see them)."""
    stale = is_stale(block.values)
    if not stale.any():
        return block
    kept = np.zeros(len(stale) + 1, dtype=np.int64)  # non-stale samples before each index
    np.cumsum(~stale, out=kept[1:])
    return SeriesBlock(block.labels, kept[block.offsets], block.ts_ms[~stale],
                       block.values[~stale])


def drop_name(labels: Labels) -> Labels:
    for i, (name, _) in enumerate(labels):  # sorted by name: stop once past "__name__"
        if name == "__name__":
            return labels[:i] + labels[i + 1:]
        if name > "__name__":
            break
    return labels


def merge_same_labels(series: list[Series]) -> list[Series]:
    """Join series whose labels became equal; Prometheus refuses if they overlap in a step."""
    by_labels: dict[Labels, Series] = {}
    for s in series:
        if not s.present.any():
            continue
        seen = by_labels.get(s.labels)
        if seen is None:
            by_labels[s.labels] = Series(s.labels, s.values.copy(), s.present.copy())
            continue
        if (seen.present & s.present).any():
            raise QueryError("execution", "vector cannot contain metrics with the same labelset")
        seen.values = np.where(s.present, s.values, seen.values)
        seen.present = seen.present | s.present
    return list(by_labels.values())


def describe(labels: Labels) -> str:
    return format_labels(labels) if any(k == "__name__" for k, _ in labels) else \
        "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"
