"""The fleet overview: every room, rack, node and GPU with its latest readings, as JSON.

It joins the inventory (what exists, its lifecycle state) with the newest samples in the
metrics store (what it is doing now). Nodes that report metrics but are not registered
yet are shown too, under their ``rack`` label or as unplaced, so nothing that talks to
dcops is invisible.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcops.fleet.inventory import Inventory
from dcops.fleet.model import Gpu, Node
from dcops.telemetry.model import LatestSample, Matcher, MatchOp, SeriesData
from dcops.telemetry.store import MetricsStore

LOOKBACK_S = 300
"""Samples older than this are not "latest": a node silent this long is not reporting."""
FAULT_WINDOW_S = 3600
"""Faults (Xid, uncorrected ECC) are counted over this window."""
TEMP_WARN_C = 80.0
TEMP_HOT_C = 87.0
"""H100 thermal slowdown starts near 87 C."""

GPU_FIELDS = {
    "dcops_gpu_utilization_percent": "utilization_percent",
    "dcops_gpu_temperature_celsius": "temperature_celsius",
    "dcops_gpu_power_watts": "power_watts",
    "dcops_gpu_memory_used_bytes": "memory_used_bytes",
    "dcops_gpu_memory_total_bytes": "memory_total_bytes",
}
THROTTLE_METRICS = ("dcops_gpu_throttle_active",)
THERMAL_REASONS = frozenset({"sw_thermal_slowdown", "hw_thermal_slowdown", "hw_slowdown"})
NODE_FIELDS = {"dcops_host_cpu_percent": "cpu_percent"}
RACK_FIELDS = {
    "dcops_facility_inlet_temperature_celsius": "inlet_temperature_celsius",
    "dcops_facility_rack_power_watts": "power_watts",
}
FAULT_COUNTERS = ("dcops_gpu_xid_errors_total", "dcops_gpu_ecc_uncorrected_errors_total")


@dataclass
class _GpuView:
    values: dict[str, float] = field(default_factory=dict)
    throttled: set[str] = field(default_factory=set)
    faults: int = 0
    uuid: str = ""


@dataclass
class _NodeView:
    rack: str | None = None
    last_ms: int | None = None
    values: dict[str, float] = field(default_factory=dict)
    gpus: dict[str, _GpuView] = field(default_factory=lambda: defaultdict(_GpuView))


def _name_regex(names: Iterable[str]) -> Matcher:
    return Matcher("__name__", MatchOp.RE, "|".join(sorted(set(names))))


def _read_latest(store: MetricsStore, now_ms: int) -> tuple[dict[str, _NodeView],
                                                            dict[str, dict[str, float]]]:
    names = [*GPU_FIELDS, *THROTTLE_METRICS, *NODE_FIELDS, *RACK_FIELDS]
    found: list[LatestSample] = store.latest([_name_regex(names)], now_ms - LOOKBACK_S * 1000)
    nodes: dict[str, _NodeView] = defaultdict(_NodeView)
    racks: dict[str, dict[str, float]] = defaultdict(dict)
    for sample in found:
        labels = dict(sample.labels)
        name = labels["__name__"]
        if name in RACK_FIELDS:
            if "rack" in labels and "node" not in labels:
                racks[labels["rack"]][RACK_FIELDS[name]] = sample.value
            continue
        node_name = labels.get("node")
        if not node_name:
            continue
        node = nodes[node_name]
        node.rack = node.rack or labels.get("rack")
        node.last_ms = max(node.last_ms or 0, sample.ts_ms)
        if name in NODE_FIELDS:
            if labels.get("cpu", "total") == "total":  # not one core of the node
                node.values[NODE_FIELDS[name]] = sample.value
            continue
        gpu_key = labels.get("gpu")
        if gpu_key is None:
            continue
        gpu = node.gpus[gpu_key]
        gpu.uuid = gpu.uuid or labels.get("uuid", "")
        if name in GPU_FIELDS:
            gpu.values[GPU_FIELDS[name]] = sample.value
        elif sample.value > 0 and labels.get("reason") in THERMAL_REASONS:
            gpu.throttled.add(labels["reason"])
    return nodes, racks


def _increase(series: SeriesData) -> float:
    """How much a counter grew over its samples, counting through resets as Prometheus does."""
    values = series.values
    steps = np.diff(values)
    return float(steps[steps >= 0].sum() + values[1:][steps < 0].sum())


def _read_faults(store: MetricsStore, now_ms: int, nodes: dict[str, _NodeView]) -> None:
    start = now_ms - FAULT_WINDOW_S * 1000
    for series in store.select([_name_regex(FAULT_COUNTERS)], start, now_ms):
        labels = dict(series.labels)
        node, gpu = labels.get("node"), labels.get("gpu")
        grew = _increase(series)
        if node and gpu is not None and grew > 0 and node in nodes:
            nodes[node].gpus[gpu].faults += round(grew)


def _gpu_index(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 30, key)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def _node_json(name: str, node: Node | None, view: _NodeView | None,
               gpus: list[Gpu], now_ms: int) -> dict[str, Any]:
    view = view or _NodeView()
    by_key: dict[str, dict[str, Any]] = {}
    for gpu in gpus:
        by_key[str(gpu.index)] = {"index": gpu.index, "uuid": gpu.uuid, "state": gpu.state.value}
    for key, gview in view.gpus.items():
        entry = by_key.setdefault(key, {"index": int(key) if key.isdigit() else key,
                                        "uuid": gview.uuid, "state": None})
        entry["uuid"] = entry["uuid"] or gview.uuid
        for field_name, value in gview.values.items():
            digits = 0 if field_name.endswith("bytes") else 1
            entry[field_name] = _round(value, digits)
        entry["throttled"] = sorted(gview.throttled)
        entry["faults"] = gview.faults
    out_gpus = [by_key[k] for k in sorted(by_key, key=_gpu_index)]
    utils = [g["utilization_percent"] for g in out_gpus if g.get("utilization_percent") is not None]
    temps = [g["temperature_celsius"] for g in out_gpus if g.get("temperature_celsius") is not None]
    powers = [g["power_watts"] for g in out_gpus if g.get("power_watts") is not None]
    seen = [t for t in (node.last_seen if node else None,
                        view.last_ms / 1000 if view.last_ms else None) if t is not None]
    return {
        "name": name,
        "rack": node.rack if node else view.rack,
        "state": node.state.value if node else "unregistered",
        "in_inventory": node is not None,
        "gpu_model": node.gpu_model if node else "",
        "gpu_count": max(node.gpu_count if node else 0, len(out_gpus)),
        "last_seen": max(seen) if seen else None,
        "reporting": view.last_ms is not None and view.last_ms >= now_ms - LOOKBACK_S * 1000,
        "gpu_utilization_avg_percent": _round(sum(utils) / len(utils)) if utils else None,
        "gpu_temperature_max_celsius": max(temps) if temps else None,
        "gpu_power_watts": _round(sum(powers)) if powers else None,
        "cpu_percent": _round(view.values.get("cpu_percent")),
        "throttled_gpus": sum(1 for g in out_gpus if g.get("throttled")),
        "faults": sum(g.get("faults", 0) for g in out_gpus),
        "gpus": out_gpus,
    }


def _rack_json(name: str, room: str | None, capacity: float | None,
               facility: dict[str, float], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "room": room,
        "power_capacity_watts": capacity,
        "power_watts": _round(facility.get("power_watts"), 0),
        "inlet_temperature_celsius": _round(facility.get("inlet_temperature_celsius")),
        "nodes": nodes,
    }


def _totals(nodes: list[dict[str, Any]], racks: int) -> dict[str, Any]:
    gpus = [g for n in nodes for g in n["gpus"]]
    utils = [g["utilization_percent"] for g in gpus if g.get("utilization_percent") is not None]
    temps = [g["temperature_celsius"] for g in gpus if g.get("temperature_celsius") is not None]
    states: dict[str, int] = defaultdict(int)
    for node in nodes:
        states[node["state"]] += 1
    return {
        "racks": racks,
        "nodes": len(nodes),
        "nodes_reporting": sum(1 for n in nodes if n["reporting"]),
        "nodes_by_state": dict(sorted(states.items())),
        "gpus": len(gpus),
        "gpus_reporting": len(utils),
        "gpu_utilization_avg_percent": _round(sum(utils) / len(utils)) if utils else None,
        "gpu_temperature_max_celsius": max(temps) if temps else None,
        "gpu_power_watts": _round(sum(n["gpu_power_watts"] or 0.0 for n in nodes), 0),
        "hot_gpus": sum(1 for t in temps if t >= TEMP_HOT_C),
        "throttled_gpus": sum(n["throttled_gpus"] for n in nodes),
        "faults": sum(n["faults"] for n in nodes),
    }


def fleet_overview(inventory: Inventory, store: MetricsStore, now_ms: int) -> dict[str, Any]:
    """The dashboard's fleet view at `now_ms`: rooms -> racks -> nodes -> GPUs, plus totals."""
    views, facility = _read_latest(store, now_ms)
    _read_faults(store, now_ms, views)
    inv_nodes = {n.name: n for n in inventory.list_nodes()}
    gpus_by_node: dict[str, list[Gpu]] = defaultdict(list)
    for gpu in inventory.list_gpus():
        gpus_by_node[gpu.node].append(gpu)

    nodes = {name: _node_json(name, inv_nodes.get(name), views.get(name),
                              gpus_by_node.get(name, []), now_ms)
             for name in sorted(set(inv_nodes) | set(views))}
    by_rack: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for node in nodes.values():
        by_rack[node["rack"]].append(node)

    rooms: list[dict[str, Any]] = []
    known_racks: set[str] = set()
    for room in inventory.list_rooms():
        racks = []
        for rack in inventory.list_racks(room.name):
            known_racks.add(rack.name)
            racks.append(_rack_json(rack.name, room.name, rack.power_capacity_watts,
                                    facility.get(rack.name, {}), by_rack.get(rack.name, [])))
        rooms.append({"name": room.name, "site": room.site, "racks": racks})
    stray = sorted(r for r in set(by_rack) | set(facility)
                   if r is not None and r not in known_racks)
    if stray:
        rooms.append({"name": None, "site": None, "racks": [
            _rack_json(r, None, None, facility.get(r, {}), by_rack.get(r, [])) for r in stray]})
    return {
        "generated_at": now_ms / 1000,
        "lookback_s": LOOKBACK_S,
        "fault_window_s": FAULT_WINDOW_S,
        "thresholds": {"temperature_warn_celsius": TEMP_WARN_C,
                       "temperature_hot_celsius": TEMP_HOT_C},
        "totals": _totals(list(nodes.values()), len(known_racks) + len(stray)),
        "rooms": rooms,
        "unplaced": by_rack.get(None, []),
    }
