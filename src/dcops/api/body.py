"""Reading request bodies with a size limit and the encodings peers use."""

from __future__ import annotations

import json
import zlib
from typing import Any

from fastapi import Request

from dcops.core.errors import Invalid, TooLarge


async def read_body(request: Request) -> bytes:
    """The raw body, refusing anything over the configured limit before reading it all."""
    limit = int(request.app.state.services.settings.server.max_body_mb * 1024 * 1024)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {declared} bytes is over the {limit}-byte limit",
                       hint="send smaller batches or raise server.max_body_mb")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body is over the {limit}-byte limit",
                           hint="send smaller batches or raise server.max_body_mb")
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip(body: bytes, limit: int) -> bytes:
    try:
        out = zlib.decompressobj(wbits=31).decompress(body, limit + 1)
    except zlib.error as exc:
        raise Invalid(f"body is not valid gzip: {exc}", where="Content-Encoding") from None
    if len(out) > limit:
        raise TooLarge(f"decompressed body is over the {limit}-byte limit")
    return out


def parse_json(body: bytes, request: Request) -> Any:
    limit = int(request.app.state.services.settings.server.max_body_mb * 1024 * 1024)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        body = gunzip(body, limit)
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise Invalid("body is not UTF-8 JSON", where="body") from None
    except json.JSONDecodeError as exc:
        raise Invalid(f"invalid JSON: {exc.msg}",
                      where=f"body line {exc.lineno} column {exc.colno}") from None

