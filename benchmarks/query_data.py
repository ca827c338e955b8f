"""Synthetic fleet telemetry for the query benchmark: the same samples for dcops and Prometheus.

A fleet of 8-GPU nodes, 16 per rack, each GPU with 6 DCGM-style metrics and each node
with 20 node-exporter-style host metrics, one sample every 15 s. Gauges are bounded
random walks rounded to 2 decimals and counters are cumulative sums of whole numbers,
so every value survives a round trip through OpenMetrics text exactly. Values are
deterministic for a given node count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dcops.telemetry.model import Batch, Labels, make_labels
from dcops.telemetry.store import MetricsStore

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

GPUS_PER_NODE = 8
NODES_PER_RACK = 16
STEP_S = 15

GPU_METRICS = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
               "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "DCGM_FI_DEV_XID_ERRORS_TOTAL",
               "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS")
HOST_GAUGES = {  # name: (typical level, spread, walk step)
    "node_load1": (20.0, 10.0, 1.0), "node_load5": (20.0, 8.0, 0.4),
    "node_load15": (20.0, 6.0, 0.2), "node_memory_MemAvailable_bytes": (6e11, 2e11, 1e9),
    "node_memory_MemTotal_bytes": (2.0e12, 0.0, 0.0),
    "node_filesystem_avail_bytes": (3e12, 1e12, 1e8),
    "node_hwmon_temp_celsius": (45.0, 8.0, 0.3), "node_procs_running": (30.0, 15.0, 2.0)}
HOST_COUNTERS = {  # name: mean increase per second
    "node_cpu_idle_seconds_total": 60.0, "node_cpu_user_seconds_total": 120.0,
    "node_cpu_system_seconds_total": 10.0, "node_network_receive_bytes_total": 2e8,
    "node_network_transmit_bytes_total": 1.5e8, "node_network_receive_errs_total": 0.01,
    "node_disk_read_bytes_total": 5e7, "node_disk_written_bytes_total": 3e7,
    "node_context_switches_total": 5e4, "node_intr_total": 3e4,
    "node_ib_port_data_received_bytes_total": 4e9,
    "node_ib_port_data_transmitted_bytes_total": 4e9}


@dataclass
class MetricData:
    """One metric across the fleet: its series' labels and a (series x time) value grid."""

    name: str
    labels: list[Labels]
    label_text: list[str]  # the ``{...}`` part as OpenMetrics writes it
    values: F64


@dataclass
class Fleet:
    """Every series of the simulated fleet over a common time grid."""

    nodes: int
    ts_ms: I64
    metrics: list[MetricData]

    @property
    def series(self) -> int:
        return sum(len(m.labels) for m in self.metrics)

    @property
    def samples(self) -> int:
        return self.series * len(self.ts_ms)


def _walk(rng: np.random.Generator, rows: int, cols: int, level: F64, spread: float,
          step: float) -> F64:
    """Random walks around `level`, pulled back towards it, within +-2 spreads."""
    noise = rng.normal(0.0, step, (rows, cols))
    out = np.empty((rows, cols))
    x = np.zeros(rows)
    for t in range(cols):  # mean-reverting walk: x <- 0.97 x + noise
        x = 0.97 * x + noise[:, t]
        out[:, t] = x
    return np.clip(level[:, None] + out, level[:, None] - 2 * spread, level[:, None] + 2 * spread)


def _counter(rng: np.random.Generator, rows: int, cols: int, per_s: float) -> F64:
    rate = rng.uniform(0.2, 1.8, rows)[:, None] * per_s * STEP_S
    inc = np.round(rng.poisson(np.broadcast_to(rate, (rows, cols)))).astype(np.float64)
    start = np.round(rng.uniform(0, 1e4, rows) * per_s)[:, None]
    return start + np.cumsum(inc, axis=1)


def _label_text(labels: Labels) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels if k != "__name__") + "}"


