"""PromQL function calls: range functions, elementwise math, time(), vector(), scalar()."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import promql_parser as pp

from dcops.query import histogram, labels, window
from dcops.query.result import QueryError
from dcops.query.vector import (
    FloatArray,
    IntArray,
    Scalar,
    Series,
    Value,
    Vector,
    drop_name,
    merge_same_labels,
    merged_vector,
    stacked,
)

if TYPE_CHECKING:
    from dcops.query.engine import _Evaluation

RATES = {
    "rate": (True, True),
    "increase": (True, False),
    "delta": (False, False),
}

OTHER_RANGE = {"irate", "idelta", "last_over_time", "quantile_over_time", "changes", "resets",
               "deriv", "predict_linear"}

MATRIX_FUNCTIONS = set(window.OVER_TIME) | {"quantile_over_time"}
"""Range functions that gather every window's samples (so windows go in bounded chunks);
the others work from each window's ends and run over all windows at once."""

CALENDAR = {"minute", "hour", "day_of_week", "day_of_month", "day_of_year", "days_in_month",
            "month", "year"}

ELEMENTWISE: dict[str, Callable[[FloatArray], FloatArray]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sgn": np.sign,
    "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
    "deg": np.degrees, "rad": np.radians,
}


def call(ev: _Evaluation, expr: Any) -> Value:
    """Evaluate the function call `expr`."""
    name = str(expr.func.name)
    args = list(expr.args)
    if name in RATES or name in window.OVER_TIME or name in OTHER_RANGE:
        return _range_function(ev, name, args)
    if name in ("absent", "absent_over_time"):
        return _absent(ev, name, args[0])
    if name in ("label_replace", "label_join"):
        return labels.call(ev, name, args)
    if name in CALENDAR:
        return _calendar(ev, name, args)
    with np.errstate(all="ignore"):
        if name in ELEMENTWISE:
            vec = ev.eval_vector(args[0], f"call to function {name}")
            fn = ELEMENTWISE[name]
            return _map(vec, lambda v: fn(v))
        if name == "round":
            vec = ev.eval_vector(args[0], "call to function round")
            to = ev.eval_scalar(args[1], "call to function round").values if len(args) > 1 \
                else np.ones(ev.steps)
            inverse = 1.0 / to
            return _map(vec, lambda v: np.floor(v * inverse + 0.5) / inverse)
        if name in ("clamp", "clamp_min", "clamp_max"):
            return _clamp(ev, name, args)
    if name == "time":
        return Scalar(ev.grid / 1000.0)
    if name == "pi":
        return Scalar(np.full(ev.steps, np.pi))
    if name == "vector":
        s = ev.eval_scalar(args[0], "call to function vector")
        return Vector([Series((), s.values, np.ones(ev.steps, dtype=np.bool_))])
    if name == "scalar":
        vec = ev.eval_vector(args[0], "call to function scalar")
        if not vec.series:
            return Scalar(np.full(ev.steps, np.nan))
        present = np.stack([s.present for s in vec.series])
        values = np.stack([s.values for s in vec.series])
        one = present.sum(axis=0) == 1
        picked = np.sum(values, axis=0, where=present)
        return Scalar(np.where(one, picked, np.nan))
    if name in ("sort", "sort_desc"):
        # Values and labels pass through; only an instant query's answer is ordered by them.
        return ev.eval_vector(args[0], f"call to function {name}")
    if name == "histogram_quantile":
        q = ev.eval_scalar(args[0], "call to function histogram_quantile").values
        vec = ev.eval_vector(args[1], "call to function histogram_quantile")
        return histogram.histogram_quantile(q, vec, ev.steps)
    if name == "timestamp":
        return _timestamp(ev, args[0])
    raise QueryError("bad_data", f"unsupported: function {name}")


