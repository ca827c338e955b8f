"""The SQL state store: opening, migrations, persistence, and what it keeps on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text

from dcops.access.model import AuditRecord, Role
from dcops.backends.sql.schema import metadata, tokens
from dcops.backends.sql.state import (
    current_revision,
    downgrade,
    make_engine,
    open_state,
    upgrade,
)
from dcops.core.errors import Invalid, Unavailable
from dcops.fleet.model import Node, Site
from tests.fixtures.engines import free_port

TABLES = {"sites", "rooms", "racks", "nodes", "gpus", "tokens", "audit", "meta",
          "alert_events", "alert_states", "silences", "notification_log", "outbox", "jobs",
          "remediation_plans", "incidents", "backup_runs"}
HEAD = "0006"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.engines)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty SQLite file or PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    eng = make_engine(url)
    yield eng
    eng.dispose()


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(engine: Engine) -> None:
    assert current_revision(engine) is None and tables(engine) == set()
    upgrade(engine)
    assert current_revision(engine) == HEAD and tables(engine) == TABLES
    downgrade(engine, "base")
    assert current_revision(engine) is None and tables(engine) == set()
    upgrade(engine)
    assert current_revision(engine) == HEAD and tables(engine) == TABLES


def test_migrations_match_schema_module(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_state_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'dir' / 'state.db'}"
    with open_state(url) as state:
        state.inventory.add_site(Site("a"))
        state.inventory.add_node(Node("n1", labels={"k": "v"}))
        state.audit.record(AuditRecord(1.0, "me", "site.create", "site/a"))
        state.meta.set("admin_token_created", "yes")
    with open_state(url) as state:
        assert state.inventory.get_node("n1").labels == {"k": "v"}
        assert [s.name for s in state.inventory.list_sites()] == ["a"]
        assert state.audit.list()[0].action == "site.create"
        assert state.meta.get("admin_token_created") == "yes"


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    with open_state(f"sqlite:///{tmp_path / 'state.db'}") as state:
        assert state.engine is not None
        with state.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_in_memory_sqlite_url_works() -> None:
    with open_state("sqlite://") as state:
        state.inventory.add_site(Site("a"))
        assert state.inventory.get_site("a") == Site("a")


def test_token_secret_is_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with open_state(f"sqlite:///{path}") as state:
        _, secret = state.tokens.create("ops", Role.ADMIN, 1.0)
        assert state.engine is not None
        with state.engine.connect() as conn:
            rows = conn.execute(select(tokens)).all()
    assert len(rows) == 1 and all(secret not in str(v) for v in rows[0])
    assert secret.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())


@pytest.mark.parametrize("url", ["mysql://db/x", "not a url", "redis://localhost"])
def test_unsupported_urls_are_invalid(url: str) -> None:
    with pytest.raises(Invalid) as caught:
        open_state(url)
    assert caught.value.where == "storage.state_url"


def test_plain_postgresql_url_gets_psycopg_driver() -> None:
    engine = make_engine("postgresql://u@127.0.0.1:1/x")
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()


def test_unreachable_postgres_is_unavailable() -> None:
    with pytest.raises(Unavailable) as caught:
        open_state(f"postgresql://nobody:secret@127.0.0.1:{free_port()}/x?connect_timeout=2")
    assert "secret" not in str(caught.value)


@pytest.mark.engines
def test_postgres_state_is_shared_between_stores(postgres_url: str) -> None:
    with open_state(postgres_url) as first, open_state(postgres_url) as second:
        first.inventory.add_site(Site("shared"))
        assert second.inventory.get_site("shared") == Site("shared")


def test_threads_share_one_sqlite_store(tmp_path: Path) -> None:
    """API handlers run in a thread pool: concurrent writes must all land, ids unique."""
    from concurrent.futures import ThreadPoolExecutor

    with open_state(f"sqlite:///{tmp_path / 'state.db'}") as state:
        state.inventory.add_node(Node("n1"))

        def work(worker: int) -> None:
            for i in range(25):
                state.audit.record(AuditRecord(float(i), f"w{worker}", "x", "node/n1"))
                state.inventory.touch_node("n1", float(worker * 100 + i))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(work, range(8)))
        ids = [e.id or 0 for e in state.audit.list(limit=1000)]
        assert sorted(ids) == list(range(1, 201))
