"""Prometheus's HTTP query API on the control plane, so Grafana can use dcops as a data source.

Grafana's Prometheus data source (and anything else that speaks /api/v1/query) reads the
fleet's metrics from here as if dcops were a Prometheus: PromQL instant and range queries,
series, label names and values, metadata and build info. Every route takes its parameters
from the URL or from an ``application/x-www-form-urlencoded`` POST body, as Prometheus
does, and answers ``{"status": "success", "data": ...}`` or Prometheus's error JSON.
"""

from __future__ import annotations

import logging
import math
import platform
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl

import promql_parser as pp
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict

import dcops
from dcops.access.model import Role
from dcops.api.auth import require
from dcops.api.body import read_body
from dcops.core.errors import DcopsError, Unavailable
from dcops.query import Querier, QueryError
from dcops.telemetry.model import LABEL_NAME_RE, Labels, Matcher, MatchOp
from dcops.wiring import Services

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["promql"],
                   dependencies=[Depends(require(Role.VIEWER))])

ErrorType = Literal["bad_data", "execution", "timeout", "internal", "unavailable"]

MAX_POINTS = 11_000
"""Prometheus's limit on the steps of one range query."""

MIN_TIME_MS = 0
"""Where a series/labels lookup without `start` begins (no sample predates the epoch)."""

MAX_TIME_MS = 2**62
"""Where a lookup without `end` stops: beyond any sample."""

_STATUS = {"bad_data": 400, "execution": 422, "timeout": 503, "internal": 500,
           "unavailable": 503}
_DURATION_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?"
                          r"(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000,
                      1000, 1)
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")
_MATCH_OPS = [
    (pp.MatchOp.Equal, MatchOp.EQ),
    (pp.MatchOp.NotEqual, MatchOp.NE),
    (pp.MatchOp.Re, MatchOp.RE),
    (pp.MatchOp.NotRe, MatchOp.NRE),
]

T = TypeVar("T")


class PromError(DcopsError):
    """A failed Prometheus API call, answered as ``{"status": "error", "errorType", "error"}``."""

    def __init__(self, error_type: ErrorType, message: str) -> None:
        super().__init__(message, where="prometheus api")
        self.error_type = error_type
        self.status = _STATUS[error_type]
        self.code = error_type

    def to_prometheus_json(self) -> dict[str, str]:
        return {"status": "error", "errorType": self.error_type, "error": self.message}


def _success(data: Any) -> dict[str, Any]:
    return {"status": "success", "data": data}


async def _params(request: Request) -> ImmutableMultiDict[str, str]:
    """URL parameters merged with a form body, as Go's ``Request.ParseForm`` does (body first)."""
    items: list[tuple[str, str]] = []
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        try:
            text = (await read_body(request)).decode()
        except UnicodeDecodeError:
            raise PromError("bad_data", "form body is not UTF-8") from None
        items.extend(parse_qsl(text, keep_blank_values=True))
    items.extend(request.query_params.multi_items())
    return ImmutableMultiDict(items)


def parse_time(name: str, text: str) -> int:
    """A Prometheus API timestamp (unix seconds, fractional or not, or RFC 3339) in ms."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds):
        return round(seconds * 1000)
    try:
        moment = datetime.fromisoformat(_FRACTION_RE.sub(r"\1", text.replace("Z", "+00:00")))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in text.upper():
        raise PromError("bad_data", f'invalid parameter "{name}": cannot parse "{text}" to a '
                                    "valid timestamp")
    return round(moment.timestamp() * 1000)


def parse_duration(name: str, text: str) -> int:
    """A Prometheus API duration (float seconds or ``1h30m``-style) in milliseconds."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds):
        if abs(seconds) * 1e9 >= 2**63:
            raise PromError("bad_data", f'invalid parameter "{name}": cannot parse "{text}" '
                                        "to a valid duration. It overflows int64")
        return round(seconds * 1000)
    found = _DURATION_RE.match(text)
    if not text or found is None:
        raise PromError("bad_data", f'invalid parameter "{name}": cannot parse "{text}" to a '
                                    "valid duration")
    return sum(int(part) * unit for part, unit in zip(found.groups(), _DURATION_UNITS_MS,
                                                      strict=True) if part)


