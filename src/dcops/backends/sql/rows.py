"""Helpers shared by the SQL stores: dialect-aware upsert and integrity-error mapping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(conn: Connection, table: Table, values: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Insert `values`, or replace the row whose `keys` columns match, in one statement."""
    changed = {k: v for k, v in values.items() if k not in keys}
    name = conn.dialect.name
    if name == "postgresql":
        pg = postgresql.insert(table).values(**values)
        stmt: Any = (pg.on_conflict_do_update(index_elements=list(keys), set_=changed)
                     if changed else pg.on_conflict_do_nothing(index_elements=list(keys)))
    elif name == "sqlite":
        lite = sqlite.insert(table).values(**values)
        stmt = (lite.on_conflict_do_update(index_elements=list(keys), set_=changed)
                if changed else lite.on_conflict_do_nothing(index_elements=list(keys)))
    else:  # pragma: no cover - open_state accepts only SQLite and PostgreSQL
        raise NotImplementedError(f"upsert on {name}")
    conn.execute(stmt)
