"""Protocols for token and audit storage, with in-memory twins."""

from __future__ import annotations

import hmac
import threading
from typing import Protocol

from dcops.access.model import (
    AuditRecord,
    Role,
    Token,
    hash_secret,
    new_token_secret,
    token_id_of,
)
from dcops.core.errors import NotFound


class TokenStore(Protocol):
    """Where API tokens are kept, hashed."""

    def create(self, name: str, role: Role, now: float, expires_at: float | None = None
               ) -> tuple[Token, str]:
        """Make a token; returns it and its secret, which is never stored or shown again."""
        ...

    def verify(self, secret: str, now: float) -> Token | None:
        """The usable token with this secret, or None."""
        ...

    def list(self) -> list[Token]: ...

    def revoke(self, token_id: str) -> Token: ...


class AuditLog(Protocol):
    """Append-only record of changes."""

    def record(self, entry: AuditRecord) -> AuditRecord: ...

    def list(self, limit: int = 100, target: str | None = None) -> list[AuditRecord]: ...


class MemoryTokenStore:
    """TokenStore in process memory."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    def create(self, name: str, role: Role, now: float, expires_at: float | None = None
               ) -> tuple[Token, str]:
        token_id, secret = new_token_secret()
        token = Token(token_id, name, role, hash_secret(secret), now, expires_at)
        with self._lock:
            self._tokens[token_id] = token
        return token, secret

    def verify(self, secret: str, now: float) -> Token | None:
        token_id = token_id_of(secret)
        if token_id is None:
            return None
        with self._lock:
            token = self._tokens.get(token_id)
        if token is None or not hmac.compare_digest(token.secret_hash, hash_secret(secret)):
            return None
        return token if token.usable(now) else None

    def list(self) -> list[Token]:
        with self._lock:
            return sorted(self._tokens.values(), key=lambda t: t.created_at)

    def revoke(self, token_id: str) -> Token:
        with self._lock:
            token = self._tokens.get(token_id)
            if token is None:
                raise NotFound("token", token_id)
            revoked = Token(token.id, token.name, token.role, token.secret_hash,
                            token.created_at, token.expires_at, True)
            self._tokens[token_id] = revoked
            return revoked


class MemoryAuditLog:
    """AuditLog in process memory."""

    def __init__(self) -> None:
        self._entries: list[AuditRecord] = []
        self._lock = threading.Lock()

    def record(self, entry: AuditRecord) -> AuditRecord:
        with self._lock:
            stored = AuditRecord(entry.at, entry.actor, entry.action, entry.target,
                                 dict(entry.details), len(self._entries) + 1)
            self._entries.append(stored)
            return stored

    def list(self, limit: int = 100, target: str | None = None) -> list[AuditRecord]:
        with self._lock:
            chosen = [e for e in self._entries if target is None or e.target == target]
        return list(reversed(chosen))[:limit]
