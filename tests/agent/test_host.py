"""The host collector on this very machine: values that make sense, names and labels as promised."""

from __future__ import annotations

from collections import namedtuple

import psutil

from dcops.agent.host import HostCollector, cpu_busy_percent
from dcops.core.clock import FakeClock
from dcops.telemetry.model import Batch, labels_dict, metric_name


def by_name(batch: Batch) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for labels, _, value in batch.samples():
        out.setdefault(metric_name(labels), []).append((labels_dict(labels), value))
    return out


def one(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    assert len(samples[name]) == 1, name
    return samples[name][0][1]


def test_host_metrics_are_sane_on_this_machine() -> None:
    clock = FakeClock(1_700_000_000.0)
    collector = HostCollector("n1", clock)
    sum(i * i for i in range(200_000))  # some CPU work between snapshots
    first = collector.collect()
    clock.advance(15)
    second = by_name(collector.collect())
    assert {ts for _, ts, _ in first.samples()} == {1_700_000_000_000}

    cores = psutil.cpu_count()
    percent = {s["cpu"]: v for s, v in second["dcops_host_cpu_percent"]}
    assert set(percent) == {"total", *(str(i) for i in range(cores or 0))}
    assert all(0.0 <= v <= 100.0 for v in percent.values())
    modes = {s["mode"] for s, _ in second["dcops_host_cpu_seconds_total"] if s["cpu"] == "0"}
    assert {"user", "system", "idle", "iowait"} <= modes
    assert one(second, "dcops_host_cpu_count") == cores

    total = one(second, "dcops_host_memory_total_bytes")
    used = one(second, "dcops_host_memory_used_bytes")
    available = one(second, "dcops_host_memory_available_bytes")
    assert total > 100 * 2**20 and 0 < used < total and 0 < available <= total
    assert one(second, "dcops_host_swap_used_bytes") <= one(second, "dcops_host_swap_total_bytes")
    assert one(second, "dcops_host_load1") >= 0

    partitions = psutil.disk_partitions(all=False)
    if partitions:
        disks = {s["mountpoint"]: v for s, v in second["dcops_host_disk_total_bytes"]}
        assert partitions[0].mountpoint in disks and disks[partitions[0].mountpoint] > 0
    nics = {s["interface"] for s, _ in second.get("dcops_host_network_received_bytes_total", [])}
    assert "lo" not in nics
    assert nics == {n for n in psutil.net_io_counters(pernic=True)
                    if not n.startswith(("lo", "veth"))}
    for name, samples in second.items():
        assert name.startswith("dcops_host_")
        assert all(s["node"] == "n1" for s, _ in samples)
        assert all(v >= 0 for _, v in samples), name


def test_counters_never_go_backwards() -> None:
    collector = HostCollector("n1")
    before = {tuple(sorted(s.items())): v
              for s, v in by_name(collector.collect())["dcops_host_cpu_seconds_total"]}
    after = {tuple(sorted(s.items())): v
             for s, v in by_name(collector.collect())["dcops_host_cpu_seconds_total"]}
    assert before.keys() == after.keys()
    assert all(after[k] >= before[k] for k in before)


Times = namedtuple("Times", "user nice system idle iowait guest")


def test_cpu_busy_percent_from_two_snapshots() -> None:
    before = Times(100, 0, 50, 800, 50, 10)
    after = Times(130, 0, 60, 850, 60, 20)  # 40 busy, 60 idle/iowait; guest is inside user
    assert cpu_busy_percent(before, after) == 40.0
    assert cpu_busy_percent(after, after) == 0.0
