"""Aggregation operators (``sum by (rack) (...)``) over instant vectors, all steps at once."""

from __future__ import annotations

import numpy as np

from dcops.query.result import QueryError, format_scalar
from dcops.query.vector import (
    BoolArray,
    FloatArray,
    Series,
    Vector,
    merge_same_labels,
    stacked,
)
from dcops.query.window import quantile_sorted
from dcops.telemetry.model import LABEL_NAME_RE, Labels

SIMPLE = {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "quantile"}
SELECTING = {"topk", "bottomk"}


def group_key(labels: Labels, names: list[str], without: bool) -> Labels:
    if without:
        drop = set(names) | {"__name__"}
        return tuple(p for p in labels if p[0] not in drop)
    keep = set(names)
    return tuple(p for p in labels if p[0] in keep)


def _reduce(op: str, vals: FloatArray, present: BoolArray, param: FloatArray | None) -> FloatArray:
    count = present.sum(axis=0)
    with np.errstate(all="ignore"):
        if op == "sum":
            return np.asarray(np.sum(vals, axis=0, where=present), dtype=np.float64)
        if op == "count":
            return np.asarray(count, dtype=np.float64)
        if op == "group":
            return np.ones(vals.shape[1])
        if op == "avg":
            return np.asarray(np.sum(vals, axis=0, where=present) / count, dtype=np.float64)
        if op == "min":
            return np.asarray(np.fmin.reduce(vals, axis=0, where=present, initial=np.nan))
        if op == "max":
            return np.asarray(np.fmax.reduce(vals, axis=0, where=present, initial=np.nan))
        if op in ("stddev", "stdvar"):
            mean = np.sum(vals, axis=0, where=present) / count
            var = np.sum((vals - mean) ** 2, axis=0, where=present) / count
            return np.asarray(np.sqrt(var) if op == "stddev" else var, dtype=np.float64)
    assert param is not None  # quantile: checked by the caller
    ordered = np.sort(np.where(present, vals, np.inf), axis=0).T
    return quantile_sorted(ordered, count, param)


