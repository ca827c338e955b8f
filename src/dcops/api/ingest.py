"""Ingest endpoints: the agent's push and Prometheus remote_write 1.0."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from dcops.access.model import Role
from dcops.api.auth import require
from dcops.api.body import parse_json, read_body
from dcops.core.errors import Invalid
from dcops.telemetry.push import parse_push
from dcops.telemetry.remote_write import decode_write_request
from dcops.wiring import Services

router = APIRouter(tags=["ingest"])


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@router.post("/api/v1/push", dependencies=[Depends(require(Role.OPERATOR))])
async def push(request: Request) -> dict[str, Any]:
    """Accept one batch from `dcops agent` (JSON, optionally gzip)."""
    services = _services(request)
    raw = await read_body(request)
    try:
        body, batch = parse_push(parse_json(raw, request))
    except Invalid:
        services.ingestor.rejected("push")
        raise
    gpus = [g.model_dump() for g in body.gpus]
    result = await run_in_threadpool(services.ingestor.accept_push, body.agent_id, body.seq,
                                     body.node, batch, gpus)
    return {"accepted": result.accepted, "duplicate": result.duplicate, "seq": body.seq}


@router.post("/api/v1/write", dependencies=[Depends(require(Role.OPERATOR))],
             status_code=204, response_class=Response)
async def remote_write(request: Request) -> Response:
    """Prometheus remote_write 1.0: snappy-compressed protobuf WriteRequest."""
    services = _services(request)
    raw = await read_body(request)
    encoding = request.headers.get("content-encoding", "snappy").lower()
    if encoding not in ("snappy", ""):
        services.ingestor.rejected("remote_write")
        raise Invalid(f"unsupported Content-Encoding {encoding!r}", where="Content-Encoding",
                      hint="remote_write 1.0 bodies are snappy-compressed")
    try:
        batch = decode_write_request(raw)
    except Invalid:
        services.ingestor.rejected("remote_write")
        raise
    await run_in_threadpool(services.ingestor.accept, batch, "remote_write")
    return Response(status_code=204)
