"""A simulated GPU fleet: the telemetry of a hall of H100 servers, for ``dcops up --demo``.

Each tick advances a small physical model, vectorized over every GPU with numpy:

- jobs come and go per node (busy GPUs run at 90-100 %, idle ones near 0 %);
- temperature follows power and the rack's inlet air, with one hot rack whose inlet is
  about 10 degrees warmer, so its busy GPUs reach the slowdown point and throttle;
- throttling lowers the SM clock, which lowers power, which cools the GPU;
- faults are rare random events: corrected ECC errors (frequent on a few "lemon" GPUs),
  uncorrected ECC errors with Xid 48, other Xids (79, 63, 94, 13, 31, 74), NVLink errors.

The same seed and the same sequence of tick times give the same samples.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dcops.fleet.model import Gpu, Node, Rack, Room, Site
from dcops.simulation.series import SeriesBlock
from dcops.telemetry.model import Batch, Labels, make_labels

GPU_MODEL = "NVIDIA H100 80GB HBM3"
GPU_MEMORY_BYTES = 81_559 * 1024 * 1024
HOST_MEMORY_BYTES = 2 * 1024**4
GPU_MAX_POWER_W = 700.0
GPU_IDLE_POWER_W = 70.0
SM_BOOST_HZ = 1.98e9
SM_IDLE_HZ = 345e6
SLOWDOWN_C = 87.0
"""Temperature at which an H100 starts thermal slowdown."""
HW_SLOWDOWN_C = 92.0
THROTTLE_REASONS = ("sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown")
NICS = ("ib0", "ib1")
DEFAULT_TICK_S = 15.0

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class FaultRates:
    """How often faults happen, per GPU per hour (except where said)."""

    ecc_corrected: float = 0.02
    ecc_corrected_lemon: float = 6.0
    ecc_uncorrected: float = 0.0005
    xid: float = 0.002
    nvlink: float = 0.01
    lemons: int = 2
    """How many GPUs in the fleet have a much higher corrected-ECC rate."""


XID_CODES = (79, 63, 94, 13, 31, 74)
XID_WEIGHTS = (0.15, 0.25, 0.2, 0.2, 0.12, 0.08)
"""Xids drawn for random faults; 48 (double-bit ECC) comes with uncorrected ECC errors."""


class SimulatedFleet:
    """A deterministic fake fleet: its inventory, and its telemetry tick by tick."""

    def __init__(
        self,
        racks: int = 8,
        nodes_per_rack: int = 8,
        gpus_per_node: int = 8,
        seed: int = 7,
        site: str = "demo",
        room: str = "hall-1",
        faults: FaultRates | None = None,
    ) -> None:
        self.site = site
        self.room = room
        self.faults = faults or FaultRates()
        self.n_racks = racks
        self.nodes_per_rack = nodes_per_rack
        self.gpus_per_node = gpus_per_node
        self._rng = np.random.default_rng(seed)
        rng = self._rng
        n_nodes = racks * nodes_per_rack
        n_gpus = n_nodes * gpus_per_node
        self.rack_names = [f"rack-{r + 1:02d}" for r in range(racks)]
        self.node_names = [f"node-{n // nodes_per_rack + 1:02d}-{n % nodes_per_rack + 1:02d}"
                           for n in range(n_nodes)]
        """Node ``node-RR-NN`` is the NN-th server in rack ``rack-RR``."""
        self.gpu_node = np.arange(n_gpus) // gpus_per_node
        self.gpu_rack = self.gpu_node // nodes_per_rack
        self.node_rack = np.arange(n_nodes) // nodes_per_rack
        self.gpu_uuids = [f"GPU-{uuid.UUID(bytes=rng.bytes(16), version=4)}"
                          for _ in range(n_gpus)]
        self.hot_rack = self.rack_names[int(rng.integers(racks))]
        hot = self.rack_names.index(self.hot_rack)
        self.lemon_gpus = sorted(int(i) for i in rng.choice(
            n_gpus, size=min(self.faults.lemons, n_gpus), replace=False))

        # Fixed per-rack and per-GPU character.
        self._inlet_base: F64 = 21.0 + rng.normal(0.0, 0.8, racks)
        self._inlet_base[hot] = 33.0
        self._gpu_offset = rng.normal(0.0, 1.8, n_gpus)
        self._thermal_k = 0.066 + rng.normal(0.0, 0.002, n_gpus)
        lemon = np.zeros(n_gpus, dtype=bool)
        lemon[self.lemon_gpus] = True
        self._ecc_rate = np.where(lemon, self.faults.ecc_corrected_lemon,
                                  self.faults.ecc_corrected)

        # State that evolves.
        self._busy = rng.random(n_nodes) < 0.8
        self._job_gpus = np.full(n_nodes, gpus_per_node)
        self._job_load = rng.uniform(0.85, 1.0, n_nodes)
        self._job_mem = rng.uniform(0.5, 0.95, n_nodes)
        # Start near thermal equilibrium, so the first ticks already look like a running hall.
        start_power = np.where(self._busy[self.gpu_node], 620.0, GPU_IDLE_POWER_W)
        self._temp = (self._inlet_base[self.gpu_rack] + 8.0 + self._thermal_k * start_power
                      + self._gpu_offset)
        self._ecc_corr = np.zeros(n_gpus)
        self._ecc_uncorr = np.zeros(n_gpus)
        self._nvlink = np.zeros(n_gpus)
        self._xid: dict[tuple[int, int], int] = {}
        self._pending_xid: list[tuple[int, int]] = []
        self._net = rng.uniform(1e12, 5e12, (n_nodes, len(NICS), 2))
        self._last_ms: int | None = None
        self._build_series()

    @property
    def rack_capacity_watts(self) -> float:
        """What each rack's PDUs can deliver: 12 kW a node."""
        return self.nodes_per_rack * 12_000.0

    # -- inventory ----------------------------------------------------------------------

    def inventory_objects(self) -> list[Site | Room | Rack | Node | Gpu]:
        """The site, room, racks, nodes and GPUs to register, parents before children."""
        objects: list[Site | Room | Rack | Node | Gpu] = [
            Site(self.site, description="simulated fleet"),
            Room(self.room, self.site, description="simulated data hall"),
        ]
        capacity = self.rack_capacity_watts
        objects += [Rack(name, self.room, power_capacity_watts=capacity)
                    for name in self.rack_names]
        for n, name in enumerate(self.node_names):
            objects.append(Node(name, self.rack_names[self.node_rack[n]], gpu_model=GPU_MODEL,
                                gpu_count=self.gpus_per_node, labels={"simulated": "true"}))
        for g, gpu_uuid in enumerate(self.gpu_uuids):
            objects.append(Gpu(self.node_names[self.gpu_node[g]], g % self.gpus_per_node,
                               uuid=gpu_uuid, model=GPU_MODEL))
        return objects

    # -- telemetry ----------------------------------------------------------------------

    def _build_series(self) -> None:
        gpu_base = [
            {"node": self.node_names[self.gpu_node[g]], "gpu": str(g % self.gpus_per_node),
             "rack": self.rack_names[self.gpu_rack[g]], "uuid": self.gpu_uuids[g]}
            for g in range(len(self.gpu_node))
        ]
        node_base = [{"node": name, "rack": self.rack_names[self.node_rack[n]]}
                     for n, name in enumerate(self.node_names)]
        rack_base = [{"rack": name} for name in self.rack_names]
        block = SeriesBlock()
        for name in ("dcops_gpu_utilization_percent", "dcops_gpu_memory_used_bytes",
                     "dcops_gpu_memory_total_bytes", "dcops_gpu_temperature_celsius",
                     "dcops_gpu_power_watts", "dcops_gpu_sm_clock_hertz",
                     "dcops_gpu_ecc_corrected_errors_total",
                     "dcops_gpu_ecc_uncorrected_errors_total", "dcops_gpu_nvlink_errors_total"):
            block.add_metric(name, gpu_base)
        for reason in THROTTLE_REASONS:
            block.add_metric("dcops_gpu_throttle_active", gpu_base, {"reason": reason})
        block.add_metric("dcops_host_cpu_percent", node_base, {"cpu": "total"})
        block.add_metric("dcops_host_memory_used_bytes", node_base)
        block.add_metric("dcops_host_memory_total_bytes", node_base)
        for nic in NICS:
            block.add_metric("dcops_host_network_received_bytes_total", node_base,
                             {"interface": nic})
            block.add_metric("dcops_host_network_sent_bytes_total", node_base,
                             {"interface": nic})
        block.add_metric("dcops_facility_inlet_temperature_celsius", rack_base)
        block.add_metric("dcops_facility_humidity_percent", rack_base)
        block.add_metric("dcops_facility_rack_power_watts", rack_base)
        block.add_metric("dcops_facility_rack_power_capacity_watts", rack_base)
        self._block = block
        self._gpu_base = gpu_base
        self._xid_labels: dict[tuple[int, int], Labels] = {}

    def tick(self, now_ms: int) -> Batch:
        """Advance the fleet to `now_ms` and return one sample of every series at that time."""
        dt = DEFAULT_TICK_S if self._last_ms is None else max(0.0, (now_ms - self._last_ms) / 1e3)
        self._last_ms = now_ms
        rng = self._rng
        n_gpus = len(self.gpu_node)
        hours = dt / 3600.0

        self._step_jobs(dt)
        in_job = self._busy[self.gpu_node] & (
            np.arange(n_gpus) % self.gpus_per_node < self._job_gpus[self.gpu_node])
        load = self._job_load[self.gpu_node]
        util = np.where(in_job, np.clip(rng.normal(97.0, 2.5, n_gpus) * load / 0.93, 80, 100),
                        np.clip(rng.normal(0.3, 0.5, n_gpus), 0, 3))
        util = np.round(util)
        mem_used = np.where(in_job, self._job_mem[self.gpu_node] * GPU_MEMORY_BYTES
                            * (1 + rng.normal(0, 0.01, n_gpus)), 530 * 1024 * 1024.0)
        mem_used = np.clip(np.round(mem_used), 0, GPU_MEMORY_BYTES)

        # Clocks: thermal slowdown above SLOWDOWN_C, deeper above HW_SLOWDOWN_C.
        over = np.clip(self._temp - SLOWDOWN_C, 0, None)
        clock_factor = np.clip(1.0 - 0.07 * over, 0.45, 1.0)
        sm_clock = np.where(util > 5, SM_BOOST_HZ * clock_factor, SM_IDLE_HZ)
        sm_clock = np.round(sm_clock / 15e6) * 15e6

        demand = GPU_IDLE_POWER_W + (GPU_MAX_POWER_W - GPU_IDLE_POWER_W) * 1.08 * (
            util / 100.0) * load * clock_factor
        power = np.clip(demand + rng.normal(0, 6, n_gpus), 55, GPU_MAX_POWER_W)
        power_capped = demand >= GPU_MAX_POWER_W

        throttle = (power_capped, self._temp >= HW_SLOWDOWN_C + 2,
                    self._temp >= SLOWDOWN_C, self._temp >= HW_SLOWDOWN_C)
        inlet = self._inlet(now_ms)
        target = inlet[self.gpu_rack] + 8.0 + self._thermal_k * power + self._gpu_offset
        alpha = 1.0 - math.exp(-dt / 40.0)
        self._temp += alpha * (target - self._temp) + rng.normal(0, 0.3, n_gpus)
        temp = np.round(self._temp)

        self._step_faults(hours)

        node_power = np.bincount(self.gpu_node, power, len(self.node_names))
        node_busy = self._busy.astype(float)
        cpu = np.clip(np.where(self._busy, 45.0, 3.0) + rng.normal(0, 4, len(node_busy)), 0, 100)
        host_mem = HOST_MEMORY_BYTES * np.clip(
            np.where(self._busy, 0.55, 0.06) + rng.normal(0, 0.02, len(node_busy)), 0.02, 0.98)
        rate = np.where(self._busy, 2.5e9, 2e6)[:, None, None] * rng.uniform(
            0.8, 1.2, self._net.shape)
        self._net += np.round(rate * dt)
        node_total_w = node_power + 1_400.0 + 6.0 * cpu
        rack_power = np.bincount(self.node_rack, node_total_w, self.n_racks)
        humidity = 45.0 + 3.0 * np.sin(now_ms / 3.6e6 / 4) + rng.normal(0, 0.4, self.n_racks)

        columns: list[npt.NDArray[Any]] = [
            util, mem_used, np.full(n_gpus, float(GPU_MEMORY_BYTES)), temp, np.round(power, 1),
            sm_clock, self._ecc_corr, self._ecc_uncorr, self._nvlink, *throttle,
            np.round(cpu, 1), np.round(host_mem), np.full(len(node_busy), HOST_MEMORY_BYTES),
        ]
        for nic in range(len(NICS)):
            columns += [self._net[:, nic, 0], self._net[:, nic, 1]]
        columns += [np.round(inlet, 1), np.round(humidity, 1), np.round(rack_power),
                    np.full(self.n_racks, self.rack_capacity_watts)]
        batch = self._block.batch(now_ms, columns)
        for key, count in self._xid.items():
            batch.add(self._xid_series(key), now_ms, float(count))
        return batch

    def _inlet(self, now_ms: int) -> F64:
        """Rack inlet air: a slow daily swing plus noise around each rack's base."""
        day = 1.0 * np.sin(2 * np.pi * (now_ms / 86_400_000.0))
        noise: F64 = self._rng.normal(0.0, 0.25, self.n_racks)
        inlet: F64 = self._inlet_base + day + noise
        return inlet

    def _step_jobs(self, dt: float) -> None:
        """Jobs end after ~20 minutes on average; idle nodes pick up work after ~5 minutes."""
        rng = self._rng
        n_nodes = len(self._busy)
        ends = self._busy & (rng.random(n_nodes) < 1 - math.exp(-dt / 1200.0))
        starts = ~self._busy & (rng.random(n_nodes) < 1 - math.exp(-dt / 300.0))
        self._busy = (self._busy & ~ends) | starts
        if starts.any():
            k = int(starts.sum())
            sizes = rng.choice([self.gpus_per_node, max(1, self.gpus_per_node // 2), 1],
                               size=k, p=[0.8, 0.15, 0.05])
            self._job_gpus[starts] = sizes
            self._job_load[starts] = rng.uniform(0.85, 1.0, k)
            self._job_mem[starts] = rng.uniform(0.5, 0.95, k)

    def _step_faults(self, hours: float) -> None:
        """Apply Xids drawn last tick, then draw this tick's faults."""
        rng = self._rng
        f = self.faults
        n_gpus = len(self.gpu_node)
        for key in self._pending_xid:
            self._xid[key] += 1
        self._pending_xid = []
        self._ecc_corr += rng.poisson(self._ecc_rate * hours) * rng.integers(1, 4, n_gpus)
        uncorr = rng.random(n_gpus) < f.ecc_uncorrected * hours
        self._ecc_uncorr += uncorr
        self._nvlink += (rng.random(n_gpus) < f.nvlink * hours) * rng.integers(1, 30, n_gpus)
        xid_hit = rng.random(n_gpus) < f.xid * hours
        codes = rng.choice(XID_CODES, size=n_gpus, p=XID_WEIGHTS)
        # Each Xid counter is reported at 0 one tick before its first increment, so that
        # rate() and increase() see the first event, as they would on a long-running exporter.
        for g in np.flatnonzero(uncorr):
            self._queue_xid(int(g), 48)
        for g in np.flatnonzero(xid_hit):
            self._queue_xid(int(g), int(codes[g]))

    def _queue_xid(self, gpu: int, code: int) -> None:
        key = (gpu, code)
        self._xid.setdefault(key, 0)
        self._pending_xid.append(key)

    def _xid_series(self, key: tuple[int, int]) -> Labels:
        labels = self._xid_labels.get(key)
        if labels is None:
            labels = make_labels("dcops_gpu_xid_errors_total",
                                 {**self._gpu_base[key[0]], "xid": str(key[1])})
            self._xid_labels[key] = labels
        return labels

    @property
    def xid_counts(self) -> dict[tuple[str, int, int], int]:
        """Xid counters so far: (node, gpu index, xid) -> count."""
        return {(self.node_names[self.gpu_node[g]], g % self.gpus_per_node, code): n
                for (g, code), n in self._xid.items()}
