"""Roles, tokens and audit records."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

TOKEN_PREFIX = "dcops_"


class Role(StrEnum):
    """What a token may do. Each role includes everything the ones before it may do."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class Token:
    """An API token as stored: its secret only as a SHA-256 hash."""

    id: str
    name: str
    role: Role
    secret_hash: str = field(repr=False)
    created_at: float
    expires_at: float | None = None
    revoked: bool = False

    def usable(self, now: float) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


def new_token_secret() -> tuple[str, str]:
    """Return (token id, full secret). The id is the public part and prefixes the secret."""
    token_id = secrets.token_hex(6)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def token_id_of(secret: str) -> str | None:
    """The id embedded in a secret, or None when it is not shaped like a dcops token."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    rest = secret[len(TOKEN_PREFIX):]
    token_id, sep, _ = rest.partition("_")
    return token_id if sep and token_id else None


def hash_secret(secret: str) -> str:
    """Tokens are 256-bit random strings, so one round of SHA-256 is the right hash (no salt)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One change to dcops's state: who did what to which object, and when."""

    at: float
    actor: str
    action: str
    target: str
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
