"""What answers PromQL: the embedded `Engine`, or a remote Prometheus-compatible store.

The Prometheus HTTP API and the rule evaluator ask a `Querier`; wiring decides which one.
"""

from __future__ import annotations

from typing import Protocol

from dcops.query.result import Result


class Querier(Protocol):
    """Instant and range PromQL queries, answered as Prometheus's HTTP API would.

    Both raise `QueryError` (``bad_data`` or ``execution``) with Prometheus's wording for a
    query that cannot be answered, and `dcops.core.errors.Unavailable` when the store
    behind them cannot be reached.
    """

    def instant(self, query: str, at_ms: int) -> Result:
        """Evaluate `query` at one moment (a top-level range selector gives a matrix)."""
        ...

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Result:
        """Evaluate `query` at every step from `start_ms` to `end_ms`: a matrix."""
        ...
