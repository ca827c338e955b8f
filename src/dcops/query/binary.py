"""Binary operators: arithmetic, comparison and set operators with Prometheus's vector matching."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dcops.query.result import QueryError
from dcops.query.vector import (
    FloatArray,
    Scalar,
    Series,
    Vector,
    describe,
    drop_name,
    merge_same_labels,
    merged_vector,
    stacked,
)
from dcops.telemetry.model import Labels

ARITHMETIC = {"+", "-", "*", "/", "%", "^", "atan2"}
NAME_DROPPING = ARITHMETIC - {"atan2"}
"""Prometheus 2.x keeps the metric name through ``atan2``, as it does comparisons."""
COMPARISON = {"==", "!=", ">", "<", ">=", "<="}
SET = {"and", "or", "unless"}


@dataclass(frozen=True, slots=True)
class Matching:
    """How two vectors' series are paired: ``on``/``ignoring`` labels and ``group_x``."""

    card: str  # "one-to-one", "many-to-one", "one-to-many", "many-to-many"
    on: bool
    labels: tuple[str, ...]
    include: tuple[str, ...]
    return_bool: bool
    label_set: frozenset[str] = field(init=False)
    drop_set: frozenset[str] = field(init=False)
    """What ``ignoring`` leaves out of a match signature, the metric name included."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "label_set", frozenset(self.labels))
        object.__setattr__(self, "drop_set", frozenset((*self.labels, "__name__")))


def apply(op: str, lhs: FloatArray, rhs: FloatArray) -> FloatArray:
    """`op` elementwise; comparisons give 1.0 where true and 0.0 where false."""
    with np.errstate(all="ignore"):
        if op == "+":
            return lhs + rhs
        if op == "-":
            return lhs - rhs
        if op == "*":
            return lhs * rhs
        if op == "/":
            return lhs / rhs
        if op == "%":
            return np.fmod(lhs, rhs)
        if op == "^":
            return np.power(lhs, rhs)
        if op == "atan2":
            return np.arctan2(lhs, rhs)
        table = {"==": np.equal, "!=": np.not_equal, ">": np.greater, "<": np.less,
                 ">=": np.greater_equal, "<=": np.less_equal}
        return np.asarray(table[op](lhs, rhs), dtype=np.float64)


def scalar_scalar(op: str, lhs: Scalar, rhs: Scalar) -> Scalar:
    return Scalar(apply(op, lhs.values, rhs.values))


def vector_scalar(op: str, vec: Vector, scalar: Scalar, *, scalar_left: bool,
                  return_bool: bool) -> Vector:
    values, present = stacked(vec, len(scalar.values))
    lv, rv = (scalar.values[None, :], values) if scalar_left else (values, scalar.values[None, :])
    result = apply(op, lv, rv)
    if op in COMPARISON and not return_bool:
        present = present & (result == 1.0)
        result = values
    labels = vec.labels
    renamed = op in NAME_DROPPING or return_bool
    if renamed:
        labels = [drop_name(lab) for lab in labels]
    return merged_vector(labels, result, present, unique=vec.unique and not renamed)


def signature(labels: Labels, m: Matching) -> Labels:
    if m.on:
        keep = m.label_set
        return tuple(p for p in labels if p[0] in keep)
    if not m.labels:
        return drop_name(labels)
    drop = m.drop_set
    return tuple(p for p in labels if p[0] not in drop)


def _groups(series: list[Series], m: Matching) -> dict[Labels, list[Series]]:
    out: dict[Labels, list[Series]] = {}
    for s in series:
        out.setdefault(signature(s.labels, m), []).append(s)
    return out


def _require_unique(groups: dict[Labels, list[Series]], side: str) -> None:
    """The "one" side may hold a match group only once per step, matched or not."""
    for sig, members in groups.items():
        if len(members) > 1 and (np.stack([s.present for s in members]).sum(axis=0) > 1).any():
            raise QueryError("execution", f"found duplicate series for the match group "
                             f"{describe(sig)} on the {side} hand-side of the operation; "
                             "many-to-many matching not allowed: matching labels must be "
                             "unique on one side")


def _result_labels(many: Labels, one: Labels, op: str, m: Matching) -> Labels:
    drop_metric = op in NAME_DROPPING or m.return_bool
    if not m.include:  # the many side's labels, filtered: no dict, no sort
        if m.card == "one-to-one":
            if m.on:
                keep = m.label_set
                return tuple(p for p in many if p[0] in keep
                             and not (drop_metric and p[0] == "__name__"))
            return signature(many, m) if drop_metric else \
                tuple(p for p in many if p[0] not in m.label_set)
        return drop_name(many) if drop_metric else many
    pairs = dict(many)
    if drop_metric:
        pairs.pop("__name__", None)
    if m.card == "one-to-one":
        if m.on:
            pairs = {k: v for k, v in pairs.items() if k in m.labels}
        else:
            for name in m.labels:
                pairs.pop(name, None)
    one_pairs = dict(one)
    for name in m.include:
        if one_pairs.get(name, ""):
            pairs[name] = one_pairs[name]
        else:
            pairs.pop(name, None)
    return tuple(sorted(pairs.items()))


def vector_vector(op: str, lhs: Vector, rhs: Vector, m: Matching) -> Vector:
    if op in SET:
        return _set_op(op, lhs, rhs, m)
    swap = m.card == "one-to-many"
    many, one = (rhs, lhs) if swap else (lhs, rhs)
    one_groups = _groups(one.series, m)
    _require_unique(one_groups, "left" if swap else "right")
    position = {id(s): j for j, s in enumerate(one.series)}
    pairs: list[tuple[int, int]] = []
    by_sig: dict[Labels, list[int]] = {}  # one-to-one: the pairs of each match group
    for i, ms in enumerate(many.series):
        sig = signature(ms.labels, m)
        for os_ in one_groups.get(sig, ()):
            if m.card == "one-to-one":
                by_sig.setdefault(sig, []).append(len(pairs))
            pairs.append((i, position[id(os_)]))
    if not pairs:
        return Vector([])
    steps = len(many.series[0].values)
    mv, mp = stacked(many, steps)
    ov, op_ = stacked(one, steps)
    mi = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
    oj = np.fromiter((j for _, j in pairs), dtype=np.int64, count=len(pairs))
    present = mp[mi] & op_[oj]
    lv, rv = (ov[oj], mv[mi]) if swap else (mv[mi], ov[oj])
    result = apply(op, lv, rv)
    if op in COMPARISON and not m.return_bool:
        present = present & (result == 1.0)
        result = lv
    for members in by_sig.values():  # one match group may give one result per step
        if len(members) > 1 and (present[members].sum(axis=0) > 1).any():
            raise QueryError("execution", "multiple matches for labels: many-to-one "
                             "matching must be explicit (group_left/group_right)")
    labels = [_result_labels(many.series[i].labels, one.series[j].labels, op, m)
              for i, j in pairs]
    try:
        return merged_vector(labels, result, present)
    except QueryError:
        raise QueryError("execution", "multiple matches for labels: grouping labels must "
                         "ensure unique matches") from None


def _set_op(op: str, lhs: Vector, rhs: Vector, m: Matching) -> Vector:
    def presence(series: list[Series]) -> dict[Labels, np.ndarray]:
        out: dict[Labels, np.ndarray] = {}
        for s in series:
            sig = signature(s.labels, m)
            out[sig] = out[sig] | s.present if sig in out else s.present
        return out

    right = presence(rhs.series)
    if op in ("and", "unless"):
        result = []
        for s in lhs.series:
            hit = right.get(signature(s.labels, m))
            mask = np.zeros_like(s.present) if hit is None else hit
            keep = s.present & (mask if op == "and" else ~mask)
            result.append(Series(s.labels, s.values, keep))
        return Vector([s for s in result if s.present.any()])
    left = presence(lhs.series)
    extra = []
    for s in rhs.series:
        hit = left.get(signature(s.labels, m))
        keep = s.present if hit is None else s.present & ~hit
        extra.append(Series(s.labels, s.values, keep))
    return Vector(merge_same_labels([*lhs.series, *extra]))
