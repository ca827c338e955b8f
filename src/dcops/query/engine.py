"""The PromQL engine: parses a query and evaluates it over a MetricsStore at a grid of steps.

Every expression is evaluated for all steps of a range query at once; instant queries are
range queries with one step. Semantics follow Prometheus 2.x (closed range windows,
a sample exactly ``lookback`` old is still seen, staleness markers end a series).
"""

from __future__ import annotations

import logging
import math
import re
from operator import itemgetter
from typing import Any

import numpy as np
import promql_parser as pp

from dcops.query import aggregation, binary, functions, window
from dcops.query.result import QueryError, Result, ResultSeries
from dcops.query.vector import (
    IntArray,
    Scalar,
    Series,
    String,
    Value,
    Vector,
    drop_name,
    is_stale,
    merge_same_labels,
    without_stale,
)
from dcops.telemetry.model import Labels, Matcher, MatchOp, SeriesBlock, SeriesData
from dcops.telemetry.store import MetricsStore, block_of, select_block, select_steps

log = logging.getLogger(__name__)

# promql-parser's enums do not hash, so these are looked up by equality.
_MATCH_OPS = [
    (pp.MatchOp.Equal, MatchOp.EQ),
    (pp.MatchOp.NotEqual, MatchOp.NE),
    (pp.MatchOp.Re, MatchOp.RE),
    (pp.MatchOp.NotRe, MatchOp.NRE),
]
_CARD = [
    (pp.VectorMatchCardinality.OneToOne, "one-to-one"),
    (pp.VectorMatchCardinality.ManyToOne, "many-to-one"),
    (pp.VectorMatchCardinality.OneToMany, "one-to-many"),
    (pp.VectorMatchCardinality.ManyToMany, "many-to-many"),
]


def _lookup(table: list[tuple[Any, Any]], key: Any) -> Any:
    for candidate, value in table:
        if candidate == key:
            return value
    raise QueryError("bad_data", f"unsupported: {key}")


def _ms(delta: Any) -> int:
    return 0 if delta is None else round(delta.total_seconds() * 1000)


def _type_name(value: Value) -> str:
    return {Vector: "instant vector", Scalar: "scalar", String: "string"}[type(value)]


class Engine:
    """Answers PromQL queries from `store`, like Prometheus's /api/v1/query and query_range."""

    def __init__(self, store: MetricsStore, *, lookback_delta_ms: int = 300_000,
                 max_samples: int = 50_000_000) -> None:
        self.store = store
        self.lookback_delta_ms = lookback_delta_ms
        self.max_samples = max_samples
        self.group_keys: aggregation.GroupKeys = {}
        """Group keys of series aggregated before: the same rules ask again and again."""

    def instant(self, query: str, at_ms: int) -> Result:
        """Evaluate `query` at one moment; a range selector at top level gives a matrix."""
        answer = self.instant_samples(query, at_ms)
        if isinstance(answer, Result):
            return answer
        at = np.array([at_ms], dtype=np.int64)
        return Result("vector", [ResultSeries(labels, at, np.array([value]))
                                 for labels, value in answer])

    def instant_samples(self, query: str, at_ms: int) -> Result | list[tuple[Labels, float]]:
        """`instant`, with a vector answered as (labels, value) pairs in its order (by labels,
        or by value for sort() and sort_desc()): what rule evaluation reads, without a
        `ResultSeries` made for each of tens of thousands of series. Other answers are
        `instant`'s."""
        expr = _parse(query)
        ev = _Evaluation(self, np.array([at_ms], dtype=np.int64), at_ms, at_ms)
        inner = _unwrap(expr)
        if isinstance(inner, pp.MatrixSelector | pp.SubqueryExpr):
            return ev.raw_matrix(inner)
        with np.errstate(all="ignore"):  # IEEE results (NaN, ±Inf) are PromQL's answers
            value = ev.eval(expr)
        if isinstance(value, Scalar):
            return Result("scalar", at_ms=at_ms, scalar=float(value.values[0]))
        if isinstance(value, String):
            return Result("string", at_ms=at_ms, string=value.value)
        pairs = sorted(_answered(value), key=itemgetter(0))
        if isinstance(inner, pp.Call) and str(inner.func.name) in ("sort", "sort_desc"):
            # by value, NaNs last, equal values by labels
            descending = str(inner.func.name) == "sort_desc"
            pairs.sort(key=lambda p: (math.isnan(p[1]), -p[1] if descending else p[1]))
        return pairs

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Result:
        """Evaluate `query` at every step from `start_ms` to `end_ms`; the answer is a matrix."""
        if step_ms <= 0:
            raise QueryError("bad_data", "zero or negative query resolution step widths are "
                             "not accepted. Try a positive integer")
        if end_ms < start_ms:
            raise QueryError("bad_data", "end timestamp must not be before start time")
        if (end_ms - start_ms) // step_ms > 11000:
            raise QueryError("bad_data", "exceeded maximum resolution of 11,000 points per "
                             "timeseries. Try decreasing the query resolution (?step=XX)")
        expr = _parse(query)
        inner = _unwrap(expr)
        if isinstance(inner, pp.MatrixSelector | pp.SubqueryExpr):
            raise QueryError("bad_data", 'invalid expression type "range vector" for range '
                             "query, must be Scalar or instant Vector")
        if isinstance(inner, pp.StringLiteral):
            raise QueryError("bad_data", 'invalid expression type "string" for range query, '
                             "must be Scalar or instant Vector")
        grid = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        with np.errstate(all="ignore"):
            value = _Evaluation(self, grid, start_ms, end_ms).eval(expr)
        if isinstance(value, String):
            raise QueryError("bad_data", "string result in range query")
        if isinstance(value, Scalar):
            return Result("matrix", [ResultSeries((), grid, value.values)])
        out = [ResultSeries(s.labels, grid[s.present], s.values[s.present])
               for s in value.series if s.present.any()]
        return Result("matrix", sorted(out, key=lambda s: s.labels))