def parse_selector(text: str) -> list[Matcher]:
    """One ``match[]`` series selector (``up{job="x"}``) as store matchers."""
    try:
        expr = pp.parse(text)
    except Exception as exc:  # promql-parser raises plain ValueError/RuntimeError
        message = str(exc)
        if "at least one non-empty matcher" in message:
            message = "match[] must contain at least one non-empty matcher"
        raise PromError("bad_data", f'invalid parameter "match[]": {message}') from None
    if not isinstance(expr, pp.VectorSelector) or expr.offset is not None \
            or expr.at is not None:
        raise PromError("bad_data", f'invalid parameter "match[]": {text!r} is not a series '
                                    "selector")
    if expr.matchers.or_matchers:
        raise PromError("bad_data", "unsupported: 'or' inside a selector")
    matchers = []
    for m in expr.matchers.matchers:
        op = next(ours for theirs, ours in _MATCH_OPS if theirs == m.op)
        if op in (MatchOp.RE, MatchOp.NRE):
            try:
                re.compile(m.value)
            except re.error as exc:
                raise PromError("bad_data", f'invalid parameter "match[]": regular '
                                            f"expression {m.value!r}: {exc}") from None
        matchers.append(Matcher(m.name, op, m.value))
    if expr.name is not None:
        matchers.append(Matcher("__name__", MatchOp.EQ, expr.name))
    return matchers


def _querier(request: Request) -> Querier:
    """What answers PromQL: the embedded engine or the remote store (see wiring)."""
    services: Services = request.app.state.services
    return services.querier


def _now_ms(request: Request) -> int:
    services: Services = request.app.state.services
    return round(services.clock.now() * 1000)


