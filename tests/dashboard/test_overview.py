"""The fleet overview over a MemoryInventory and a store fed by the simulated fleet."""

from __future__ import annotations

from typing import Any

import pytest

from dcops.dashboard.overview import LOOKBACK_S, TEMP_HOT_C, fleet_overview
from dcops.fleet.memory import MemoryInventory
from dcops.fleet.model import Gpu, Lifecycle, Node, Rack, Room, Site
from dcops.fleet.sync import upsert_all
from dcops.simulation.fleet import SimulatedFleet
from dcops.telemetry.model import Batch, Matcher, MatchOp, make_labels, name_matcher
from dcops.telemetry.store import MemoryMetricsStore

T0 = 1_700_000_000_000
STEP_MS = 15_000


def register(inventory: MemoryInventory, objects: list[Site | Room | Rack | Node | Gpu]) -> None:
    upsert_all(inventory, objects)


@pytest.fixture
def demo() -> tuple[SimulatedFleet, MemoryInventory, MemoryMetricsStore, int]:
    fleet = SimulatedFleet(racks=3, nodes_per_rack=4, gpus_per_node=8)
    inventory = MemoryInventory()
    register(inventory, fleet.inventory_objects())
    store = MemoryMetricsStore()
    for i in range(30):
        store.append(fleet.tick(T0 + i * STEP_MS))
    return fleet, inventory, store, T0 + 29 * STEP_MS


