"""Helpers shared by the SQL stores: a dialect-aware upsert with its statements cached."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(conn: Connection, table: Table, values: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Insert `values`, or replace the row whose `keys` columns match, in one statement."""
    stmt = _upsert_statement(conn.dialect.name, table, tuple(values), tuple(keys))
    conn.execute(stmt, dict(values))


@functools.cache
def _upsert_statement(dialect: str, table: Table, columns: tuple[str, ...],
                      keys: tuple[str, ...]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE for `columns`, built once per shape."""
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:  # pragma: no cover - open_state accepts only SQLite and PostgreSQL
        raise NotImplementedError(f"upsert on {dialect}")
    changed = {c: stmt.excluded[c] for c in columns if c not in keys}
    if not changed:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=changed)
