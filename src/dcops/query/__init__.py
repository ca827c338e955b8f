"""PromQL over the embedded metrics store: parse with promql-parser, evaluate with numpy.

`Engine` answers instant and range queries the way Prometheus's HTTP API does, so
dashboards and alert rules see the same numbers from dcops as from a Prometheus.
"""

from dcops.query.engine import Engine
from dcops.query.querier import Querier
from dcops.query.result import QueryError, Result, format_value

__all__ = ["Engine", "Querier", "QueryError", "Result", "format_value"]
