"""Host metrics of one server: CPU, load, memory, swap, disks and network, read with psutil.

Names follow Prometheus conventions (units in the name, counters end in ``_total``) and
every sample carries a ``node`` label. CPU percent is computed from the change in CPU time
since the previous collection (or since the collector was built), so it is the busy share
over the last interval, not since boot.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import psutil

from dcops.core.clock import Clock, SystemClock, now_ms
from dcops.telemetry.model import Batch, Labels, make_labels

log = logging.getLogger(__name__)

SKIPPED_DISK_PREFIXES = ("loop", "ram", "zram")
"""Block devices that are not real disks: their I/O counters are noise."""
SKIPPED_NIC_PREFIXES = ("lo", "veth")
"""Interfaces that never leave the host: loopback and container veth pairs."""
IDLE_MODES = ("idle", "iowait")


class SampleSink:
    """Adds samples to a batch with a fixed timestamp and the node label, caching label tuples."""

    def __init__(self, batch: Batch, ts_ms: int, node: str,
                 cache: dict[tuple[str, tuple[tuple[str, str], ...]], Labels]) -> None:
        self.batch = batch
        self.ts_ms = ts_ms
        self.node = node
        self._cache = cache

    def add(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Record one sample; non-finite values are dropped (JSON cannot carry them)."""
        if not math.isfinite(value):
            return
        extra = tuple(labels.items()) if labels else ()
        key = (name, extra)
        full = self._cache.get(key)
        if full is None:
            full = make_labels(name, {"node": self.node, **dict(extra)})
            self._cache[key] = full
        self.batch.add(full, self.ts_ms, float(value))


def cpu_busy_percent(before: Any, after: Any) -> float:
    """Share of CPU time not idle between two psutil cpu_times snapshots, in percent."""
    deltas = {f: max(getattr(after, f) - getattr(before, f), 0.0) for f in after._fields}
    # guest time is already counted in user/nice on Linux.
    total = sum(v for f, v in deltas.items() if f not in ("guest", "guest_nice"))
    if total <= 0:
        return 0.0
    idle = sum(deltas.get(f, 0.0) for f in IDLE_MODES)
    return float(max(0.0, min(100.0, 100.0 * (total - idle) / total)))


class _CpuSnapshot(NamedTuple):
    total: Any
    per_cpu: list[Any]


class HostCollector:
    """Reads this host's metrics; one `collect()` per agent interval gives one Batch."""

    def __init__(self, node: str, clock: Clock | None = None) -> None:
        self.node = node
        self.clock = clock or SystemClock()
        self._labels: dict[tuple[str, tuple[tuple[str, str], ...]], Labels] = {}
        self._cpu = self._cpu_snapshot()

    @staticmethod
    def _cpu_snapshot() -> _CpuSnapshot:
        return _CpuSnapshot(psutil.cpu_times(), psutil.cpu_times(percpu=True))

    def collect(self, batch: Batch | None = None) -> Batch:
        """Add one sample of every host metric to `batch` (a new one if None) and return it."""
        out = batch if batch is not None else Batch()
        sink = SampleSink(out, now_ms(self.clock), self.node, self._labels)
        for part in (self._collect_cpu, self._collect_memory, self._collect_disks,
                     self._collect_disk_io, self._collect_network):
            try:
                part(sink)
            except OSError as exc:  # a vanished device or unreadable /proc file
                log.warning("host %s: %s skipped: %s", self.node, part.__name__, exc)
        return out

    def _collect_cpu(self, sink: SampleSink) -> None:
        now = self._cpu_snapshot()
        before, self._cpu = self._cpu, now
        sink.add("dcops_host_cpu_percent", cpu_busy_percent(before.total, now.total),
                 {"cpu": "total"})
        for mode in now.total._fields:
            sink.add("dcops_host_cpu_seconds_total", getattr(now.total, mode),
                     {"cpu": "total", "mode": mode})
        for i, times in enumerate(now.per_cpu):
            cpu = str(i)
            if i < len(before.per_cpu):
                sink.add("dcops_host_cpu_percent", cpu_busy_percent(before.per_cpu[i], times),
                         {"cpu": cpu})
            for mode in times._fields:
                sink.add("dcops_host_cpu_seconds_total", getattr(times, mode),
                         {"cpu": cpu, "mode": mode})
        sink.add("dcops_host_cpu_count", float(len(now.per_cpu)))
        load1, load5, load15 = psutil.getloadavg()
        sink.add("dcops_host_load1", load1)
        sink.add("dcops_host_load5", load5)
        sink.add("dcops_host_load15", load15)

    def _collect_memory(self, sink: SampleSink) -> None:
        mem = psutil.virtual_memory()
        sink.add("dcops_host_memory_total_bytes", mem.total)
        sink.add("dcops_host_memory_available_bytes", mem.available)
        sink.add("dcops_host_memory_used_bytes", mem.total - mem.available)
        swap = psutil.swap_memory()
        sink.add("dcops_host_swap_total_bytes", swap.total)
        sink.add("dcops_host_swap_used_bytes", swap.used)
        sink.add("dcops_host_swap_in_bytes_total", swap.sin)
        sink.add("dcops_host_swap_out_bytes_total", swap.sout)

    def _collect_disks(self, sink: SampleSink) -> None:
        seen: set[str] = set()
        for part in psutil.disk_partitions(all=False):
            if part.mountpoint in seen:
                continue
            seen.add(part.mountpoint)
            try:
                usage = psutil.disk_usage(part.mountpoint)
            except OSError:
                continue  # unmounted between listing and reading, or no permission
            labels = {"mountpoint": part.mountpoint, "device": part.device,
                      "fstype": part.fstype}
            sink.add("dcops_host_disk_total_bytes", usage.total, labels)
            sink.add("dcops_host_disk_used_bytes", usage.used, labels)
            sink.add("dcops_host_disk_free_bytes", usage.free, labels)

    def _collect_disk_io(self, sink: SampleSink) -> None:
        counters = psutil.disk_io_counters(perdisk=True) or {}
        for device, io in counters.items():
            if device.startswith(SKIPPED_DISK_PREFIXES):
                continue
            labels = {"device": device}
            sink.add("dcops_host_disk_read_bytes_total", io.read_bytes, labels)
            sink.add("dcops_host_disk_written_bytes_total", io.write_bytes, labels)
            sink.add("dcops_host_disk_reads_completed_total", io.read_count, labels)
            sink.add("dcops_host_disk_writes_completed_total", io.write_count, labels)

    def _collect_network(self, sink: SampleSink) -> None:
        for nic, io in psutil.net_io_counters(pernic=True).items():
            if nic.startswith(SKIPPED_NIC_PREFIXES):
                continue
            labels = {"interface": nic}
            sink.add("dcops_host_network_received_bytes_total", io.bytes_recv, labels)
            sink.add("dcops_host_network_sent_bytes_total", io.bytes_sent, labels)
            sink.add("dcops_host_network_received_packets_total", io.packets_recv, labels)
            sink.add("dcops_host_network_sent_packets_total", io.packets_sent, labels)
            sink.add("dcops_host_network_receive_errors_total", io.errin, labels)
            sink.add("dcops_host_network_send_errors_total", io.errout, labels)
            sink.add("dcops_host_network_receive_drops_total", io.dropin, labels)
            sink.add("dcops_host_network_send_drops_total", io.dropout, labels)
