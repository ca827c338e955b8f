"""Alert history (``/api/v1/alerts/history``): every change of every alert and every
notification about it, newest first, from the state store."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from dcops.access.model import Role
from dcops.alerts.durations import parse_duration
from dcops.alerts.journal import AlertEvent
from dcops.api.auth import require
from dcops.api.rules import rfc3339
from dcops.wiring import Services

router = APIRouter(tags=["alerts"])

MAX_LIMIT = 10_000


def event_json(event: AlertEvent) -> dict[str, Any]:
    return {"id": event.id, "at": rfc3339(event.at_ms), "alertname": event.alertname,
            "fingerprint": event.fingerprint, "labels": event.labels, "event": event.event,
            "actor": event.actor, "value": event.value, "details": event.details}


@router.get("/api/v1/alerts/history", dependencies=[Depends(require(Role.VIEWER))])
async def history(request: Request, alertname: str | None = None,
                  fingerprint: str | None = None,
                  since: str | None = Query(None, description="a duration back from now, "
                                            "such as 1h or 7d"),
                  limit: int = Query(100, ge=1, le=MAX_LIMIT)) -> dict[str, Any]:
    """What happened to alerts: state changes (who: ``rules/<group>``) and notifications
    (who: ``receiver/<name>``), filtered by alert name, fingerprint and age."""
    services: Services = request.app.state.services
    since_ms = None
    if since:
        back_s = parse_duration(since, "since")
        since_ms = round((services.clock.now() - back_s) * 1000)
    events = await run_in_threadpool(
        services.alert_journal.history, alertname=alertname, fingerprint=fingerprint,
        since_ms=since_ms, limit=limit)
    return {"status": "success", "data": {"events": [event_json(e) for e in events]}}