async def _run(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn` in the threadpool; engine and store errors become Prometheus errors."""
    try:
        return await run_in_threadpool(fn, *args)
    except QueryError as exc:
        raise PromError(exc.kind, exc.message) from None
    except Unavailable as exc:  # the remote metrics store: Prometheus's 503 shape
        raise PromError("unavailable", str(exc)) from None
    except re.error as exc:
        raise PromError("bad_data", f"regular expression: {exc}") from None


def _time_param(params: ImmutableMultiDict[str, str], name: str, default: int) -> int:
    """An optional timestamp parameter; Prometheus words its errors differently here."""
    text = params.get(name)
    if not text:
        return default
    try:
        return parse_time(name, text)
    except PromError:
        raise PromError("bad_data", f'invalid parameter "{name}": Invalid time value for '
                                    f"'{name}': cannot parse \"{text}\" to a valid "
                                    "timestamp") from None


def _time_range(params: ImmutableMultiDict[str, str]) -> tuple[int, int]:
    """``start`` and ``end`` of a metadata lookup; an empty range (end < start) finds nothing."""
    return (_time_param(params, "start", MIN_TIME_MS), _time_param(params, "end", MAX_TIME_MS))


def _limit(params: ImmutableMultiDict[str, str]) -> int | None:
    text = params.get("limit")
    if not text:
        return None
    try:
        limit = int(text)
    except ValueError:
        limit = -1
    if limit < 0:
        raise PromError("bad_data", f'invalid parameter "limit": cannot parse "{text}": '
                                    "limit must be a non-negative integer")
    return limit or None


def _matched_series(request: Request, selectors: Sequence[str], start: int,
                    end: int) -> list[Labels]:
    """Every series matching any of `selectors` with samples in [start, end], sorted."""
    services: Services = request.app.state.services
    found: set[Labels] = set()
    for matchers in [parse_selector(s) for s in selectors]:
        found.update(services.store.series(matchers, start, end))
    return sorted(found)


def _check_timeout(params: ImmutableMultiDict[str, str]) -> None:
    """Grafana sends its query timeout; it is validated like Prometheus, not enforced."""
    if params.get("timeout"):
        parse_duration("timeout", params["timeout"])


@router.get("/query", operation_id="prom_query_get")
@router.post("/query", operation_id="prom_query_post")
async def query(request: Request) -> dict[str, Any]:
    """PromQL at one moment: ``query``, ``time`` (default now), ``timeout``."""
    params = await _params(request)
    _check_timeout(params)
    at_ms = _time_param(params, "time", _now_ms(request))
    result = await _run(_querier(request).instant, params.get("query", ""), at_ms)
    return _success(result.to_prometheus_json())


@router.get("/query_range", operation_id="prom_query_range_get")
@router.post("/query_range", operation_id="prom_query_range_post")
async def query_range(request: Request) -> dict[str, Any]:
    """PromQL at every ``step`` from ``start`` to ``end``; the answer is a matrix."""
    params = await _params(request)
    start = parse_time("start", params.get("start", ""))
    end = parse_time("end", params.get("end", ""))
    if end < start:
        raise PromError("bad_data", 'invalid parameter "end": end timestamp must not be '
                                    "before start time")
    step = parse_duration("step", params.get("step", ""))
    if step <= 0:
        raise PromError("bad_data", 'invalid parameter "step": zero or negative query '
                                    "resolution step widths are not accepted. Try a "
                                    "positive integer")
    if (end - start) // step > MAX_POINTS:  # Go's integer Duration division
        raise PromError("bad_data", "exceeded maximum resolution of 11,000 points per "
                                    "timeseries. Try decreasing the query resolution "
                                    "(?step=XX)")
    _check_timeout(params)
    result = await _run(_querier(request).range, params.get("query", ""), start, end, step)
    return _success(result.to_prometheus_json())


@router.get("/query_exemplars", operation_id="prom_query_exemplars_get")
@router.post("/query_exemplars", operation_id="prom_query_exemplars_post")
async def query_exemplars(request: Request) -> dict[str, Any]:
    """Exemplars of a query: dcops stores none, so always an empty list."""
    params = await _params(request)
    start, end = _time_range(params)
    if end < start:
        raise PromError("bad_data", "end timestamp must not be before start timestamp")
    return _success([])


@router.get("/series", operation_id="prom_series_get")
@router.post("/series", operation_id="prom_series_post")
async def series(request: Request) -> dict[str, Any]:
    """Label sets of the series matching any ``match[]`` selector in [start, end]."""
    params = await _params(request)
    selectors = params.getlist("match[]")
    if not selectors:
        raise PromError("bad_data", "no match[] parameter provided")
    start, end = _time_range(params)
    limit = _limit(params)
    if end < start:
        return _success([])
    found = await _run(_matched_series, request, selectors, start, end)
    return _success([dict(labels) for labels in found[:limit]])


@router.get("/labels", operation_id="prom_labels_get")
@router.post("/labels", operation_id="prom_labels_post")
async def labels(request: Request) -> dict[str, Any]:
    """Label names, of every series or of those matching ``match[]`` in [start, end]."""
    params = await _params(request)
    start, end = _time_range(params)
    selectors = params.getlist("match[]")
    services: Services = request.app.state.services
    if end < start:
        return _success([])
    if selectors:
        found = await _run(_matched_series, request, selectors, start, end)
        names = sorted({name for labels in found for name, _ in labels})
    else:
        names = await _run(services.store.label_names)
    return _success(names[:_limit(params)])


@router.get("/label/{name}/values")
async def label_values(request: Request, name: str) -> dict[str, Any]:
    """Values of label `name`, over every series or those matching ``match[]``."""
    params = await _params(request)
    if not LABEL_NAME_RE.match(name):
        raise PromError("bad_data", f'invalid label name: "{name}"')
    start, end = _time_range(params)
    selectors = params.getlist("match[]")
    services: Services = request.app.state.services
    if end < start:
        return _success([])
    if selectors:
        found = await _run(_matched_series, request, selectors, start, end)
        values = sorted({v for labels in found for k, v in labels if k == name})
    else:
        values = await _run(services.store.label_values, name)
    return _success(values[:_limit(params)])


@router.get("/metadata")
async def metadata(request: Request) -> dict[str, Any]:
    """Metric types, help and units by metric name: not stored yet, so an empty object."""
    await _params(request)
    return _success({})


@router.get("/status/buildinfo")
async def buildinfo() -> dict[str, Any]:
    """What is answering: dcops's version; no ``features``, so Grafana treats it as Prometheus."""
    return _success({"version": dcops.__version__, "revision": "", "branch": "",
                     "buildUser": "dcops", "buildDate": "",
                     "goVersion": f"python{platform.python_version()}"})
