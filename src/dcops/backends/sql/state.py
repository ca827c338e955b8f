"""The state store: where dcops keeps its inventory, API tokens, audit log, notes, the
alert journal, silences, the notification log, the delivery outbox, the scheduler's jobs,
remediation plans and incidents, and backup runs.

`open_state(url)` opens SQLite (the default, one file in the data directory) or
PostgreSQL (`postgresql+psycopg://user@host/db`, for a control plane shared by several
machines), brings its schema to the newest Alembic revision, and hands back the
stores. `memory_state()` gives the in-memory twins, for tests and the simulator.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool

from dcops.access.store import AuditLog, MemoryAuditLog, MemoryTokenStore, TokenStore
from dcops.alerts.journal import AlertJournal, MemoryAlertJournal
from dcops.alerts.notifylog import MemoryNotificationLog, NotificationLog
from dcops.alerts.outbox import MemoryOutbox, Outbox
from dcops.alerts.silences import MemorySilenceStore, SilenceStore
from dcops.backends.sql.access import SqlAuditLog, SqlTokenStore
from dcops.backends.sql.alerts import SqlAlertJournal
from dcops.backends.sql.backup import SqlBackupRunStore
from dcops.backends.sql.inventory import SqlInventory
from dcops.backends.sql.jobs import SqlJobStore
from dcops.backends.sql.meta import MemoryMeta, MetaStore, SqlMeta
from dcops.backends.sql.notify import SqlNotificationLog, SqlOutbox, SqlSilenceStore
from dcops.backends.sql.remediation import SqlRemediationStore
from dcops.backup.runs import BackupRunStore, MemoryBackupRunStore
from dcops.core.errors import Invalid, Unavailable
from dcops.fleet.inventory import Inventory
from dcops.fleet.memory import MemoryInventory
from dcops.remediation.store import MemoryRemediationStore, RemediationStore
from dcops.scheduling.store import JobStore, MemoryJobStore

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
"""The Alembic script directory shipped inside the package."""

_MIGRATION_LOCK = 0x64636F7073  # "dcops": one PostgreSQL advisory lock for schema changes


@dataclass(frozen=True)
class StateStore:
    """Every store of dcops's state, opened together and closed together."""

    inventory: Inventory
    tokens: TokenStore
    audit: AuditLog
    meta: MetaStore
    alerts: AlertJournal
    silences: SilenceStore
    notification_log: NotificationLog
    outbox: Outbox
    jobs: JobStore = field(default_factory=MemoryJobStore)
    remediation: RemediationStore = field(default_factory=MemoryRemediationStore)
    backup_runs: BackupRunStore = field(default_factory=MemoryBackupRunStore)
    url: str = "memory://"
    """Where the state lives, with any password hidden."""
    engine: Engine | None = field(default=None, repr=False)
    """The SQLAlchemy engine behind the SQL stores; None for memory."""
    _on_close: Callable[[], None] = field(default=lambda: None, repr=False)

    def close(self) -> None:
        """Release connections; the stores must not be used afterwards."""
        self._on_close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def memory_state() -> StateStore:
    """A state store in process memory that vanishes when the process ends."""
    return StateStore(MemoryInventory(), MemoryTokenStore(), MemoryAuditLog(), MemoryMeta(),
                      MemoryAlertJournal(), MemorySilenceStore(), MemoryNotificationLog(),
                      MemoryOutbox())


def open_state(url: str) -> StateStore:
    """Open the SQL state store at `url` and migrate its schema to the newest revision."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    except OperationalError as exc:
        engine.dispose()
        raise Unavailable(f"cannot reach the state database: {exc.orig}",
                          where=_safe(engine.url),
                          hint="check storage.state_url and that the database is up") from None
    except BaseException:
        engine.dispose()
        raise
    log.info("state store open at %s", _safe(engine.url))
    return StateStore(SqlInventory(engine), SqlTokenStore(engine), SqlAuditLog(engine),
                      SqlMeta(engine), SqlAlertJournal(engine), SqlSilenceStore(engine),
                      SqlNotificationLog(engine), SqlOutbox(engine), SqlJobStore(engine),
                      SqlRemediationStore(engine), SqlBackupRunStore(engine),
                      _safe(engine.url), engine, engine.dispose)


def make_engine(url: str) -> Engine:
    """An engine for a SQLite or PostgreSQL URL, set up the way the state store needs."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_engine(parsed, pool_pre_ping=True)


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise Invalid(f"{url!r} is not a database URL", where="storage.state_url",
                      hint="use sqlite:///path/state.db or postgresql+psycopg://...") from None
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if parsed.drivername in ("postgres", "postgresql"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    if backend == "sqlite":
        return parsed
    raise Invalid(f"unsupported database {backend!r}", where="storage.state_url",
                  hint="dcops keeps state in SQLite or PostgreSQL")


def _sqlite_engine(url: URL) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        engine = create_engine(url, poolclass=StaticPool,
                               connect_args={"check_same_thread": False})
    else:
        Path(str(url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def alembic_config() -> Config:
    """Alembic settings pointing at the migrations inside the package; no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision`, in one transaction."""
    _migrate(engine, lambda config: command.upgrade(config, revision))


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Undo migrations down to `revision` ("base" drops every table)."""
    _migrate(engine, lambda config: command.downgrade(config, revision))


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it has no dcops schema."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _migrate(engine: Engine, step: Callable[[Config], None]) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        step(config)


def _safe(url: URL) -> str:
    return url.render_as_string(hide_password=True)
