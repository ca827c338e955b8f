"""SqlTokenStore and SqlAuditLog: API tokens and the audit trail in SQLite or PostgreSQL.

They behave like MemoryTokenStore and MemoryAuditLog in dcops.access.store: a token's
secret is kept only as its SHA-256 hash and compared in constant time; the audit log
is append-only and lists newest first.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from sqlalchemy import Engine, Row, select, update

from dcops.access.model import (
    AuditRecord,
    Role,
    Token,
    hash_secret,
    new_token_secret,
    token_id_of,
)
from dcops.backends.sql.schema import audit, tokens
from dcops.core.errors import NotFound

log = logging.getLogger(__name__)


class SqlTokenStore:
    """The TokenStore Protocol over the `tokens` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, name: str, role: Role, now: float, expires_at: float | None = None
               ) -> tuple[Token, str]:
        token_id, secret = new_token_secret()
        token = Token(token_id, name, Role(role), hash_secret(secret), now, expires_at)
        with self._engine.begin() as conn:
            conn.execute(tokens.insert().values(
                id=token.id, name=token.name, role=token.role.value,
                secret_hash=token.secret_hash, created_at=token.created_at,
                expires_at=token.expires_at, revoked=False))
        log.info("created token %s (%s) for %s", token.id, token.role.value, name)
        return token, secret

    def verify(self, secret: str, now: float) -> Token | None:
        token_id = token_id_of(secret)
        if token_id is None:
            return None
        with self._engine.connect() as conn:
            row = conn.execute(select(tokens).where(tokens.c.id == token_id)).first()
        if row is None:
            return None
        token = _to_token(row)
        if not hmac.compare_digest(token.secret_hash, hash_secret(secret)):
            return None
        return token if token.usable(now) else None

    def list(self) -> list[Token]:
        stmt = select(tokens).order_by(tokens.c.created_at, tokens.c.id)
        with self._engine.connect() as conn:
            return [_to_token(r) for r in conn.execute(stmt)]

    def revoke(self, token_id: str) -> Token:
        with self._engine.begin() as conn:
            row = conn.execute(update(tokens).where(tokens.c.id == token_id)
                               .values(revoked=True).returning(*tokens.c)).first()
        if row is None:
            raise NotFound("token", token_id)
        log.info("revoked token %s", token_id)
        return _to_token(row)


class SqlAuditLog:
    """The AuditLog Protocol over the `audit` table; ids count up from 1."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, entry: AuditRecord) -> AuditRecord:
        details = dict(entry.details)
        with self._engine.begin() as conn:
            new_id = conn.execute(audit.insert().values(
                at=entry.at, actor=entry.actor, action=entry.action, target=entry.target,
                details=details).returning(audit.c.id)).scalar_one()
        return AuditRecord(entry.at, entry.actor, entry.action, entry.target, details, new_id)

    def list(self, limit: int = 100, target: str | None = None) -> list[AuditRecord]:
        stmt = select(audit).order_by(audit.c.id.desc()).limit(max(limit, 0))
        if target is not None:
            stmt = stmt.where(audit.c.target == target)
        with self._engine.connect() as conn:
            return [_to_record(r) for r in conn.execute(stmt)]


def _to_token(row: Row[Any]) -> Token:
    return Token(row.id, row.name, Role(row.role), row.secret_hash, row.created_at,
                 row.expires_at, bool(row.revoked))


def _to_record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(row.at, row.actor, row.action, row.target, dict(row.details), row.id)
