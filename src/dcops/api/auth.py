"""Bearer-token authentication and role checks for every API route."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dcops.access.model import Role, Token
from dcops.core.errors import Forbidden, Unauthorized
from dcops.wiring import Services

CACHE_TTL_S = 5.0
"""How long a verified token is trusted without asking the store again (revocation lag)."""


class TokenCache:
    """Verified tokens by secret hash, so hot ingest paths skip the state store."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Token, float]] = {}
        self._lock = threading.Lock()

    def verify(self, services: Services, secret: str) -> Token | None:
        key = hashlib.sha256(secret.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        token = services.tokens.verify(secret, services.clock.now())
        if token is not None:
            with self._lock:
                if len(self._entries) > 10_000:
                    self._entries.clear()
                self._entries[key] = (token, now + CACHE_TTL_S)
        return token

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def bearer_secret(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("missing bearer token",
                           hint="send 'Authorization: Bearer <token>'; "
                                "dcops up wrote an admin token to <data dir>/admin.token")
    return secret.strip()


bearer_scheme = HTTPBearer(auto_error=False, description="a dcops API token")
"""Declares the bearer scheme in the OpenAPI document, so /docs has an Authorize button."""


def require(role: Role) -> Callable[..., Coroutine[Any, Any, Token]]:
    """A FastAPI dependency: the caller's token, which must have at least `role`."""

    async def dependency(request: Request, _: HTTPAuthorizationCredentials | None = Depends(
            bearer_scheme)) -> Token:
        services: Services = request.app.state.services
        cache: TokenCache = request.app.state.token_cache
        token = cache.verify(services, bearer_secret(request))
        if token is None:
            raise Unauthorized("invalid, expired or revoked token")
        if not token.role.allows(role):
            raise Forbidden(f"this needs role {role.value}; token {token.name!r} has "
                            f"{token.role.value}")
        request.state.token = token
        return token

    dependency.__name__ = f"require_{role.value}"
    return dependency