def all_nodes(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = {n["name"]: n for room in view["rooms"] for rack in room["racks"]
             for n in rack["nodes"]}
    nodes.update({n["name"]: n for n in view["unplaced"]})
    return nodes


def latest(store: MemoryMetricsStore, name: str, node: str) -> dict[str, float]:
    found = store.latest([name_matcher(name), Matcher("node", MatchOp.EQ, node)], 0)
    return {dict(s.labels)["gpu"]: s.value for s in found}


def test_overview_mirrors_inventory_and_latest_samples(
    demo: tuple[SimulatedFleet, MemoryInventory, MemoryMetricsStore, int],
) -> None:
    _, inventory, store, now_ms = demo
    view = fleet_overview(inventory, store, now_ms)

    assert [r["name"] for r in view["rooms"]] == ["hall-1"]
    racks = view["rooms"][0]["racks"]
    assert [r["name"] for r in racks] == ["rack-01", "rack-02", "rack-03"]
    assert all(len(r["nodes"]) == 4 for r in racks)
    assert all(r["inlet_temperature_celsius"] is not None and r["power_watts"] > 0 for r in racks)

    node = racks[0]["nodes"][0]
    assert node["name"] == "node-01-01" and node["state"] == "active" and node["reporting"]
    assert node["gpu_model"] == "NVIDIA H100 80GB HBM3" and len(node["gpus"]) == 8
    util = latest(store, "dcops_gpu_utilization_percent", "node-01-01")
    temp = latest(store, "dcops_gpu_temperature_celsius", "node-01-01")
    assert [g["utilization_percent"] for g in node["gpus"]] == [util[str(i)] for i in range(8)]
    assert node["gpu_utilization_avg_percent"] == round(sum(util.values()) / 8, 1)
    assert node["gpu_temperature_max_celsius"] == max(temp.values())
    assert node["gpus"][0]["uuid"].startswith("GPU-")
    assert node["last_seen"] == now_ms / 1000

    totals = view["totals"]
    assert totals["racks"] == 3 and totals["nodes"] == 12 and totals["nodes_reporting"] == 12
    assert totals["gpus"] == totals["gpus_reporting"] == 96
    hottest = max(n["gpu_temperature_max_celsius"] for n in all_nodes(view).values())
    assert totals["gpu_temperature_max_celsius"] == hottest
    assert totals["hot_gpus"] == sum(1 for n in all_nodes(view).values() for g in n["gpus"]
                                     if g["temperature_celsius"] >= TEMP_HOT_C)
    assert totals["nodes_by_state"] == {"active": 12}


def test_hot_rack_stands_out(
    demo: tuple[SimulatedFleet, MemoryInventory, MemoryMetricsStore, int],
) -> None:
    fleet, inventory, store, now_ms = demo
    racks = {r["name"]: r for r in fleet_overview(inventory, store, now_ms)["rooms"][0]["racks"]}
    hot = racks.pop(fleet.hot_rack)
    others = max(r["inlet_temperature_celsius"] for r in racks.values())
    assert hot["inlet_temperature_celsius"] > others + 5


def test_states_silence_and_unregistered_nodes(
    demo: tuple[SimulatedFleet, MemoryInventory, MemoryMetricsStore, int],
) -> None:
    _, inventory, store, now_ms = demo
    inventory.set_node_state("node-02-03", Lifecycle.DRAINING)
    inventory.add_node(Node("spare-01"))  # registered, never reported, no rack
    stray = Batch()
    stray.add(make_labels("dcops_gpu_utilization_percent",
                          {"node": "newcomer", "gpu": "0", "rack": "rack-03"}), now_ms, 55.0)
    stray.add(make_labels("dcops_gpu_temperature_celsius",
                          {"node": "lost", "gpu": "0", "rack": "rack-99"}), now_ms, 61.0)
    stray.add(make_labels("dcops_gpu_temperature_celsius", {"node": "nowhere", "gpu": "1"}),
              now_ms, 40.0)
    store.append(stray)
    later = now_ms + (LOOKBACK_S - 10) * 1000

    view = fleet_overview(inventory, store, later)
    nodes = all_nodes(view)
    assert nodes["node-02-03"]["state"] == "draining"
    assert nodes["spare-01"]["reporting"] is False and nodes["spare-01"]["gpus"] == []
    assert nodes["newcomer"]["state"] == "unregistered"
    assert nodes["newcomer"]["gpus"][0]["utilization_percent"] == 55.0
    r03 = next(r for r in view["rooms"][0]["racks"] if r["name"] == "rack-03")
    assert "newcomer" in [n["name"] for n in r03["nodes"]]
    assert view["rooms"][1]["name"] is None
    assert [r["name"] for r in view["rooms"][1]["racks"]] == ["rack-99"]
    assert {n["name"] for n in view["unplaced"]} == {"spare-01", "nowhere"}
    assert view["totals"]["nodes_by_state"]["draining"] == 1

    # Past the lookback the simulated nodes fall silent but stay listed.
    silent = fleet_overview(inventory, store, now_ms + (LOOKBACK_S + 1) * 1000)
    first = all_nodes(silent)["node-01-01"]
    assert first["reporting"] is False and first["gpu_utilization_avg_percent"] is None
    assert first["last_seen"] is None or first["last_seen"] <= now_ms / 1000
    assert silent["totals"]["nodes_reporting"] == 0


def test_faults_are_counted_from_counter_increases() -> None:
    inventory = MemoryInventory()
    store = MemoryMetricsStore()
    xid = make_labels("dcops_gpu_xid_errors_total", {"node": "n1", "gpu": "3", "xid": "79"})
    dbe = make_labels("dcops_gpu_ecc_uncorrected_errors_total", {"node": "n1", "gpu": "5"})
    util = make_labels("dcops_gpu_utilization_percent", {"node": "n1", "gpu": "3"})
    batch = Batch()
    for i, (x, d) in enumerate([(0, 2), (1, 2), (1, 3), (0, 3), (2, 3)]):  # xid resets once
        ts = T0 + i * STEP_MS
        batch.add(xid, ts, x)
        batch.add(dbe, ts, d)
        batch.add(util, ts, 90.0)
    store.append(batch)
    view = fleet_overview(inventory, store, T0 + 4 * STEP_MS)
    node = view["unplaced"][0]
    gpus = {g["index"]: g for g in node["gpus"]}
    assert gpus[3]["faults"] == 3 and gpus[5]["faults"] == 1
    assert node["faults"] == 4 and view["totals"]["faults"] == 4


def test_empty_fleet() -> None:
    view = fleet_overview(MemoryInventory(), MemoryMetricsStore(), T0)
    assert view["rooms"] == [] and view["unplaced"] == []
    assert view["totals"]["nodes"] == 0 and view["totals"]["gpu_utilization_avg_percent"] is None


def test_node_cpu_is_the_total_not_one_core() -> None:
    class AnyOrderStore(MemoryMetricsStore):
        """Backends return latest samples in no promised order: here, reversed."""

        def latest(self, matchers: Any, since_ms: int) -> Any:
            return list(reversed(super().latest(matchers, since_ms)))

    store = AnyOrderStore()
    batch = Batch()
    now = 1_700_000_000_000
    for cpu, value in (("0", 90.0), ("total", 40.0), ("1", 10.0)):
        batch.add(make_labels("dcops_host_cpu_percent", {"node": "login-1", "cpu": cpu}),
                  now, value)
    store.append(batch)
    overview = fleet_overview(MemoryInventory(), store, now)
    nodes = [n for room in overview["rooms"] for rack in room["racks"] for n in rack["nodes"]]
    nodes += overview.get("unplaced", [])
    (node,) = [n for n in nodes if n["name"] == "login-1"]
    assert node["cpu_percent"] == 40.0