def _answered(value: Vector) -> list[tuple[Labels, float]]:
    """An instant query's series that have a sample (at its one step), with that sample."""
    found = value.matrices()
    if found is None:
        return [(s.labels, float(s.values[0])) for s in value.series if s.present[0]]
    values, present = found
    labels = value.labels
    chosen = np.flatnonzero(present[:, 0])
    return list(zip([labels[i] for i in chosen.tolist()], values[chosen, 0].tolist(),
                    strict=True))


def _parse(query: str) -> Any:
    try:
        return pp.parse(query)
    except Exception as exc:  # promql-parser raises plain ValueError/RuntimeError
        raise QueryError("bad_data", f"invalid parameter \"query\": {exc}") from None


def _unwrap(expr: Any) -> Any:
    while isinstance(expr, pp.ParenExpr):
        expr = expr.expr
    return expr


class _Evaluation:
    """One query's evaluation over a fixed grid of step timestamps."""

    def __init__(self, engine: Engine, grid: IntArray, start_ms: int, end_ms: int) -> None:
        self.engine = engine
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.grid = grid
        self.steps = len(grid)
        self.samples = 0

    # --- selectors -------------------------------------------------------------------

    def count_samples(self, n: int) -> None:
        self.samples += n
        if self.samples > self.engine.max_samples:
            raise QueryError("execution", "query processing would load too many samples "
                             "into memory in query execution")

    def eval_times(self, selector: Any) -> IntArray:
        """Per step, the time a selector looks at: the step (or its @ time) minus offset."""
        offset = _ms(selector.offset)
        at = selector.at
        if at is None:
            return self.grid - offset
        if at.type == pp.AtModifierType.Start:
            fixed = self.start_ms
        elif at.type == pp.AtModifierType.End:
            fixed = self.end_ms
        else:
            fixed = round(at.at.timestamp() * 1000)
        return np.full(self.steps, fixed - offset, dtype=np.int64)

    def select(self, selector: Any, start_ms: int, end_ms: int,
               steps: IntArray | None = None) -> SeriesBlock:
        """The selector's series in [start_ms, end_ms]; with `steps` (evenly spaced), only
        what a vector selector at those steps needs: each step's newest sample."""
        matchers = self.matchers(selector)
        try:
            if steps is None:
                return select_block(self.engine.store, matchers, start_ms, end_ms)
            step = int(steps[1] - steps[0]) if len(steps) > 1 else end_ms - start_ms + 1
            return select_steps(self.engine.store, matchers, start_ms, end_ms,
                                int(steps[0]), step)
        except re.error as exc:  # RE2 syntax that Python's re does not share
            raise QueryError("bad_data", f"unsupported: regular expression in {selector}: "
                             f"{exc}") from None

    def matchers(self, selector: Any) -> list[Matcher]:
        if selector.matchers.or_matchers:
            raise QueryError("bad_data", "unsupported: 'or' inside a selector")
        matchers = [Matcher(m.name, _lookup(_MATCH_OPS, m.op), m.value)
                    for m in selector.matchers.matchers]
        if selector.name is not None:
            matchers.append(Matcher("__name__", MatchOp.EQ, selector.name))
        return matchers

    def vector_selector(self, selector: Any) -> Vector:
        """Each series' newest sample at or before each step, within the lookback delta."""
        times = self.eval_times(selector)
        lookback = self.engine.lookback_delta_ms
        even = len(times) < 3 or bool((np.diff(times) == times[1] - times[0]).all())
        block = self.select(selector, int(times.min()) - lookback, int(times.max()),
                            times if even and times[-1] >= times[0] else None)
        if not len(block):
            return Vector([])
        idx = window.search(block, times, "right") - 1
        safe = np.maximum(idx, 0)
        values = block.values[safe]
        present = (idx >= block.offsets[:-1, None]) & (block.ts_ms[safe] >= times - lookback)
        present &= ~is_stale(values)
        self.count_samples(int(present.sum()))
        return Vector.of_rows(block.labels, values, present, unique=True)  # one per series

    def range_data(self, matrix: Any) -> tuple[SeriesBlock, IntArray, int]:
        """Series of a range selector (without staleness markers) or subquery, times, range."""
        if isinstance(matrix, pp.SubqueryExpr):
            return self.subquery_data(matrix)
        selector = matrix.vector_selector
        if not isinstance(selector, pp.VectorSelector):
            raise QueryError("bad_data", "unsupported: range of a non-selector")
        times = self.eval_times(selector)
        range_ms = _ms(matrix.range)
        block = self.select(selector, int(times.min()) - range_ms, int(times.max()))
        return without_stale(block), times, range_ms

    def subquery_data(self, subquery: Any) -> tuple[SeriesBlock, IntArray, int]:
        """Evaluate ``expr[range:step]`` at the step-aligned times its windows need."""
        step = _ms(subquery.step)
        if step <= 0:
            raise QueryError("bad_data", "unsupported: subquery without an explicit step")
        times = self.eval_times(subquery)
        range_ms = _ms(subquery.range)
        first = -(-(int(times.min()) - range_ms) // step) * step
        grid = np.arange(first, int(times.max()) + 1, step, dtype=np.int64)
        if not len(grid):
            return block_of([]), times, range_ms
        inner = _Evaluation(self.engine, grid, self.start_ms, self.end_ms)
        value = inner.eval(subquery.expr)
        self.count_samples(inner.samples)
        if not isinstance(value, Vector):
            raise QueryError("bad_data", "unsupported: subquery of a non-vector expression")
        data = [SeriesData(s.labels, grid[s.present], s.values[s.present])
                for s in value.series if s.present.any()]
        return block_of(sorted(data, key=lambda sd: sd.labels)), times, range_ms

    def raw_matrix(self, matrix: Any) -> Result:
        block, times, range_ms = self.range_data(matrix)
        t = int(times[0])
        out = []
        for sd in block.series():
            keep = (sd.ts_ms >= t - range_ms) & (sd.ts_ms <= t)
            if keep.any():
                self.count_samples(int(keep.sum()))
                out.append(ResultSeries(sd.labels, sd.ts_ms[keep], sd.values[keep]))
        return Result("matrix", sorted(out, key=lambda s: s.labels))

    # --- expressions -----------------------------------------------------------------

    def eval(self, expr: Any) -> Value:
        if isinstance(expr, pp.NumberLiteral):
            return Scalar(np.full(self.steps, float(expr.val)))
        if isinstance(expr, pp.StringLiteral):
            return String(str(expr.val))
        if isinstance(expr, pp.ParenExpr):
            return self.eval(expr.expr)
        if isinstance(expr, pp.VectorSelector):
            return self.vector_selector(expr)
        if isinstance(expr, pp.UnaryExpr):
            return self.unary(expr)
        if isinstance(expr, pp.Call):
            return functions.call(self, expr)
        if isinstance(expr, pp.AggregateExpr):
            return self.aggregate(expr)
        if isinstance(expr, pp.BinaryExpr):
            return self.binary(expr)
        if isinstance(expr, pp.MatrixSelector | pp.SubqueryExpr):
            raise QueryError("bad_data", "range vector used where an instant vector or "
                             "scalar is expected")
        raise QueryError("bad_data", f"unsupported: expression {type(expr).__name__}")

    def eval_scalar(self, expr: Any, what: str) -> Scalar:
        value = self.eval(expr)
        if not isinstance(value, Scalar):
            raise QueryError("bad_data", f"expected type scalar in {what}, got "
                             f"{_type_name(value)}")
        return value

    def eval_vector(self, expr: Any, what: str) -> Vector:
        value = self.eval(expr)
        if not isinstance(value, Vector):
            raise QueryError("bad_data", f"expected type instant vector in {what}, got "
                             f"{_type_name(value)}")
        return value

    def unary(self, expr: Any) -> Value:
        value = self.eval(expr.expr)
        if isinstance(value, Scalar):
            return Scalar(-value.values)
        if isinstance(value, Vector):
            return Vector(merge_same_labels(
                [Series(drop_name(s.labels), -s.values, s.present) for s in value.series]))
        raise QueryError("bad_data", "unary expression only allowed on expressions of type "
                         "scalar or instant vector")

    def aggregate(self, expr: Any) -> Vector:
        op = str(expr.op)
        if op not in aggregation.SIMPLE | aggregation.SELECTING | {"count_values"}:
            raise QueryError("bad_data", f"unsupported: aggregation {op}")
        param = None
        if op == "count_values":
            label = self.eval(expr.param)
            if not isinstance(label, String):
                raise QueryError("bad_data", "expected type string in aggregation count_values")
            vector = self.eval_vector(expr.expr, "aggregation count_values")
            grouping = list(expr.modifier.labels) if expr.modifier is not None else []
            excluding = expr.modifier is not None and \
                expr.modifier.type == pp.AggModifierType.Without
            return aggregation.count_values(label.value, vector, grouping, excluding,
                                            self.steps)
        if expr.param is not None:
            param = self.eval_scalar(expr.param, f"aggregation {op}").values
        vector = self.eval_vector(expr.expr, f"aggregation {op}")
        names: list[str] = []
        without = False
        if expr.modifier is not None:
            names = list(expr.modifier.labels)
            without = expr.modifier.type == pp.AggModifierType.Without
        return aggregation.aggregate(op, vector, names, without, param, self.steps,
                                     self.engine.group_keys)

    def binary(self, expr: Any) -> Value:
        op = str(expr.op)
        if op not in binary.ARITHMETIC | binary.COMPARISON | binary.SET:
            raise QueryError("bad_data", f"unsupported: operator {op}")
        lhs, rhs = self.eval(expr.lhs), self.eval(expr.rhs)
        mod = expr.modifier
        return_bool = bool(mod is not None and mod.return_bool)
        if isinstance(lhs, String) or isinstance(rhs, String):
            raise QueryError("bad_data", "binary expression must contain only scalar and "
                             "instant vector types")
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            return binary.scalar_scalar(op, lhs, rhs)
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return binary.vector_scalar(op, lhs, rhs, scalar_left=False, return_bool=return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return binary.vector_scalar(op, rhs, lhs, scalar_left=True, return_bool=return_bool)
        assert isinstance(lhs, Vector) and isinstance(rhs, Vector)
        matching = _matching(mod, op, return_bool)
        return binary.vector_vector(op, lhs, rhs, matching)


def _matching(mod: Any, op: str, return_bool: bool) -> binary.Matching:
    if mod is None:
        card = "many-to-many" if op in binary.SET else "one-to-one"
        return binary.Matching(card, False, (), (), return_bool)
    if mod.fill_values is not None and _has_fill(mod.fill_values):
        raise QueryError("bad_data", "unsupported: fill modifiers")
    on, labels = False, ()
    if mod.matching is not None:
        on = mod.matching.type == pp.LabelModifierType.Include
        labels = tuple(mod.matching.labels)
    card = str(_lookup(_CARD, mod.card))
    include = tuple(mod.group_labels or ()) if card in ("many-to-one", "one-to-many") else ()
    return binary.Matching(card, on, labels, include, return_bool)


def _has_fill(fill: Any) -> bool:
    return any(getattr(fill, name, None) is not None for name in ("lhs", "rhs"))