REDUCEAT = {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"}
"""Aggregations computed for all groups at once with ``ufunc.reduceat``."""


GroupKeys = dict[tuple[tuple[str, ...], bool], dict[Labels, Labels]]
"""Group keys already worked out, by grouping and series labels (see `Engine`)."""
GROUP_KEYS_HELD = 500_000
"""How many remembered group keys a `GroupKeys` holds before it starts again."""


def aggregate(op: str, vector: Vector, names: list[str], without: bool,
              param: FloatArray | None, steps: int, memo: GroupKeys | None = None) -> Vector:
    """Evaluate aggregation `op` grouping by (or without) `names`."""
    if op in SELECTING and param is not None:
        bad = np.isnan(param) | (param >= 2.0**63) | (param < -(2.0**63))
        if bad.any():  # Prometheus checks k at every step, even with nothing to select
            value = format_scalar(float(param[np.argmax(bad)]))
            raise QueryError("execution", f"Scalar value {value} overflows int64")
    if op == "quantile" and param is None:
        raise QueryError("bad_data", "quantile needs a parameter")
    if op in REDUCEAT and len(vector):
        return _reduce_groups(op, vector, names, without, memo)
    groups: dict[Labels, list[Series]] = {}
    for s in vector.series:
        groups.setdefault(group_key(s.labels, names, without), []).append(s)
    out: list[Series] = []
    for key, members in sorted(groups.items()):
        vals = np.stack([m.values for m in members]) if members else np.zeros((0, steps))
        present = np.stack([m.present for m in members])
        if op in SELECTING:
            out.extend(_select(op, members, vals, present, param))
            continue
        values = _reduce(op, vals, present, param)
        out.append(Series(key, values, np.asarray(present.any(axis=0), dtype=np.bool_)))
    return Vector(merge_same_labels(out) if op in SELECTING else out)


def _group_keys(labels: list[Labels], names: list[str], without: bool,
                memo: GroupKeys | None) -> list[Labels]:
    """`group_key` of each series; with `memo`, each label set's key is worked out once
    (rules aggregate the same series every evaluation)."""
    if memo is None:
        return [group_key(lab, names, without) for lab in labels]
    if sum(map(len, memo.values())) > GROUP_KEYS_HELD:
        memo.clear()
    known = memo.setdefault((tuple(names), without), {})
    out = list(map(known.get, labels))
    for i, key in enumerate(out):
        if key is None:
            out[i] = known[labels[i]] = group_key(labels[i], names, without)
    return out  # type: ignore[return-value]  # no None is left


def _reduce_groups(op: str, vector: Vector, names: list[str], without: bool,
                   memo: GroupKeys | None = None) -> Vector:
    """`op` over every group at once: rows sorted by group, then one reduceat per quantity."""
    index: dict[Labels, int] = {}
    labels = vector.labels
    group = np.fromiter((index.setdefault(key, len(index))
                         for key in _group_keys(labels, names, without, memo)),
                        dtype=np.int64, count=len(labels))
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.r_[True, group[order][1:] != group[order][:-1]])
    all_values, all_present = stacked(vector, 0)
    present = all_present[order]
    vals = np.where(present, all_values[order], 0.0)
    count = np.add.reduceat(present, starts, axis=0, dtype=np.float64)
    with np.errstate(all="ignore"):
        if op in ("sum", "avg", "stddev", "stdvar"):
            total = np.add.reduceat(vals, starts, axis=0)
            result = total if op == "sum" else total / count
            if op in ("stddev", "stdvar"):
                per_row = np.repeat(result, np.diff(np.r_[starts, len(labels)]), axis=0)
                square = np.where(present, (vals - per_row) ** 2, 0.0)
                result = np.add.reduceat(square, starts, axis=0) / count
                result = np.sqrt(result) if op == "stddev" else result
        elif op in ("min", "max"):
            fn = np.fmin if op == "min" else np.fmax
            result = fn.reduceat(np.where(present, vals, np.nan), starts, axis=0)
        elif op == "count":
            result = count
        else:  # group
            result = np.ones_like(count)
    keys = list(index)
    ranked = sorted(range(len(keys)), key=keys.__getitem__)
    # reduceat rows follow group numbers (first appearance); answers go out in label order
    return Vector.of_rows([keys[g] for g in ranked], np.asarray(result[ranked], dtype=np.float64),
                          count[ranked] > 0, unique=True)


def _select(op: str, members: list[Series], vals: FloatArray, present: BoolArray,
            param: FloatArray | None) -> list[Series]:
    if param is None:
        raise QueryError("bad_data", f"{op} needs a parameter")
    k = np.trunc(param)
    key = np.where(np.isnan(vals), -np.inf, vals) if op == "topk" else \
        np.where(np.isnan(vals), np.inf, vals)
    key = np.where(present, key if op == "topk" else -key, -np.inf)
    key = np.where(present & np.isnan(vals), -np.finfo(np.float64).max, key)
    order = np.argsort(-key, axis=0, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(len(members))[:, None].repeat(vals.shape[1], 1), 0)
    chosen = present & (rank < k[None, :])
    return [Series(m.labels, m.values, chosen[i]) for i, m in enumerate(members)]


def count_values(label: str, vector: Vector, names: list[str], without: bool,
                 steps: int) -> Vector:
    """count_values: how many series have each value, the value written into `label`."""
    if not LABEL_NAME_RE.match(label):
        raise QueryError("execution", f'invalid label name "{label}"')
    split: list[Series] = []
    for s in vector.series:
        seen = s.values[s.present]
        for value in np.unique(seen[~np.isnan(seen)]).tolist() + \
                ([np.nan] if np.isnan(seen).any() else []):
            hit = np.isnan(s.values) if np.isnan(value) else s.values == value
            pairs = dict(s.labels)
            pairs[label] = format_scalar(float(value))
            split.append(Series(tuple(sorted(pairs.items())), s.values, s.present & hit))
    keep = names if without else [*names, label]
    return aggregate("count", Vector(split), keep, without, None, steps)
