"""The agent's main loop: collect every interval, spool, deliver in order, back off when down.

Each collection becomes one or more pushes (at most `batch_max_samples` samples each) with
consecutive sequence numbers; every push is spooled on disk before it is sent and leaves
the spool only when the server has it, so outages and restarts lose nothing and deliver
nothing twice. A push the server calls too large (413) is split in two and requeued at the
end of the spool; its samples keep their own timestamps, so arriving later does no harm.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from dcops.agent.gpu import GpuSource, open_gpu_source
from dcops.agent.host import HostCollector, SampleSink
from dcops.agent.pusher import Pusher, PushOutcome, decode_push, encode_push
from dcops.agent.spool import Spool, SpoolEntry
from dcops.core.clock import Clock, SystemClock, now_ms
from dcops.settings import AgentSettings
from dcops.telemetry.model import Batch
from dcops.telemetry.push import make_push

log = logging.getLogger(__name__)

ROOT_SPOOL_DIR = Path("/var/lib/dcops/agent-spool")
USER_SPOOL_DIR = Path("~/.local/share/dcops/agent-spool")


def node_name(settings: AgentSettings) -> str:
    """The node label of this host: the configured name, else the short hostname."""
    return settings.node_name or socket.gethostname().split(".")[0]


def spool_dir(settings: AgentSettings) -> Path:
    """Where this agent spools: the configured directory, else a default for root or a user."""
    if settings.spool_dir is not None:
        return settings.spool_dir.expanduser()
    return ROOT_SPOOL_DIR if os.geteuid() == 0 else USER_SPOOL_DIR.expanduser()


def split_batch(batch: Batch, max_samples: int) -> list[Batch]:
    """`batch` cut into consecutive batches of at most `max_samples` samples."""
    if len(batch) <= max_samples:
        return [batch]
    parts = [Batch()]
    for labels, ts, value in batch.samples():
        if len(parts[-1]) >= max_samples:
            parts.append(Batch())
        parts[-1].add(labels, ts, value)
    return parts


class Backoff:
    """Delays between delivery retries while the server is down: doubling, capped, jittered."""

    def __init__(self, initial_s: float = 1.0, max_s: float = 60.0) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._current = initial_s

    def next(self) -> float:
        delay = self._current
        self._current = min(self._current * 2, self.max_s)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._current = self.initial_s


class Agent:
    """One host's agent: its collectors, its spool and its connection to the server."""

    def __init__(self, settings: AgentSettings, *, nvml: object | None = None,
                 gpu: GpuSource | None = None, use_gpu: bool = True,
                 clock: Clock | None = None, pusher: Pusher | None = None,
                 durable: bool = True, retry_initial_s: float = 1.0,
                 retry_max_s: float = 60.0) -> None:
        self.settings = settings
        self.node = node_name(settings)
        self.clock = clock or SystemClock()
        self.spool = Spool(spool_dir(settings), int(settings.spool_max_mb * 1024 * 1024),
                           node=self.node, durable=durable)
        self.pusher = pusher or Pusher(settings.server_url, settings.token_file)
        self.host = HostCollector(self.node, self.clock)
        self.gpu = gpu if gpu is not None or not use_gpu else open_gpu_source(nvml)
        self.gpus: list[dict[str, Any]] = (
            [g.to_push() for g in self.gpu.inventory()] if self.gpu else [])
        self.backoff = Backoff(retry_initial_s, retry_max_s)
        self.delivered_total = 0
        self.rejected_total = 0
        self.failures_total = 0
        self._labels: dict[Any, Any] = {}
        self._process = psutil.Process()
        self._collect_s = 0.0

    def close(self) -> None:
        self.pusher.close()
        if self.gpu is not None:
            self.gpu.close()

    # -- collecting ---------------------------------------------------------------------

    def collect_once(self) -> list[int]:
        """Collect host and GPU metrics once and spool them; returns the new pushes' seqs."""
        started = time.perf_counter()
        batch = Batch()
        ts = now_ms(self.clock)
        self.host.collect(batch)
        if self.gpu is not None:
            self.gpu.collect(batch, ts, self.node)
        self._add_self_metrics(batch, ts)
        seqs = []
        for part in split_batch(batch, self.settings.batch_max_samples):
            seq = self.spool.next_seq()
            body = make_push(self.spool.agent_id, seq, self.node, part, self.gpus)
            payload, gzipped = encode_push(body)
            self.spool.append(seq, payload, gzipped=gzipped)
            seqs.append(seq)
        self._collect_s = time.perf_counter() - started
        return seqs

    def _add_self_metrics(self, batch: Batch, ts: int) -> None:
        sink = SampleSink(batch, ts, self.node, self._labels)
        sink.add("dcops_agent_spool_pushes", len(self.spool))
        sink.add("dcops_agent_spool_bytes", self.spool.bytes)
        sink.add("dcops_agent_spool_dropped_total", self.spool.dropped_total)
        sink.add("dcops_agent_pushes_delivered_total", self.delivered_total)
        sink.add("dcops_agent_pushes_rejected_total", self.rejected_total)
        sink.add("dcops_agent_push_failures_total", self.failures_total)
        sink.add("dcops_agent_collect_seconds", self._collect_s)
        cpu = self._process.cpu_times()
        sink.add("dcops_agent_cpu_seconds_total", cpu.user + cpu.system)
        sink.add("dcops_agent_resident_bytes", self._process.memory_info().rss)

    # -- delivering ---------------------------------------------------------------------

    def deliver(self, deadline: float | None = None) -> PushOutcome | None:
        """Send spooled pushes oldest first until empty, a failure, or `deadline` (monotonic).

        Returns the failing outcome (RETRY or UNAUTHORIZED), or None when nothing failed.
        """
        while (entry := self.spool.peek()) is not None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            try:
                payload = entry.read()
            except OSError as exc:
                log.error("spooled push seq %d unreadable (%s); dropping it", entry.seq, exc)
                self.spool.remove(entry)
                continue
            outcome = self.pusher.send(payload, gzipped=entry.gzipped, seq=entry.seq)
            if outcome is PushOutcome.DELIVERED:
                self.spool.remove(entry)
                self.delivered_total += 1
            elif outcome is PushOutcome.REJECTED:
                self.spool.remove(entry)
                self.rejected_total += 1
            elif outcome is PushOutcome.TOO_LARGE:
                self._split(entry, payload)
            else:
                self.failures_total += 1
                return outcome
        return None

    def _split(self, entry: SpoolEntry, payload: bytes) -> None:
        body = decode_push(payload, entry.gzipped)
        series = body.get("series", [])
        self.spool.remove(entry)
        if len(series) < 2:
            log.error("push seq %d is too large for the server even as one series; dropping it",
                      entry.seq)
            self.rejected_total += 1
            return
        half = len(series) // 2
        seqs = []
        for part in (series[:half], series[half:]):
            seq = self.spool.next_seq()
            new_payload, gzipped = encode_push({**body, "seq": seq, "series": part})
            self.spool.append(seq, new_payload, gzipped=gzipped)
            seqs.append(seq)
        log.warning("push seq %d too large for the server (413): split into seq %d and %d",
                    entry.seq, seqs[0], seqs[1])

    # -- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event, *, once: bool = False) -> None:
        """Collect every interval and deliver between collections until `stop` is set."""
        interval = self.settings.interval_s
        log.info("agent %s on node %s: pushing to %s every %gs, spool %s (%d waiting)",
                 self.spool.agent_id, self.node, self.pusher.url, interval,
                 self.spool.directory, len(self.spool))
        next_collect = time.monotonic()
        next_push = next_collect
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_collect:
                try:
                    self.collect_once()
                except OSError as exc:  # the spool's disk is full or gone
                    log.error("cannot spool this collection on node %s: %s", self.node, exc)
                except Exception:  # one bad collection must not stop the agent
                    log.exception("collection failed on node %s", self.node)
                next_collect += interval
                if next_collect <= time.monotonic():
                    next_collect = time.monotonic() + interval  # fell behind: skip, don't burst
            if once:
                self.deliver()
                return
            if len(self.spool) and time.monotonic() >= next_push:
                if self.deliver(deadline=next_collect) is None:
                    self.backoff.reset()
                else:
                    next_push = time.monotonic() + self.backoff.next()
            wake = next_collect
            if len(self.spool):
                wake = min(wake, max(next_push, time.monotonic()))
            stop.wait(max(0.0, wake - time.monotonic()))


def run_agent(settings: AgentSettings, stop: threading.Event, *, nvml: object | None = None,
              once: bool = False) -> None:
    """Run the agent until `stop` is set (or for one collection and delivery with `once`)."""
    agent = Agent(settings, nvml=nvml)
    try:
        agent.run(stop, once=once)
    finally:
        agent.close()
