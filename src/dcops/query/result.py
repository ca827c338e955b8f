"""What a PromQL query answers: its type, series and values, and the errors it can raise."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from dcops.core.errors import DcopsError
from dcops.telemetry.model import Labels

ResultType = Literal["vector", "matrix", "scalar", "string"]
ErrorKind = Literal["bad_data", "execution"]


class QueryError(DcopsError):
    """A query that cannot be answered: ``bad_data`` (parse or type errors) or ``execution``."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message, where="promql")
        self.kind = kind
        self.status = 400 if kind == "bad_data" else 422
        self.code = kind


def format_value(value: float) -> str:
    """A sample value as Prometheus's API writes it in vectors and matrices.

    That is Go's ``strconv.AppendFloat(v, 'f', -1, 64)``, switching to the ``'e'`` form for
    magnitudes below 1e-6 or from 1e21 up (as JavaScript does): ``1e-07``, ``1e+21``.
    """
    if value != 0 and not math.isnan(value) and (abs(value) < 1e-6 or abs(value) >= 1e21) \
            and not math.isinf(value):
        return format_exponent(value)
    return format_scalar(value)


def format_values(values: list[float]) -> list[str]:
    """`format_value` of many values: Python's shortest repr is Go's digits for most of them."""
    out = list(map(repr, values))
    for i, text in enumerate(out):
        if text[-2:] == ".0":
            out[i] = text[:-2]
        elif "e" in text or "n" in text:  # exponents, inf, nan: the careful path
            out[i] = format_value(values[i])
    return out


def format_times(ts_ms: npt.NDArray[np.int64]) -> list[float | int]:
    """Timestamps as the API writes them: whole seconds as ints, others as floats."""
    whole = ts_ms % 1000 == 0
    if whole.all():
        seconds: list[float | int] = (ts_ms // 1000).tolist()
        return seconds
    return [_format_ts(t) for t in ts_ms.tolist()]


def format_scalar(value: float) -> str:
    """A scalar result as Prometheus writes it: Go's ``FormatFloat(v, 'f', -1, 64)``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if text.endswith(".0"):
        text = text[:-2]
    return text


def format_exponent(value: float) -> str:
    """Go's ``FormatFloat(v, 'e', -1, 64)``: shortest digits, exponent of at least 2 digits."""
    sign, digits, exponent = Decimal(repr(float(value))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)  # finite: checked by the caller
    power = exponent + len(digits) - 1
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'+' if power >= 0 else '-'}{abs(power):02d}"


def _format_ts(ts_ms: int) -> float | int:
    return ts_ms // 1000 if ts_ms % 1000 == 0 else ts_ms / 1000


@dataclass(frozen=True, slots=True)
class ResultSeries:
    """One series of an answer: its labels and the points it has (one for a vector)."""

    labels: Labels
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Result:
    """A query's answer: `series` for vector/matrix, `scalar`/`string` with `at_ms` otherwise."""

    result_type: ResultType
    series: list[ResultSeries] = field(default_factory=list)
    at_ms: int = 0
    scalar: float = math.nan
    string: str = ""

    def to_prometheus_json(self) -> dict[str, Any]:
        """The ``data`` field of Prometheus's /api/v1/query or /api/v1/query_range reply."""
        out: Any
        if self.result_type == "scalar":
            out = [_format_ts(self.at_ms), format_scalar(self.scalar)]
        elif self.result_type == "string":
            out = [_format_ts(self.at_ms), self.string]
        elif self.result_type == "vector":
            out = [{"metric": dict(s.labels),
                    "value": [_format_ts(int(s.ts_ms[0])), format_value(float(s.values[0]))]}
                   for s in self.series]
        else:
            out = [{"metric": dict(s.labels),
                    "values": [[t, v] for t, v in zip(format_times(s.ts_ms),
                                                      format_values(s.values.tolist()),
                                                      strict=True)]}
                   for s in self.series]
        return {"resultType": self.result_type, "result": out}
