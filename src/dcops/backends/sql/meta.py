"""The state store's own notes: small named values such as "admin token created".

MetaStore is the Protocol; MemoryMeta and SqlMeta (over the `meta` table) implement it.
"""

from __future__ import annotations

import threading
from typing import Protocol

from sqlalchemy import Engine, select

from dcops.backends.sql.rows import upsert
from dcops.backends.sql.schema import meta


class MetaStore(Protocol):
    """String values by key, kept with the rest of dcops's state."""

    def get(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        ...

    def set(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing any value there."""
        ...


class MemoryMeta:
    """MetaStore in process memory."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._values.get(key)

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._values[key] = value


class SqlMeta:
    """MetaStore over the `meta` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, key: str) -> str | None:
        with self._engine.connect() as conn:
            value: str | None = conn.execute(
                select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()
        return value

    def set(self, key: str, value: str) -> None:
        with self._engine.begin() as conn:
            upsert(conn, meta, {"key": key, "value": value}, ["key"])
