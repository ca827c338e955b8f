"""The ingest path shared by every way samples arrive: agent push, remote_write, scrape, demo.

It hands batches to the metrics store (durable on return), counts what came in, drops
agent batches it has already acknowledged (same agent, same or older seq), and tells
an observer which nodes reported so the inventory can register them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter

from dcops.telemetry.model import Batch
from dcops.telemetry.store import MetricsStore

log = logging.getLogger(__name__)

NodeSeen = Callable[[str, Sequence[dict[str, object]]], None]


@dataclass
class IngestResult:
    """What happened to one batch."""

    accepted: int
    duplicate: bool = False


@dataclass
class Ingestor:
    """Accepts batches into the store; one per server."""

    store: MetricsStore
    registry: CollectorRegistry
    on_node_seen: NodeSeen | None = None
    on_batch: Callable[[Batch], object] | None = None
    """Sees every stored batch (health diagnosis looks for fault series in it)."""
    _last_seq: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.samples_total = Counter(
            "dcops_ingest_samples", "Samples accepted into the metrics store",
            ["source"], registry=self.registry)
        self.batches_total = Counter(
            "dcops_ingest_batches", "Batches accepted into the metrics store",
            ["source"], registry=self.registry)
        self.duplicates_total = Counter(
            "dcops_ingest_duplicate_batches", "Agent batches dropped as already acknowledged",
            registry=self.registry)
        self.rejected_total = Counter(
            "dcops_ingest_rejected", "Requests rejected as malformed", ["source"],
            registry=self.registry)

    def accept(self, batch: Batch, source: str) -> IngestResult:
        """Store `batch`; returns once it is durable."""
        if len(batch):
            self.store.append(batch)
            if self.on_batch is not None:
                try:
                    self.on_batch(batch)
                except Exception:  # diagnosis must never lose an acknowledged batch
                    log.exception("health diagnosis could not read a batch from %s", source)
        self.samples_total.labels(source).inc(len(batch))
        self.batches_total.labels(source).inc()
        return IngestResult(len(batch))

    def accept_push(self, agent_id: str, seq: int, node: str, batch: Batch,
                    gpus: Sequence[dict[str, object]]) -> IngestResult:
        """Store an agent's batch unless this agent already delivered `seq`."""
        with self._lock:
            last = self._last_seq.get(agent_id)
            if last is not None and seq <= last:
                self.duplicates_total.inc()
                return IngestResult(0, duplicate=True)
        result = self.accept(batch, "push")
        with self._lock:
            self._last_seq[agent_id] = max(seq, self._last_seq.get(agent_id, -1))
        if self.on_node_seen is not None:
            try:
                self.on_node_seen(node, gpus)
            except Exception:  # registration must never lose an acknowledged batch
                log.exception("could not register node %s", node)
        return result

    def rejected(self, source: str) -> None:
        self.rejected_total.labels(source).inc()
