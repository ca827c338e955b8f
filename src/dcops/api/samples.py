"""The simple range-read API over the metrics store, and the fleet overview."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from dcops.access.model import Role
from dcops.api.auth import require
from dcops.core.errors import Invalid
from dcops.telemetry.model import Matcher, MatchOp, labels_dict, name_matcher
from dcops.wiring import Services

router = APIRouter(prefix="/api/v1", tags=["metrics"],
                   dependencies=[Depends(require(Role.VIEWER))])

_MATCHER_RE = re.compile(r"^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)(.*)$", re.S)
MAX_RANGE_POINTS = 5_000_000


def parse_matcher(text: str) -> Matcher:
    """`name=value`, `name!=value`, `name=~regex` or `name!~regex`."""
    found = _MATCHER_RE.match(text)
    if not found:
        raise Invalid(f"bad label matcher {text!r}", where="query parameter 'label'",
                      hint="use NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX")
    name, op, value = found.groups()
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise Invalid(f"bad regular expression {value!r}: {exc}",
                          where="query parameter 'label'") from None
    return Matcher(name, MatchOp(op), value)


def _matchers(metric: str | None, label: list[str]) -> list[Matcher]:
    matchers = [parse_matcher(t) for t in label]
    if metric:
        matchers.insert(0, name_matcher(metric))
    if not any(m.op in (MatchOp.EQ, MatchOp.RE) and m.value for m in matchers):
        raise Invalid("a selector needs a metric name or a non-empty label matcher",
                      where="query", hint="pass metric=NAME")
    return matchers


def _range(request: Request, start: float | None, end: float | None) -> tuple[int, int]:
    services: Services = request.app.state.services
    end_s = end if end is not None else services.clock.now()
    start_s = start if start is not None else end_s - 3600
    if start_s > end_s:
        raise Invalid("start is after end", where="query parameter 'start'")
    return int(start_s * 1000), int(end_s * 1000)


@router.get("/samples")
async def samples(request: Request, metric: str | None = None,
                  label: list[str] = Query(default_factory=list),
                  start: float | None = Query(None, description="unix seconds"),
                  end: float | None = Query(None, description="unix seconds"),
                  rollup: str | None = Query(None, pattern="^(avg|min|max|last|count)$"),
                  ) -> dict[str, Any]:
    """Samples of matching series in [start, end]; `rollup` reads the 5-minute rollups."""
    services: Services = request.app.state.services
    matchers = _matchers(metric, label)
    start_ms, end_ms = _range(request, start, end)
    if rollup:
        data = await run_in_threadpool(services.store.select_rollup, matchers, start_ms,
                                       end_ms, rollup)
    else:
        data = await run_in_threadpool(services.store.select, matchers, start_ms, end_ms)
    total = sum(len(s.ts_ms) for s in data)
    if total > MAX_RANGE_POINTS:
        raise Invalid(f"{total} points is too many for one answer", where="query",
                      hint="narrow the range or the selector, or use rollup=avg")
    return {"series": [{"labels": labels_dict(s.labels),
                        "samples": [[int(t) / 1000, float(v)]
                                    for t, v in zip(s.ts_ms.tolist(), s.values.tolist(),
                                                    strict=True)]}
                       for s in data]}


@router.get("/latest")
async def latest(request: Request, metric: str | None = None,
                 label: list[str] = Query(default_factory=list),
                 lookback_s: float = Query(300, gt=0)) -> dict[str, Any]:
    """The newest sample of each matching series within `lookback_s`."""
    services: Services = request.app.state.services
    matchers = _matchers(metric, label)
    since = int((services.clock.now() - lookback_s) * 1000)
    found = await run_in_threadpool(services.store.latest, matchers, since)
    return {"series": [{"labels": labels_dict(s.labels), "ts": s.ts_ms / 1000,
                        "value": s.value} for s in found]}


@router.get("/fleet/overview", tags=["dashboard"])
async def fleet_overview(request: Request) -> dict[str, Any]:
    """Racks, nodes and GPUs with their latest utilization and temperature."""
    from dcops.dashboard.overview import fleet_overview as build

    services: Services = request.app.state.services
    now_ms = int(services.clock.now() * 1000)
    overview: dict[str, Any] = await run_in_threadpool(build, services.inventory,
                                                       services.store, now_ms)
    return overview

