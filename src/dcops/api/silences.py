"""Silences and the dispatcher's alerts in Alertmanager's v2 API shapes, so `amtool`,
Grafana's Alertmanager data source and scripts written for Alertmanager work against dcops:
``GET/POST /api/v2/silences``, ``GET/DELETE /api/v2/silence/{id}``, ``GET /api/v2/alerts``
and ``GET /api/v2/alerts/groups``. Every change to a silence is audited with the token that
made it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dcops.access.model import Role, Token
from dcops.alerts.amcompat import am_matcher, from_am_matcher, rfc3339
from dcops.alerts.dispatchviews import AlertView
from dcops.alerts.matchers import Matcher, matches_all, parse_matchers
from dcops.alerts.silences import Silence
from dcops.api.auth import require
from dcops.wiring import Services

router = APIRouter(prefix="/api/v2", tags=["alerts"])


class MatcherIn(BaseModel):
    """One matcher as Alertmanager's API writes it."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    value: str
    # Alertmanager's field names, camelCase as its clients send them
    isRegex: bool = False
    isEqual: bool = True


class SilenceIn(BaseModel):
    """A new silence, or (with `id`) a change to one."""

    model_config = ConfigDict(extra="ignore")  # Alertmanager clients send status etc.
    id: str | None = None
    matchers: list[MatcherIn] = Field(min_length=1)
    startsAt: datetime
    endsAt: datetime
    createdBy: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1, max_length=10_000)


def silence_json(silence: Silence, now: float) -> dict[str, Any]:
    return {"id": silence.id, "status": {"state": silence.state(now).value},
            "updatedAt": rfc3339(silence.updated_at),
            "matchers": [am_matcher(m) for m in silence.matchers],
            "startsAt": rfc3339(silence.starts_at), "endsAt": rfc3339(silence.ends_at),
            "createdBy": silence.created_by, "comment": silence.comment}


def _seconds(when: datetime) -> float:
    """Unix seconds; a time without a zone is taken as UTC."""
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _actor(request: Request) -> str:
    token: Token = request.state.token
    return f"token:{token.name}"


def _filters(filter: list[str] | None) -> list[Matcher]:
    return [m for i, text in enumerate(filter or [])
            for m in parse_matchers(text, f"filter[{i}]")]


@router.get("/silences", dependencies=[Depends(require(Role.VIEWER))])
async def list_silences(request: Request, filter: list[str] | None = Query(None)
                        ) -> list[dict[str, Any]]:
    """Every silence, or those whose matchers include all of `filter` (as Alertmanager)."""
    services = _services(request)
    wanted = {str(m) for m in _filters(filter)}
    now = services.clock.now()
    found = await run_in_threadpool(services.silences.list, now)
    return [silence_json(s, now) for s in found if wanted <= {str(m) for m in s.matchers}]


@router.post("/silences", dependencies=[Depends(require(Role.OPERATOR))])
async def post_silence(request: Request, body: SilenceIn) -> dict[str, str]:
    """Create a silence, or change the one named by `id`; the silence's id."""
    services = _services(request)
    matchers = tuple(from_am_matcher(m.name, m.value, m.isRegex, m.isEqual, f"matchers[{i}]")
                     for i, m in enumerate(body.matchers))
    now = services.clock.now()
    args = (matchers, _seconds(body.startsAt), _seconds(body.endsAt), body.createdBy,
            body.comment, now)
    if body.id:
        silence = await run_in_threadpool(services.silences.update, body.id, *args,
                                          actor=_actor(request))
    else:
        silence = await run_in_threadpool(services.silences.add, *args,
                                          actor=_actor(request))
    return {"silenceID": silence.id}


@router.get("/silence/{silence_id}", dependencies=[Depends(require(Role.VIEWER))])
async def get_silence(request: Request, silence_id: str) -> dict[str, Any]:
    services = _services(request)
    silence = await run_in_threadpool(services.silences.get, silence_id)
    return silence_json(silence, services.clock.now())


@router.delete("/silence/{silence_id}", dependencies=[Depends(require(Role.OPERATOR))])
async def expire_silence(request: Request, silence_id: str) -> dict[str, Any]:
    """Expire a silence now (Alertmanager's ``DELETE``; the silence stays, expired)."""
    services = _services(request)
    silence = await run_in_threadpool(services.silences.expire, silence_id, _actor(request),
                                      services.clock.now())
    return silence_json(silence, services.clock.now())


def _view_json(view: AlertView) -> dict[str, Any]:
    body = view.to_dict()
    body["startsAt"] = rfc3339(view.alert.starts_at)
    body["endsAt"] = rfc3339(view.alert.ends_at)
    body["updatedAt"] = body["startsAt"]
    return body


@router.get("/alerts", dependencies=[Depends(require(Role.VIEWER))])
async def alerts(request: Request, filter: list[str] | None = Query(None),
                 active: bool = True, silenced: bool = True, inhibited: bool = True,
                 receiver: str | None = None) -> list[dict[str, Any]]:
    """The alerts the dispatcher holds, each with its receivers and why it is muted."""
    services = _services(request)
    wanted = _filters(filter)
    views = services.pipeline.alerts(services.clock.now())
    out = []
    for view in views:
        if not matches_all(wanted, view.alert.labels):
            continue
        if receiver and receiver not in view.receivers:
            continue
        muted_silence, muted_inhibit = bool(view.silenced_by), bool(view.inhibited_by)
        if (not active and not (muted_silence or muted_inhibit)) or \
                (not silenced and muted_silence) or (not inhibited and muted_inhibit):
            continue
        out.append(_view_json(view))
    return out


@router.get("/alerts/groups", dependencies=[Depends(require(Role.VIEWER))])
async def groups(request: Request) -> list[dict[str, Any]]:
    """Alert groups: labels, receiver and alerts, as Alertmanager lists them."""
    services = _services(request)
    return [{"labels": g.labels, "receiver": {"name": g.receiver},
             "alerts": [_view_json(a) for a in g.alerts]}
            for g in services.pipeline.groups(services.clock.now())]
