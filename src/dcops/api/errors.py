"""Every error becomes a JSON body that says what is wrong and where; never a traceback."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dcops.core.errors import DcopsError

log = logging.getLogger(__name__)


def _loc(loc: tuple[object, ...]) -> str:
    return ".".join(str(p) for p in loc)


def install_error_handlers(app: FastAPI) -> None:
    from dcops.api.prom import PromError

    @app.exception_handler(PromError)
    async def prom_error(request: Request, exc: PromError) -> JSONResponse:
        """Prometheus API routes answer errors in Prometheus's shape, for Grafana."""
        return JSONResponse(exc.to_prometheus_json(), status_code=exc.status)

    @app.exception_handler(DcopsError)
    async def dcops_error(request: Request, exc: DcopsError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"msg": "invalid request", "loc": ()}
        body = {"error": "invalid", "message": str(first.get("msg")),
                "where": _loc(tuple(first.get("loc", ()))),
                "details": [{"where": _loc(tuple(e.get("loc", ()))), "message": e.get("msg")}
                            for e in errors[:20]]}
        return JSONResponse(body, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "message": str(exc.detail)},
                            status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.exception("internal error %s on %s %s", error_id, request.method, request.url.path)
        return JSONResponse({"error": "internal", "message": "internal error",
                             "id": error_id}, status_code=500)
