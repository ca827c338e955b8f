"""The simulated fleet: inventory, shapes and ranges, determinism, the hot rack, fault rates."""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np

from dcops.fleet.model import Gpu, Node, Rack, Room, Site
from dcops.simulation.fleet import GPU_MODEL, SimulatedFleet
from dcops.telemetry.model import Batch, labels_dict, metric_name

T0 = 1_700_000_000_000
STEP_MS = 15_000


def values(batch: Batch, name: str) -> dict[tuple[str, ...], float]:
    """Values of metric `name` keyed by (rack, node, gpu, reason, xid) labels."""
    out: dict[tuple[str, ...], float] = {}
    for labels, _, value in batch.samples():
        if metric_name(labels) == name:
            d = labels_dict(labels)
            key = tuple(d.get(k, "") for k in ("rack", "node", "gpu", "reason", "xid"))
            out[key] = value
    return out


def run(fleet: SimulatedFleet, ticks: int, step_ms: int = STEP_MS) -> list[Batch]:
    return [fleet.tick(T0 + i * step_ms) for i in range(ticks)]


def xid_values(batch: Batch) -> dict[tuple[str, ...], float]:
    """The Xid counters only: they are the few series after the fixed ones."""
    out: dict[tuple[str, ...], float] = {}
    for labels, value in zip(batch.labels[::-1], batch.values[::-1], strict=True):
        if metric_name(labels) != "dcops_gpu_xid_errors_total":
            break
        d = labels_dict(labels)
        out[(d["rack"], d["node"], d["gpu"], "", d["xid"])] = value
    return out


def test_inventory_lists_parents_before_children() -> None:
    fleet = SimulatedFleet(racks=3, nodes_per_rack=2, gpus_per_node=4)
    objects = fleet.inventory_objects()
    kinds = [type(o) for o in objects]
    assert kinds == [Site, Room] + [Rack] * 3 + [Node] * 6 + [Gpu] * 24
    nodes = [o for o in objects if isinstance(o, Node)]
    assert all(n.gpu_model == GPU_MODEL and n.gpu_count == 4 for n in nodes)
    racks = {o.name for o in objects if isinstance(o, Rack)}
    assert {n.rack for n in nodes} == racks
    gpus = [o for o in objects if isinstance(o, Gpu)]
    assert len({g.uuid for g in gpus}) == 24
    assert all(g.uuid.startswith("GPU-") for g in gpus)
    assert {(g.node, g.index) for g in gpus} == {(n.name, i) for n in nodes for i in range(4)}
    assert fleet.hot_rack in racks


def test_tick_has_every_series_in_range() -> None:
    fleet = SimulatedFleet()
    batch = run(fleet, 20)[-1]
    gpus = 8 * 8 * 8
    assert len(values(batch, "dcops_gpu_utilization_percent")) == gpus
    assert len(values(batch, "dcops_gpu_throttle_active")) == 4 * gpus
    assert len(values(batch, "dcops_host_cpu_percent")) == 64
    assert len(values(batch, "dcops_facility_inlet_temperature_celsius")) == 8
    assert set(batch.ts_ms) == {T0 + 19 * STEP_MS}

    util = np.array(list(values(batch, "dcops_gpu_utilization_percent").values()))
    assert util.min() >= 0 and util.max() <= 100
    assert (util >= 80).mean() > 0.4 and (util <= 3).mean() > 0.05  # busy and idle GPUs
    power = np.array(list(values(batch, "dcops_gpu_power_watts").values()))
    assert power.min() >= 50 and power.max() <= 700
    assert np.corrcoef(util, power)[0, 1] > 0.9
    temp = np.array(list(values(batch, "dcops_gpu_temperature_celsius").values()))
    assert temp.min() > 15 and temp.max() < 100
    used = values(batch, "dcops_gpu_memory_used_bytes")
    total = values(batch, "dcops_gpu_memory_total_bytes")
    assert all(0 < used[k] <= total[k] for k in used)
    clocks = np.array(list(values(batch, "dcops_gpu_sm_clock_hertz").values()))
    assert clocks.min() >= 300e6 and clocks.max() <= 1.98e9
    throttle = set(values(batch, "dcops_gpu_throttle_active").values())
    assert throttle <= {0.0, 1.0}
    sample = next(labels for labels in batch.labels
                  if metric_name(labels) == "dcops_gpu_temperature_celsius")
    assert set(labels_dict(sample)) == {"__name__", "node", "gpu", "rack", "uuid"}


