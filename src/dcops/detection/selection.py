"""Which series a detector reads, and as what: its columns (PromQL queries) and entities.

A plain selector such as ``dcops_gpu_temperature_celsius{model="H100"}`` is read as
``last_over_time(...[window])``: the newest sample in each step's window, so a gap longer
than the window is a gap (NaN), not the last value carried on for the engine's five minute
lookback. A counter (``*_total``, or ``rate: true``) is read as ``rate(...[window])``: the
engine's rate handles counter resets. Anything else (``avg by (node) (...)``) is read as
written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import promql_parser as pp

from dcops.core.errors import Invalid
from dcops.detection.spec import DetectorSpec
from dcops.telemetry.model import Labels

SCORE_METRIC = "dcops_anomaly_score"
"""The series the service writes: ``dcops_anomaly_score{detector="...", <entity labels>}``."""


@dataclass(frozen=True)
class Column:
    """One selector of a detector: the metric name explanations use, and the query run."""

    name: str
    query: str


@dataclass(frozen=True)
class Entity:
    """What gets one score: a GPU, a node, a series; `key` is stable and unique."""

    key: str
    labels: dict[str, str]
    group: str = ""


def columns(spec: DetectorSpec, step_s: float) -> list[Column]:
    """The queries of `spec`'s selectors at a step of `step_s` seconds."""
    return [_column(text, spec, step_s) for text in spec.selectors]


def _column(text: str, spec: DetectorSpec, step_s: float) -> Column:
    expr = parse(text)
    if not isinstance(expr, pp.VectorSelector) or expr.offset is not None \
            or expr.at is not None:
        return Column(text.strip(), text.strip())
    name = expr.name or text.strip()
    if name == SCORE_METRIC:
        raise Invalid(f"a detector cannot read its own scores ({SCORE_METRIC})",
                      where=f"detection.detectors.{spec.name}.selectors")
    counter = spec.rate if spec.rate is not None else name.endswith("_total")
    if counter:
        window = spec.window_s or max(4 * step_s, 60.0)
        return Column(name, f"rate({text.strip()}[{_duration(window)}])")
    window = spec.window_s or step_s
    return Column(name, f"last_over_time({text.strip()}[{_duration(window)}])")


def parse(text: str) -> object:
    """The PromQL expression `text`; `Invalid` with the parser's reason when it is not."""
    try:
        return pp.parse(text)
    except Exception as exc:  # promql-parser raises plain ValueError/RuntimeError
        raise Invalid(f"not a PromQL expression: {exc}", where=text) from None


def _duration(seconds: float) -> str:
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def entity_of(labels: Labels, spec: DetectorSpec) -> Entity:
    """The entity a result series belongs to: its labels but the metric name (or only
    `entity_by`), in the peer group of its `group_by` values."""
    chosen = {k: v for k, v in labels if k != "__name__"
              and (spec.entity_by is None or k in spec.entity_by)}
    own = dict(labels)
    group = json.dumps([own.get(name, "") for name in spec.group_by])
    return Entity(json.dumps(sorted(chosen.items())), chosen, group)
