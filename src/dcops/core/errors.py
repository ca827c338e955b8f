"""Errors that say what is wrong, where, and what to do.

Every error the API or CLI can show a user derives from DcopsError; the API maps
`status` to the HTTP status code and renders `to_dict()` as the body.
"""

from __future__ import annotations

from typing import Any


class DcopsError(Exception):
    """Base of every error a user may see."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.where:
            body["where"] = self.where
        if self.hint:
            body["hint"] = self.hint
        return body


class Invalid(DcopsError):
    """Input that cannot be accepted: a body, a file, a config value, an argument."""

    status = 400
    code = "invalid"


class NotFound(DcopsError):
    """A named thing that does not exist."""

    status = 404
    code = "not_found"

    def __init__(self, kind: str, id: object, *, hint: str | None = None) -> None:
        super().__init__(f"{kind} {id!r} not found", hint=hint)
        self.kind = kind
        self.id = id


class Conflict(DcopsError):
    """A change that clashes with what already exists."""

    status = 409
    code = "conflict"


class Unauthorized(DcopsError):
    """No credentials, or credentials that do not match a token."""

    status = 401
    code = "unauthorized"


class Forbidden(DcopsError):
    """Valid credentials whose role does not allow this action."""

    status = 403
    code = "forbidden"


class TooLarge(DcopsError):
    """A request body over the configured limit."""

    status = 413
    code = "too_large"


class Unavailable(DcopsError):
    """A dependency is not reachable right now; retrying later may work."""

    status = 503
    code = "unavailable"