def test_same_seed_same_telemetry() -> None:
    a, b = SimulatedFleet(racks=2, seed=11), SimulatedFleet(racks=2, seed=11)
    for batch_a, batch_b in zip(run(a, 30), run(b, 30), strict=True):
        assert list(batch_a.samples()) == list(batch_b.samples())
    other = run(SimulatedFleet(racks=2, seed=12), 30)[-1]
    assert list(other.samples()) != list(a.tick(T0 + 30 * STEP_MS).samples())


def test_hot_rack_runs_hotter_and_throttles() -> None:
    fleet = SimulatedFleet()
    batches = run(fleet, 60)
    last = batches[-1]
    inlet = {k[0]: v for k, v in values(last, "dcops_facility_inlet_temperature_celsius").items()}
    assert max(inlet, key=lambda rack: inlet[rack]) == fleet.hot_rack
    assert inlet[fleet.hot_rack] > max(v for r, v in inlet.items() if r != fleet.hot_rack) + 5

    temps: dict[bool, list[float]] = defaultdict(list)
    thermal: dict[bool, float] = defaultdict(float)
    for batch in batches[20:]:
        util = values(batch, "dcops_gpu_utilization_percent")
        for key, temp in values(batch, "dcops_gpu_temperature_celsius").items():
            if util[key] >= 80:
                temps[key[0] == fleet.hot_rack].append(temp)
        for key, on in values(batch, "dcops_gpu_throttle_active").items():
            if key[3] == "sw_thermal_slowdown":
                thermal[key[0] == fleet.hot_rack] += on
    assert np.mean(temps[True]) > np.mean(temps[False]) + 6
    assert thermal[True] > 10 * max(thermal[False], 1)

    # Throttled GPUs run slower clocks than unthrottled busy ones.
    util = values(last, "dcops_gpu_utilization_percent")
    clock = values(last, "dcops_gpu_sm_clock_hertz")
    slow = {k[:3] for k, on in values(last, "dcops_gpu_throttle_active").items()
            if k[3] == "sw_thermal_slowdown" and on}
    busy_free = [clock[k] for k in clock if util[k] >= 80 and k[:3] not in slow]
    busy_slow = [clock[k] for k in clock if util[k] >= 80 and k[:3] in slow]
    if busy_slow:
        assert max(busy_slow) < min(busy_free)


def test_faults_are_rare_and_counters_only_grow() -> None:
    fleet = SimulatedFleet()
    ticks, step_ms = 400, 225_000  # 25 simulated hours, 512 GPUs
    first = fleet.tick(T0)
    for i in range(1, ticks):
        fleet.tick(T0 + i * step_ms)
    last = fleet.tick(T0 + ticks * step_ms)
    hours = ticks * step_ms / 3.6e6

    xids = xid_values(last)
    assert xids == values(last, "dcops_gpu_xid_errors_total")
    random_xids = sum(v for k, v in xids.items() if k[4] != "48")
    expected = 512 * fleet.faults.xid * hours
    assert expected / 3 < random_xids < expected * 3
    assert len({k[1:3] for k in xids}) < 0.1 * 512

    uncorrected = values(last, "dcops_gpu_ecc_uncorrected_errors_total")
    dbe = {k[1:3] for k, v in uncorrected.items() if v > 0}
    assert 0 < sum(uncorrected.values()) < 512 * fleet.faults.ecc_uncorrected * hours * 4
    # A double-bit ECC error comes with Xid 48 on the same GPU.
    assert dbe <= {k[1:3] for k in xids if k[4] == "48"}

    corrected = values(last, "dcops_gpu_ecc_corrected_errors_total")
    lemon_keys = {(fleet.node_names[g // 8], str(g % 8)) for g in fleet.lemon_gpus}
    lemons = [v for k, v in corrected.items() if k[1:3] in lemon_keys]
    others = [v for k, v in corrected.items() if k[1:3] not in lemon_keys]
    assert min(lemons) > 20 * max(float(np.mean(others)), 0.1)
    assert np.median(others) <= 2

    for name in ("dcops_gpu_ecc_corrected_errors_total", "dcops_gpu_nvlink_errors_total"):
        before, after = values(first, name), values(last, name)
        assert all(after[k] >= before[k] for k in before)


def test_xid_counter_appears_at_zero_before_its_first_event() -> None:
    fleet = SimulatedFleet()
    first_seen: dict[tuple[str, ...], float] = {}
    for i in range(400):
        for key, value in xid_values(fleet.tick(T0 + i * 225_000)).items():
            first_seen.setdefault(key, value)
    assert first_seen and set(first_seen.values()) == {0.0}


def test_tick_is_fast_for_512_gpus() -> None:
    fleet = SimulatedFleet()
    durations = []
    for i in range(20):
        began = time.perf_counter()
        fleet.tick(T0 + i * STEP_MS)
        durations.append(time.perf_counter() - began)
    assert sorted(durations)[10] < 0.05
