"""The FastAPI application: routes, auth, errors, docs (served offline) and /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import dcops
from dcops.api import (
    alerts,
    backup,
    detection,
    ingest,
    inventory,
    jobs,
    prom,
    remediation,
    rules,
    samples,
    silences,
    tokens,
)
from dcops.api.auth import TokenCache
from dcops.api.errors import install_error_handlers
from dcops.api.instrument import RequestMetrics
from dcops.dashboard.routes import router as dashboard_router
from dcops.wiring import Services


class StoreCollector(Collector):
    """Exposes the metrics store's own counts on /metrics."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Any:
        for key, value in self.services.store.stats().items():
            yield GaugeMetricFamily(f"dcops_store_{key}", f"Metrics store: {key}", value=value)


def create_app(services: Services) -> FastAPI:
    app = FastAPIOffline(
        title="dcops", version=dcops.__version__,
        description="Operations control plane for GPU datacenters. Every route except "
                    "/healthz, /metrics and the dashboard's static files needs "
                    "`Authorization: Bearer <token>`.",
    )
    app.state.services = services
    app.state.token_cache = TokenCache()
    services.registry.register(StoreCollector(services))
    install_error_handlers(app)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": dcops.__version__}

    @app.get("/metrics", tags=["meta"], response_class=Response)
    def metrics(request: Request) -> Response:
        return Response(generate_latest(services.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(tokens.router)
    app.include_router(ingest.router)
    app.include_router(samples.router)
    app.include_router(inventory.router)
    app.include_router(prom.router)
    app.include_router(alerts.router)
    app.include_router(silences.router)
    app.include_router(rules.router)
    app.include_router(jobs.router)
    app.include_router(remediation.router)
    app.include_router(detection.router)
    app.include_router(backup.router)
    app.include_router(dashboard_router)
    app.add_middleware(RequestMetrics, registry=services.registry)
    return app