def build_fleet(nodes: int, end_ms: int, hours: float = 6.0) -> Fleet:
    """`nodes` GPU servers' samples every 15 s for `hours` ending at `end_ms`."""
    points = int(hours * 3600 // STEP_S)
    ts = end_ms - STEP_S * 1000 * np.arange(points - 1, -1, -1, dtype=np.int64)
    rng = np.random.default_rng(nodes)
    gpus = nodes * GPUS_PER_NODE
    node_names = [f"node-{n:04d}" for n in range(nodes)]
    racks = [f"rack-{n // NODES_PER_RACK:03d}" for n in range(nodes)]
    busy = rng.uniform(0, 1, gpus) < 0.75
    util_level = np.where(busy, rng.uniform(55, 95, gpus), rng.uniform(0, 8, gpus))
    util: F64 = np.round(np.clip(_walk(rng, gpus, points, util_level, 15.0, 3.0), 0, 100),
                         2).astype(np.float64)
    temp = np.round(30 + 0.55 * util + _walk(rng, gpus, points, rng.uniform(-5, 10, gpus),
                                             4.0, 0.5), 2)
    power = np.round(70 + 6.3 * util + rng.normal(0, 8, (gpus, points)), 2)
    ecc = _counter(rng, gpus, points, 0.002)
    xid = _counter(rng, gpus, points, 0.0002)
    throttle = np.where(temp > 80, 8.0, np.where(power > 650, 4.0, 0.0)).astype(np.float64)
    gpu_values: dict[str, F64] = dict(zip(GPU_METRICS, (util, temp, power, ecc, xid, throttle),
                                          strict=True))
    metrics = []
    for name in GPU_METRICS:
        labels = [make_labels(name, {"node": node_names[g // GPUS_PER_NODE],
                                     "gpu": str(g % GPUS_PER_NODE), "job": "dcgm",
                                     "rack": racks[g // GPUS_PER_NODE]}) for g in range(gpus)]
        metrics.append(MetricData(name, labels, [_label_text(x) for x in labels],
                                  gpu_values[name]))
    host_labels = [{"node": node_names[n], "rack": racks[n], "job": "node"} for n in range(nodes)]
    for name, (level, spread, step) in HOST_GAUGES.items():
        base = level + rng.uniform(-spread, spread, nodes)
        vals: F64 = np.round(np.maximum(_walk(rng, nodes, points, base, max(spread, 1e-9),
                                           step), 0), 2).astype(np.float64)
        labels = [make_labels(name, h) for h in host_labels]
        metrics.append(MetricData(name, labels, [_label_text(x) for x in labels], vals))
    for name, per_s in HOST_COUNTERS.items():
        labels = [make_labels(name, h) for h in host_labels]
        metrics.append(MetricData(name, labels, [_label_text(x) for x in labels],
                                  _counter(rng, nodes, points, per_s)))
    return Fleet(nodes, ts, metrics)


def write_openmetrics(fleet: Fleet, path: Path) -> int:
    """Write every sample as OpenMetrics text (one family after another); returns bytes."""
    ts_text = [f"{t // 1000}" if t % 1000 == 0 else f"{t / 1000:.3f}"
               for t in fleet.ts_ms.tolist()]
    size = 0
    with path.open("w", encoding="ascii") as out:
        for m in fleet.metrics:
            out.write(f"# TYPE {m.name} unknown\n")
            for text, row in zip(m.label_text, m.values, strict=True):
                prefix = m.name + text + " "
                chunk = "".join([f"{prefix}{v!r} {t}\n"
                                 for v, t in zip(row.tolist(), ts_text, strict=True)])
                size += len(chunk)
                out.write(chunk)
        out.write("# EOF\n")
    return size


def time_chunks(fleet: Fleet, points: int) -> Iterator[Batch]:
    """The whole fleet, `points` timestamps at a time, as batches (oldest first)."""
    labels = [x for m in fleet.metrics for x in m.labels]
    n = len(labels)
    for a in range(0, len(fleet.ts_ms), points):
        ts = fleet.ts_ms[a:a + points]
        values = np.concatenate([m.values[:, a:a + points].ravel() for m in fleet.metrics])
        yield Batch(labels=labels,
                    series_index=np.repeat(np.arange(n), len(ts)).tolist(),
                    ts_ms=np.tile(ts, n).tolist(), values=values.tolist())


def load_store(fleet: Fleet, store: MetricsStore, points: int = 120) -> None:
    """Append the fleet into `store` in time order, flushing after each chunk if it can."""
    flush = getattr(store, "flush", None)
    for batch in time_chunks(fleet, points):
        store.append(batch)
        if flush is not None:
            flush()
