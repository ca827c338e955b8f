"""Samples and series: the vocabulary of everything dcops measures.

A series is identified by its metric name plus labels, as in Prometheus. Labels are
kept as a tuple of (name, value) pairs sorted by name, with the metric name stored
under ``__name__``, so that equal label sets are equal tuples and hash alike.
Timestamps are integer milliseconds since the Unix epoch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from dcops.core.errors import Invalid

if TYPE_CHECKING:  # numpy only for annotations: the agent process never loads it
    import numpy as np
    import numpy.typing as npt

Labels = tuple[tuple[str, str], ...]
"""Sorted (name, value) pairs, including ``__name__``."""

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def make_labels(name: str, labels: Mapping[str, str] | None = None) -> Labels:
    """Build a validated, canonical label tuple for metric `name`."""
    if not METRIC_NAME_RE.match(name):
        raise Invalid(f"invalid metric name {name!r}", hint="use [a-zA-Z_:][a-zA-Z0-9_:]*")
    pairs = {"__name__": name}
    for key, value in (labels or {}).items():
        if not LABEL_NAME_RE.match(key) or key == "__name__":
            raise Invalid(f"invalid label name {key!r} on metric {name!r}")
        if value != "":
            pairs[key] = str(value)
    return tuple(sorted(pairs.items()))


def labels_from_pairs(pairs: Iterable[tuple[str, str]]) -> Labels:
    """Canonicalize pairs that came off the wire; empty values are dropped as Prometheus does."""
    out = {k: v for k, v in pairs if v != ""}
    name = out.get("__name__")
    if name is None:
        raise Invalid("series has no __name__ label")
    if not METRIC_NAME_RE.match(name):
        raise Invalid(f"invalid metric name {name!r}")
    for key in out:
        if not LABEL_NAME_RE.match(key):
            raise Invalid(f"invalid label name {key!r} on metric {name!r}")
    return tuple(sorted(out.items()))


def metric_name(labels: Labels) -> str:
    for key, value in labels:
        if key == "__name__":
            return value
    return ""


def labels_dict(labels: Labels) -> dict[str, str]:
    return dict(labels)


def format_labels(labels: Labels) -> str:
    """Render as ``name{a="b",...}``, Prometheus's notation."""
    inner = ",".join(f'{k}="{v}"' for k, v in labels if k != "__name__")
    return f"{metric_name(labels)}{{{inner}}}"


@dataclass(slots=True)
class Batch:
    """Samples in columnar form, as they arrive and as the store writes them.

    `labels` holds each distinct series once; sample i belongs to
    ``labels[series_index[i]]`` and has timestamp ``ts_ms[i]`` and value ``values[i]``.
    """

    labels: list[Labels] = field(default_factory=list)
    series_index: list[int] = field(default_factory=list)
    ts_ms: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    _positions: dict[Labels, int] = field(default_factory=dict, repr=False)

    def add(self, labels: Labels, ts_ms: int, value: float) -> None:
        if len(self._positions) != len(self.labels):  # built from columns, e.g. by a decoder
            self._positions = {lab: i for i, lab in enumerate(self.labels)}
        pos = self._positions.get(labels)
        if pos is None:
            pos = len(self.labels)
            self._positions[labels] = pos
            self.labels.append(labels)
        self.series_index.append(pos)
        self.ts_ms.append(ts_ms)
        self.values.append(value)

    def extend(self, other: Batch) -> None:
        for i, ts, v in zip(other.series_index, other.ts_ms, other.values, strict=True):
            self.add(other.labels[i], ts, v)

    def __len__(self) -> int:
        return len(self.ts_ms)

    def samples(self) -> Iterator[tuple[Labels, int, float]]:
        for i, ts, v in zip(self.series_index, self.ts_ms, self.values, strict=True):
            yield self.labels[i], ts, v


class MatchOp(StrEnum):
    """Label matcher operators, as in PromQL."""

    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label condition of a series selector, e.g. ``gpu=~"0|1"``."""

    name: str
    op: MatchOp
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op is MatchOp.RE else not hit


def name_matcher(name: str) -> Matcher:
    return Matcher("__name__", MatchOp.EQ, name)


@dataclass(frozen=True, slots=True)
class SeriesData:
    """One series and its samples in a time range, oldest first."""

    labels: Labels
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SeriesBlock:
    """Many series' samples in three flat columns: what a query engine reads in one go.

    Series i has labels ``labels[i]`` and samples ``offsets[i]:offsets[i + 1]`` of
    `ts_ms` and `values`, oldest first; series are ordered by labels.
    """

    labels: list[Labels]
    offsets: npt.NDArray[np.int64]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.labels)

    def series(self) -> list[SeriesData]:
        """One SeriesData per series (views into the columns, no copies)."""
        bounds = self.offsets.tolist()
        return [SeriesData(lab, self.ts_ms[a:b], self.values[a:b])
                for lab, a, b in zip(self.labels, bounds, bounds[1:], strict=False)]


@dataclass(frozen=True, slots=True)
class LatestSample:
    """The most recent sample of one series."""

    labels: Labels
    ts_ms: int
    value: float
