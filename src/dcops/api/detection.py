"""Anomaly detection: what runs, and the latest scores with what explains them.

``GET /api/v1/detection/detectors``: each configured detector, its kind and queries, how
many series it scores, how many alerts fire, and when it last ticked.
``GET /api/v1/detection/scores?selector=...``: the latest score of each series whose
``dcops_anomaly_score`` labels match the selector (``{node="node-01-02"}``,
``dcops_anomaly_score{detector="gpu-temperature-vs-peers"}``), highest first, with the
metrics that drove it and, for fleet detectors, how far each stood from its peers.
The score series themselves are in the PromQL API as ``dcops_anomaly_score``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from dcops.access.model import Role
from dcops.api.auth import require
from dcops.core.errors import Invalid, NotFound, Unavailable
from dcops.detection.service import DetectionService
from dcops.telemetry.model import Matcher
from dcops.wiring import Services

router = APIRouter(prefix="/api/v1/detection", tags=["detection"])
viewer = Depends(require(Role.VIEWER))


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _service(request: Request) -> DetectionService:
    service = _services(request).detection
    if service is None:
        raise Unavailable("anomaly detection is switched off", where="detection.enabled",
                          hint="set detection.enabled: true (with detectors) and restart")
    return service


def _matchers(selector: str | None) -> list[Matcher]:
    if not selector:
        return []
    from dcops.api.prom import PromError, parse_selector

    try:
        return parse_selector(selector)
    except PromError as exc:
        raise Invalid(exc.message.replace('invalid parameter "match[]": ', ""),
                      where="selector",
                      hint='a series selector, e.g. {node="node-01-01"}') from None


@router.get("/detectors", dependencies=[viewer])
def detectors(request: Request) -> dict[str, Any]:
    """Whether detection runs, and each detector's standing."""
    services = _services(request)
    cfg = services.settings.detection
    service = services.detection
    return {"enabled": service is not None, "interval_s": cfg.interval_s,
            "detectors": [] if service is None else service.status()}


@router.get("/scores", dependencies=[viewer])
def scores(request: Request,
           selector: str | None = Query(None, max_length=2000,
                                        description="series selector over the score labels"),
           detector: str | None = Query(None, max_length=100),
           min_score: float = Query(0.0, ge=0.0, le=1.0),
           limit: int = Query(100, ge=1, le=10_000)) -> dict[str, Any]:
    """The latest scores, highest first."""
    service = _service(request)
    if detector is not None and detector not in {r.spec.name for r in service.runners}:
        raise NotFound("detector", detector,
                       hint="GET /api/v1/detection/detectors lists them")
    found = service.scores(_matchers(selector), detector=detector, min_score=min_score,
                           limit=limit)
    return {"scores": found, "count": len(found)}