def _map(vec: Vector, fn: Callable[[FloatArray], FloatArray]) -> Vector:
    """`fn` over every value at once; the metric name goes, as Prometheus drops it."""
    if not vec.series:
        return Vector([])
    values, present = stacked(vec, len(vec.series[0].values))
    result = np.asarray(fn(values), dtype=np.float64)
    if result.shape != values.shape:  # a function of the step alone, e.g. timestamp()
        result = np.broadcast_to(result, values.shape).copy()
    return merged_vector([drop_name(lab) for lab in vec.labels], result, present)


def _clamp(ev: _Evaluation, name: str, args: list[Any]) -> Vector:
    vec = ev.eval_vector(args[0], f"call to function {name}")
    bounds = [ev.eval_scalar(a, f"call to function {name}").values for a in args[1:]]
    if name == "clamp_min":
        return _map(vec, lambda v: np.maximum(bounds[0], v))
    if name == "clamp_max":
        return _map(vec, lambda v: np.minimum(bounds[0], v))
    low, high = bounds
    valid = ~(high < low)
    out = _map(vec, lambda v: np.maximum(low, np.minimum(high, v)))
    return Vector([Series(s.labels, s.values, s.present & valid) for s in out.series])


def _timestamp(ev: _Evaluation, arg: Any) -> Vector:
    inner = arg
    while isinstance(inner, pp.ParenExpr):
        inner = inner.expr
    if isinstance(inner, pp.VectorSelector):
        times = ev.eval_times(inner)
        lookback = ev.engine.lookback_delta_ms
        vec = ev.vector_selector(inner)
        data = ev.select(inner, int(times.min()) - lookback, int(times.max())).series()
        stamps = {sd.labels: sd.ts_ms for sd in data}
        out = []
        for s in vec.series:
            ts = stamps[s.labels]
            idx = np.clip(np.searchsorted(ts, times, side="right") - 1, 0, None)
            out.append(Series(drop_name(s.labels), ts[idx] / 1000.0, s.present))
        return Vector(merge_same_labels(out))
    vec = ev.eval_vector(arg, "call to function timestamp")
    return _map(vec, lambda v: ev.grid / 1000.0)


def _range_function(ev: _Evaluation, name: str, args: list[Any]) -> Vector:
    matrix = args[1] if name == "quantile_over_time" else args[0]
    while isinstance(matrix, pp.ParenExpr):
        matrix = matrix.expr
    if not isinstance(matrix, pp.MatrixSelector | pp.SubqueryExpr):
        raise QueryError("bad_data", f"expected type range vector in call to function "
                         f"{name}")
    q = ev.eval_scalar(args[0], f"call to function {name}").values \
        if name == "quantile_over_time" else None
    ahead = ev.eval_scalar(args[1], "call to function predict_linear").values \
        if name == "predict_linear" else None
    block, times, range_ms = ev.range_data(matrix)
    # Prometheus regresses around the step time (or the query start under @), not t - offset.
    at = matrix.at if isinstance(matrix, pp.SubqueryExpr) else matrix.vector_selector.at
    if at is not None and name == "predict_linear":
        # Prometheus 2.x answers this with points that move per step; refuse, do not guess.
        raise QueryError("bad_data", "unsupported: predict_linear over a range with @")
    n = len(block)
    if n == 0:
        return Vector([])
    ev.count_samples(len(block.ts_ms) + n * ev.steps)
    whole = window.Windows.of_block(block, times, range_ms)
    q_all = np.tile(q, n) if q is not None else None
    ahead_all = np.tile(ahead, n) if ahead is not None else None
    intercept_all = np.tile(ev.grid, n)
    pieces = []
    first = 0
    for w in whole.split() if name in MATRIX_FUNCTIONS else [whole]:
        sl = slice(first, first + len(w.ends))
        first += len(w.ends)
        pieces.append(_apply(name, w, q_all[sl] if q_all is not None else None,
                             intercept_all[sl],
                             ahead_all[sl] if ahead_all is not None else None))
    values = np.concatenate([p[0] for p in pieces]).reshape(n, ev.steps)
    ok = np.concatenate([p[1] for p in pieces]).reshape(n, ev.steps)
    names = block.labels if name == "last_over_time" else [drop_name(lab) for lab in block.labels]
    return merged_vector(names, np.asarray(values, dtype=np.float64), ok)


