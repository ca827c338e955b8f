"""Token endpoints (admin only): create, list, revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from dcops.access.model import AuditRecord, Role, Token
from dcops.api.auth import TokenCache, require
from dcops.wiring import Services

router = APIRouter(prefix="/api/v1/tokens", tags=["access"],
                   dependencies=[Depends(require(Role.ADMIN))])


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.VIEWER
    expires_in_s: float | None = Field(None, gt=0)


def _public(token: Token) -> dict[str, Any]:
    return {"id": token.id, "name": token.name, "role": token.role.value,
            "created_at": token.created_at, "expires_at": token.expires_at,
            "revoked": token.revoked}


def _audit(request: Request, action: str, target: str, **details: Any) -> None:
    services: Services = request.app.state.services
    actor: Token = request.state.token
    services.audit.record(AuditRecord(services.clock.now(), f"token:{actor.name}", action,
                                      target, details))


@router.get("")
def list_tokens(request: Request) -> list[dict[str, Any]]:
    services: Services = request.app.state.services
    return [_public(t) for t in services.tokens.list()]


@router.post("", status_code=201)
def create_token(request: Request, body: TokenIn) -> dict[str, Any]:
    """Create a token; the secret is in this response only and never stored."""
    services: Services = request.app.state.services
    now = services.clock.now()
    expires = now + body.expires_in_s if body.expires_in_s else None
    token, secret = services.tokens.create(body.name, body.role, now, expires)
    _audit(request, "token.create", f"token/{token.id}", role=token.role.value,
           name=token.name)
    return _public(token) | {"secret": secret}


@router.delete("/{token_id}")
def revoke_token(request: Request, token_id: str) -> dict[str, Any]:
    services: Services = request.app.state.services
    token = services.tokens.revoke(token_id)
    cache: TokenCache = request.app.state.token_cache
    cache.clear()
    _audit(request, "token.revoke", f"token/{token.id}")
    return _public(token)
