"""Placement benchmark: time to place a batch of jobs by the packer's solver path and by
greedy topology-aware best fit, on 80 nodes and on 12,500 (8 GPUs each, 16 to a rack,
512 to a leaf switch, half the nodes partly used), and how fragmented each leaves the
cluster (partially used nodes, whole free nodes).

Batches: one small job; one 24-node gang; 20 mixed jobs (1 to 8 GPUs, some gangs).

Run from the repository root: ``python benchmarks/placement.py [--repeat N]``. The last
line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from dcops.scheduling.cluster import Cluster, NodeInfo
from dcops.scheduling.model import Job, JobSpec, Placement
from dcops.scheduling.packing import Packer, greedy


def cluster_of(nodes: int, rng: random.Random) -> Cluster:
    cluster = Cluster(NodeInfo(f"n{i}", rack=f"r{i // 16}", switch=f"s{i // 512}")
                      for i in range(nodes))
    for i in range(0, nodes, 2):
        cluster.allocate(Placement(((f"n{i}", rng.randint(1, 8)),)))
    return cluster


def batches(rng: random.Random) -> dict[str, list[Job]]:
    def job(name: str, gpus: int, tasks: int = 1) -> Job:
        return Job(name, JobSpec(name, gpus_per_task=gpus, tasks=tasks), 0.0)

    mixed = [job(f"m{i}", rng.choice([1, 2, 4, 8]), rng.choice([1, 1, 1, 1, 2, 4]))
             for i in range(20)]
    return {"one_small": [job("s", 3)], "one_gang": [job("g", 8, 24)], "mixed_20": mixed}


def shape(cluster: Cluster, placements: Mapping[str, Placement]) -> tuple[int, int]:
    trial = cluster.copy()
    for placement in placements.values():
        trial.allocate(placement)
    size = {n: trial.nodes[n].gpus for n in trial.nodes if trial.usable(n)}
    return (sum(1 for n, s in size.items() if 0 < trial.free[n] < s),
            sum(1 for n, s in size.items() if trial.free[n] == s))


def best_ms(repeat: int, run: Callable[[list[Job], Cluster], object], jobs: list[Job],
            cluster: Cluster) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run(jobs, cluster)
        times.append(time.perf_counter() - started)
    return round(min(times) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(1)
    out: dict[str, Any] = {}
    for nodes in (80, 12_500):
        cluster = cluster_of(nodes, rng)
        for name, jobs in batches(rng).items():
            packer = Packer()
            result = packer.pack(jobs, cluster)
            fallback = greedy(jobs, cluster)
            out[f"{nodes}_{name}"] = {
                "solver_ms": best_ms(args.repeat, packer.pack, jobs, cluster),
                "greedy_ms": best_ms(args.repeat, greedy, jobs, cluster),
                "path": result.path.value, "reason": result.reason,
                "placed": [len(result.placements), len(fallback)],
                "partial_whole": [shape(cluster, result.placements),
                                  shape(cluster, fallback)],
            }
            print(f"{nodes:>6} nodes {name:<10} {out[f'{nodes}_{name}']}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
