"""The composition root: the only place that builds backends from settings."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from dcops.access.model import Role
from dcops.access.store import AuditLog, TokenStore
from dcops.core.clock import Clock, SystemClock
from dcops.fleet.inventory import Inventory
from dcops.fleet.registration import Registrar
from dcops.settings import Settings
from dcops.telemetry.ingest import Ingestor
from dcops.telemetry.store import MetricsStore, Retention

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin.token"
AGENT_TOKEN_FILE = "agent.token"


@dataclass
class Services:
    """Everything a running control plane uses, built once and closed once."""

    settings: Settings
    clock: Clock
    store: MetricsStore
    inventory: Inventory
    tokens: TokenStore
    audit: AuditLog
    registry: CollectorRegistry
    ingestor: Ingestor
    _closers: list[object] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.settings.storage.resolved_data_dir()

    def close(self) -> None:
        self.store.close()
        for closer in self._closers:
            close = getattr(closer, "close", None)
            if callable(close):
                close()


def retention_of(settings: Settings) -> Retention:
    return Retention(raw_s=settings.storage.retention_days * 86400,
                     rollup_s=settings.storage.rollup_retention_days * 86400)


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Open the embedded stores in the data directory (or the configured state URL)."""
    from dcops.backends.duckdb_store import DuckDBMetricsStore
    from dcops.backends.sql.state import open_state

    clock = clock or SystemClock()
    data_dir = settings.storage.resolved_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    state = open_state(settings.storage.resolved_state_url())
    store = DuckDBMetricsStore(data_dir / "metrics", retention_of(settings),
                               fsync=settings.storage.wal_fsync,
                               flush_interval_s=settings.storage.flush_interval_s, clock=clock)
    return _assemble(settings, clock, store, state.inventory, state.tokens, state.audit, [state])


def build_memory_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Everything in process memory: for tests."""
    from dcops.access.store import MemoryAuditLog, MemoryTokenStore
    from dcops.fleet.memory import MemoryInventory
    from dcops.telemetry.store import MemoryMetricsStore

    clock = clock or SystemClock()
    return _assemble(settings, clock, MemoryMetricsStore(retention_of(settings)),
                     MemoryInventory(), MemoryTokenStore(), MemoryAuditLog(), [])


def _assemble(settings: Settings, clock: Clock, store: MetricsStore, inventory: Inventory,
              tokens: TokenStore, audit: AuditLog, closers: list[object]) -> Services:
    registry = CollectorRegistry()
    registrar = Registrar(inventory, audit, clock)
    ingestor = Ingestor(store, registry, on_node_seen=registrar.seen)
    return Services(settings, clock, store, inventory, tokens, audit, registry, ingestor,
                    closers)


def ensure_token_file(services: Services, filename: str, name: str, role: Role) -> Path:
    """Create a token and write it (mode 0600) to `filename` in the data dir, once.

    If the file exists and its token still verifies, it is kept as it is.
    """
    path = services.data_dir / filename
    if path.exists():
        secret = path.read_text().strip()
        if services.tokens.verify(secret, services.clock.now()) is not None:
            return path
        log.warning("token in %s no longer valid; creating a new one", path)
    _, secret = services.tokens.create(name, role, services.clock.now())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return path
