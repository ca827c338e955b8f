"""Remediation plans, incidents, the storm breaker, and health signals from outside.

``GET /api/v1/remediation/plans`` (``?live=true``), ``GET .../plans/{id}``,
``POST .../plans/{id}/approve``, ``POST .../plans/{id}/cancel``,
``POST /api/v1/remediation/preview`` (a dry run: what these signals would lead to),
``GET /api/v1/remediation/breaker``, ``POST .../breaker/close``,
``GET /api/v1/incidents`` (``?open=true``), ``GET /api/v1/incidents/{id}``,
``POST /api/v1/health/signals`` (events from a log shipper or a health check),
``GET /api/v1/health`` (every node's health) and ``GET /api/v1/health/nodes/{node}``.
Reading needs the viewer role, acting the operator role; every action is audited.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from dcops.access.model import AuditRecord, Role, Token
from dcops.api.auth import require
from dcops.core.errors import Unavailable
from dcops.health.model import Diagnosis, Evidence, Health, NodeHealth, Signal, SignalKind
from dcops.remediation.codec import incident_dict, plan_dict
from dcops.remediation.service import RemediationService
from dcops.wiring import Services

router = APIRouter(prefix="/api/v1", tags=["remediation"])
viewer = Depends(require(Role.VIEWER))
operator = Depends(require(Role.OPERATOR))

MAX_SIGNALS = 10_000


class SignalIn(BaseModel):
    """One observation about a node or GPU (see `dcops.health.model.Signal`)."""

    model_config = ConfigDict(extra="forbid")
    node: str = Field(min_length=1, max_length=200)
    kind: SignalKind
    at: float | None = Field(None, description="Unix seconds; default: now")
    gpu: int | None = Field(None, ge=0, le=1024)
    code: int | None = Field(None, ge=0, le=100_000, description="the Xid, for kind xid")
    value: float = 1.0
    job: str | None = Field(None, max_length=200)
    peer: str | None = Field(None, max_length=200, description="NVLink peer: node/gpu")
    detail: str = Field("", max_length=2000)

    def signal(self, now: float, source: str) -> Signal:
        return Signal(now if self.at is None else self.at, self.node, self.kind, self.gpu,
                      self.code, self.value, self.job, self.peer, self.detail, source)


class SignalsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signals: list[SignalIn] = Field(min_length=1, max_length=MAX_SIGNALS)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500)


def _service(request: Request) -> RemediationService:
    services: Services = request.app.state.services
    if services.remediation is None:
        raise Unavailable("remediation is switched off", where="remediation.enabled",
                          hint="set remediation.enabled: true and restart")
    return services.remediation


def _actor(request: Request) -> str:
    token: Token = request.state.token
    return f"token:{token.name}"


def _now(request: Request) -> float:
    services: Services = request.app.state.services
    return services.clock.now()


@router.get("/remediation/plans", dependencies=[viewer])
def plans(request: Request, live: bool = False,
          limit: int = Query(200, ge=1, le=10_000)) -> list[dict[str, Any]]:
    """Plans, newest first; `live`: those still running or holding a node out."""
    store = _service(request).remediator.store
    return [plan_dict(p) for p in store.plans(live=live, limit=limit)]


@router.get("/remediation/plans/{plan_id}", dependencies=[viewer])
def plan(request: Request, plan_id: str) -> dict[str, Any]:
    return plan_dict(_service(request).remediator.store.plan(plan_id))


@router.post("/remediation/plans/{plan_id}/approve", dependencies=[operator])
def approve(request: Request, plan_id: str) -> dict[str, Any]:
    """Approve the plan's steps that wait for an operator (or a rate limit or cooldown);
    they run at once. The drain budget and an open breaker still hold."""
    return plan_dict(_service(request).approve(plan_id, _actor(request)))


@router.post("/remediation/plans/{plan_id}/cancel", dependencies=[operator])
def cancel(request: Request, plan_id: str, body: CancelIn | None = None) -> dict[str, Any]:
    """Stop a plan; a node it drained stays drained until someone resumes it."""
    reason = body.reason if body is not None else ""
    return plan_dict(_service(request).cancel(plan_id, _actor(request), reason))


@router.post("/remediation/preview", dependencies=[viewer])
def preview(request: Request, body: SignalsIn) -> list[dict[str, Any]]:
    """A dry run: the diagnoses these signals would lead to on a fresh diagnoser, and the
    plan each would get now (guardrails and modes applied); nothing is stored or done."""
    now = _now(request)
    found = _service(request).preview([s.signal(now, "preview") for s in body.signals])
    return [{"diagnosis": diagnosis_json(d), "plan": plan_dict(p)} for d, p in found]


@router.get("/remediation/breaker", dependencies=[viewer])
def breaker(request: Request) -> dict[str, Any]:
    remediator = _service(request).remediator
    guard, now = remediator.guardrails, _now(request)
    return {"open": guard.tripped_at is not None, "tripped_at": guard.tripped_at,
            "flagged_in_window": guard.flagged_in_window(now),
            "out_nodes": sorted(remediator.out),
            "budget": guard.settings.budget(remediator.fleet_nodes())}


@router.post("/remediation/breaker/close", dependencies=[operator])
def close_breaker(request: Request) -> dict[str, Any]:
    """Close the storm breaker: automatic steps run again."""
    _service(request).close_breaker(_actor(request))
    return breaker(request)


@router.get("/incidents", dependencies=[viewer])
def incidents(request: Request, open_only: bool = Query(False, alias="open"),
              limit: int = Query(200, ge=1, le=10_000)) -> list[dict[str, Any]]:
    """Open incidents first, the most GPU-hours at risk first; then the newest."""
    store = _service(request).remediator.store
    return [incident_dict(i) for i in store.incidents(open_only=open_only, limit=limit)]


@router.get("/incidents/{incident_id}", dependencies=[viewer])
def incident(request: Request, incident_id: str) -> dict[str, Any]:
    return incident_dict(_service(request).remediator.store.incident(incident_id))


@router.post("/health/signals", dependencies=[operator], status_code=202)
def signals(request: Request, body: SignalsIn) -> dict[str, Any]:
    """Signals from outside the telemetry (a log shipper's Xid lines, a health check);
    they are diagnosed at once."""
    services: Services = request.app.state.services
    now = _now(request)
    accepted = _service(request).submit(s.signal(now, "api") for s in body.signals)
    services.audit.record(AuditRecord(now, _actor(request), "health.signals", "health",
                                      {"count": accepted}))
    return {"accepted": accepted}


@router.get("/health", dependencies=[viewer])
def health(request: Request, worst: bool = False) -> list[dict[str, Any]]:
    """Every node the diagnoser has seen; `worst`: only those not healthy."""
    found = _service(request).health()
    return [node_json(n) for n in found if not worst or n.health is not Health.HEALTHY]


@router.get("/health/nodes/{node}", dependencies=[viewer])
def node_health(request: Request, node: str) -> dict[str, Any]:
    """One node: its health, each GPU's, and the evidence."""
    return node_json(_service(request).node_health(node), evidence=True)


def node_json(node: NodeHealth, *, evidence: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "node": node.node, "health": node.health.value, "remedy": node.remedy.value,
        "cause": node.cause, "since": node.since,
        "gpus": [{"index": g.index, "health": g.health.value, "remedy": g.remedy.value,
                  "cause": g.cause, "since": g.since,
                  **({"evidence": [_evidence(e) for e in g.evidence]} if evidence else {})}
                 for g in node.gpus]}
    if evidence:
        body["evidence"] = [_evidence(e) for e in node.evidence]
    return body


def _evidence(item: Evidence) -> dict[str, Any]:
    signal = item.signal
    return {"at": signal.at, "kind": signal.kind.value, "gpu": signal.gpu, "code": signal.code,
            "job": signal.job, "summary": item.summary, "counted": item.counted,
            "source": signal.source}


def diagnosis_json(diagnosis: Diagnosis) -> dict[str, Any]:
    return {"node": diagnosis.node, "gpu": diagnosis.gpu, "health": diagnosis.health.value,
            "remedy": diagnosis.remedy.value, "cause": diagnosis.cause, "at": diagnosis.at,
            "jobs": list(diagnosis.jobs),
            "evidence": [_evidence(e) for e in diagnosis.evidence]}
