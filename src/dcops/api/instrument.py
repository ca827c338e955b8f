"""Request counts and latencies on /metrics, per route template (never per raw path)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    """ASGI middleware: dcops_http_requests_total and dcops_http_request_duration_seconds."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("dcops_http_requests", "HTTP requests answered",
                                ["method", "route", "code"], registry=registry)
        self.duration = Histogram("dcops_http_request_duration_seconds",
                                  "Time to answer an HTTP request", ["route"],
                                  buckets=BUCKETS, registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _route_of(scope)
            self.requests.labels(scope["method"], route, str(status[0])).inc()
            self.duration.labels(route).observe(time.perf_counter() - start)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
