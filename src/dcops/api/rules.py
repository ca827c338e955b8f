"""Rules and alerts in Prometheus's HTTP API shapes (``/api/v1/rules``, ``/api/v1/alerts``),
so Grafana's alert views and scripts written for Prometheus read dcops unchanged; and
``POST /-/reload`` to read the rule files again now."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from dcops.access.model import Role
from dcops.alerts.model import Alert, AlertingRule, AlertState, RecordingRule
from dcops.api.auth import require
from dcops.core.errors import DcopsError, Invalid
from dcops.query.result import format_exponent
from dcops.wiring import Services

router = APIRouter(tags=["alerts"])


def rfc3339(ms: int | None) -> str:
    """RFC 3339 in UTC, as Prometheus writes times; the zero time when never."""
    if ms is None:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _value(value: float) -> str:
    """An alert's value as Prometheus writes it: Go's ``FormatFloat(v, 'e', -1, 64)``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format_exponent(value) if value else "0e+00"


def _num(value: float) -> float | int:
    """A number as Go's JSON writes a float64: whole numbers without a fraction."""
    return int(value) if float(value).is_integer() else value


def alert_json(alert: Alert) -> dict[str, Any]:
    return {"labels": dict(alert.labels), "annotations": alert.annotations,
            "state": alert.state.value, "activeAt": rfc3339(alert.active_at_ms),
            "value": _value(alert.value)}


def _rule_json(services: Services, group_key: tuple[str, str],
               rule: AlertingRule | RecordingRule) -> dict[str, Any]:
    run = services.rules.manager.runs[group_key]
    evaluator = run.evaluator
    name = rule.record if isinstance(rule, RecordingRule) else rule.name
    health = evaluator.health.get(name)
    common: dict[str, Any] = {
        "name": name, "query": rule.expr,
        "health": "unknown" if health is None else ("err" if health.error else "ok"),
        "evaluationTime": _num(run.duration_s),
        "lastEvaluation": rfc3339(health.last_eval_ms if health else None)}
    if health is not None and health.error:  # Prometheus leaves out an empty lastError
        common["lastError"] = health.error
    if isinstance(rule, RecordingRule):
        return {**common, **({"labels": rule.labels} if rule.labels else {}),
                "type": "recording"}
    alerts = [a for a in evaluator.alerts.get(rule.name, {}).values()
              if a.state is not AlertState.INACTIVE]
    state = "firing" if any(a.state is AlertState.FIRING for a in alerts) else \
        "pending" if alerts else "inactive"
    return {"state": state, **common, "duration": _num(rule.for_s),
            "keepFiringFor": _num(rule.keep_firing_for_s), "labels": rule.labels,
            "annotations": rule.annotations, "alerts": [alert_json(a) for a in alerts],
            "type": "alerting"}


@router.get("/api/v1/rules", dependencies=[Depends(require(Role.VIEWER))])
async def rules(request: Request, type: str | None = None) -> dict[str, Any]:
    """Rule groups with each rule's health and alerts; ``type=alert`` or ``type=record``."""
    services: Services = request.app.state.services
    if type not in (None, "", "alert", "record"):
        raise Invalid(f"unsupported type {type!r}", where="type", hint="alert or record")
    groups = []
    for key, run in services.rules.manager.runs.items():
        group = run.evaluator.group
        chosen = [r for r in group.rules if not type
                  or (type == "alert") == isinstance(r, AlertingRule)]
        groups.append({"name": group.name, "file": key[0],
                       "rules": [_rule_json(services, key, r) for r in chosen],
                       "interval": _num(group.interval_s), "limit": 0,
                       "evaluationTime": _num(run.duration_s),
                       "lastEvaluation": rfc3339(run.last_eval_ms)})
    return {"status": "success", "data": {"groups": groups}}


@router.get("/api/v1/alerts", dependencies=[Depends(require(Role.VIEWER))])
async def alerts(request: Request) -> dict[str, Any]:
    """Every pending and firing alert."""
    services: Services = request.app.state.services
    return {"status": "success",
            "data": {"alerts": [alert_json(a) for a in services.rules.manager.alerts()]}}


@router.post("/-/reload", dependencies=[Depends(require(Role.OPERATOR))])
async def reload(request: Request) -> dict[str, Any]:
    """Read the rule files again now (they are also picked up when they change)."""
    services: Services = request.app.state.services
    try:
        await run_in_threadpool(services.rules.reload)
    except DcopsError as exc:
        raise Invalid(f"rules not reloaded, the loaded rules stay: {exc.message}",
                      where=exc.where) from None
    groups = services.rules.manager.runs
    return {"groups": len(groups),
            "rules": sum(len(r.evaluator.group.rules) for r in groups.values())}