def _apply(name: str, w: window.Windows, q: FloatArray | None, intercept: IntArray,
           ahead: FloatArray | None) -> window.WindowResult:
    """One range function over some steps' windows of one series."""
    if name in RATES:
        counter, per_second = RATES[name]
        return window.extrapolated_rate(w, counter=counter, per_second=per_second)
    if name in ("irate", "idelta"):
        return window.instant_rate(w, per_second=name == "irate")
    if q is not None:
        return window.quantile_over_time(q, w)
    if name in ("changes", "resets"):
        return window.changes(w) if name == "changes" else window.resets(w)
    if name in ("deriv", "predict_linear"):
        slope, at_intercept = window.linear_regression(w, intercept)
        values = slope if ahead is None else slope * ahead + at_intercept
        return values, w.count >= 2
    return window.over_time(name, w)


def _absent(ev: _Evaluation, name: str, arg: Any) -> Vector:
    """absent / absent_over_time: 1 at steps where the argument has no series at all."""
    inner = arg
    while isinstance(inner, pp.ParenExpr):
        inner = inner.expr
    selector: Any
    if name == "absent_over_time":
        block, times, range_ms = ev.range_data(inner)
        counts = window.Windows.of_block(block, times, range_ms).count
        seen = np.asarray(counts.reshape(len(block), ev.steps).any(axis=0), dtype=np.bool_)
        selector = inner.vector_selector if isinstance(inner, pp.MatrixSelector) else None
    else:
        vec = ev.eval_vector(arg, "call to function absent")
        seen = np.zeros(ev.steps, dtype=np.bool_)
        for s in vec.series:
            seen |= s.present
        selector = inner if isinstance(inner, pp.VectorSelector) else None
    return Vector([Series(_absent_labels(selector), np.ones(ev.steps), ~seen)])


def _absent_labels(selector: Any) -> tuple[tuple[str, str], ...]:
    """Labels of absent()'s answer: the selector's equality matchers, bar __name__ and clashes."""
    if selector is None:
        return ()
    found: dict[str, str | None] = {}
    for m in selector.matchers.matchers:
        if m.op != pp.MatchOp.Equal or m.name == "__name__":
            continue
        found[m.name] = None if m.name in found else m.value
    return tuple(sorted((k, v) for k, v in found.items() if v is not None))


def _calendar(ev: _Evaluation, name: str, args: list[Any]) -> Value:
    """minute(), hour(), ...: parts of a UTC date, of time() or of each sample's value."""
    if not args:
        seconds = Vector([Series((), ev.grid / 1000.0, np.ones(ev.steps, dtype=np.bool_))])
    else:
        seconds = ev.eval_vector(args[0], f"call to function {name}")
    return _map(seconds, lambda v: _date_part(name, v))


def _date_part(name: str, seconds: FloatArray) -> FloatArray:
    finite = np.isfinite(seconds)
    moment = np.where(finite, np.trunc(seconds), 0).astype(np.int64).astype("datetime64[s]")
    day = moment.astype("datetime64[D]")
    month = moment.astype("datetime64[M]")
    year = moment.astype("datetime64[Y]")
    parts = {
        "minute": (moment.astype(np.int64) // 60) % 60,
        "hour": (moment.astype(np.int64) // 3600) % 24,
        "day_of_week": (day.astype(np.int64) + 4) % 7,
        "day_of_month": (day - month.astype("datetime64[D]")).astype(np.int64) + 1,
        "day_of_year": (day - year.astype("datetime64[D]")).astype(np.int64) + 1,
        "days_in_month": ((month + 1).astype("datetime64[D]")
                          - month.astype("datetime64[D]")).astype(np.int64),
        "month": month.astype(np.int64) % 12 + 1,
        "year": year.astype(np.int64) + 1970,
    }
    return np.where(finite, parts[name].astype(np.float64), np.nan)
