"""Scheduling benchmark: the Philly trace (jobs submitted 2017-10-01 to 2017-11-30 in the 11
VCs the Helios artifact uses, pooled into one cluster of 8-GPU nodes) replayed under every
policy at 64, 80, 96 and 128 nodes, with consolidated placement and a checkpoint overhead of
7 s (1 GPU) / 30 s (more) on every restart after a preemption.

Per node count and policy: average JCT, average and p99 queueing delay (first start -
submit), makespan and utilization (allocated GPU-seconds over GPUs x makespan). Then the
calibration against the reference FIFO and SJF runs at 80 nodes, the targets (dcops's policy
against Tiresias, QSSF-style and SRTF-oracle), the replay time of one policy, and the time
of one scheduling decision with 10,000 queued jobs on 12,500 nodes.

Run from the repository root: ``python benchmarks/scheduling.py [--nodes 64,80,96,128]
[--workers 2]``. The trace is read from ``$DCOPS_TRACES_DIR`` or ``../shared/data/traces``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from peers import percentile

from dcops.scheduling.executor import JobEvent
from dcops.scheduling.model import Job, JobState
from dcops.scheduling.policies.backfill import EasyBackfill
from dcops.scheduling.policies.base import Policy
from dcops.scheduling.policies.best import Best
from dcops.scheduling.policies.fairshare import FairShare
from dcops.scheduling.policies.ordered import Fifo, Qssf, SjfOracle
from dcops.scheduling.policies.preemptive import SrtfOracle, Tiresias
from dcops.scheduling.scheduler import Scheduler
from dcops.simulation.replay import Kernel, SimulatedCluster, fresh, simulate, simulated_nodes
from dcops.simulation.traces import read_trace, read_vc_nodes

POLICIES: dict[str, type[Any]] = {
    "fifo": Fifo, "sjf": SjfOracle, "srtf": SrtfOracle, "tiresias": Tiresias, "qssf": Qssf,
    "easy": EasyBackfill, "fairshare": FairShare, "dcops": Best}
REFERENCE_80 = {"fifo": (30_668, 19_188), "sjf": (13_304, 1_823)}
"""(average JCT, average queueing delay) of the reference runs at 80 nodes (the traces
README's calibration table)."""


def traces_dir() -> Path:
    found = os.environ.get("DCOPS_TRACES_DIR")
    path = Path(found) if found else Path(__file__).resolve().parents[1].parent / "shared" \
        / "data" / "traces"
    if not (path / "philly_jobs_pollux.csv.gz").exists():
        raise SystemExit(f"the Philly trace is not in {path}: set DCOPS_TRACES_DIR")
    return path


@functools.cache
def load() -> list[Job]:
    """The trace's jobs, read once per process (replays run on fresh copies)."""
    where = traces_dir()
    trace = read_trace(where / "philly_jobs_pollux.csv.gz", "philly",
                       start=date(2017, 10, 1), end=date(2017, 11, 30),
                       tenants=set(read_vc_nodes(where / "philly_vc_nodes_helios.csv")))
    return trace.jobs


def run_one(args: tuple[str, int]) -> dict[str, Any]:
    """One replay (in a worker process): the figures of `policy` on `nodes` nodes."""
    name, nodes = args
    jobs = load()
    policy: Policy = POLICIES[name]()
    replay = simulate(jobs, policy, nodes=nodes)
    done = [j for j in replay.jobs if j.state is JobState.COMPLETED]
    submit = np.array([j.submit_s for j in done])
    start = np.array([j.start_s for j in done], dtype=np.float64)
    end = np.array([j.end_s for j in done], dtype=np.float64)
    queue = start - submit
    makespan = float(end.max() - submit.min())
    return {"nodes": nodes, "policy": name, "jobs": len(done),
            "avg_jct_s": round(float((end - submit).mean()), 1),
            "avg_queue_s": round(float(queue.mean()), 1),
            "p99_queue_s": round(float(np.percentile(queue, 99)), 1),
            "makespan_s": round(makespan, 1),
            "utilization": round(replay.allocated_gpu_s / (nodes * 8 * makespan), 4),
            "preemptions": sum(j.preemptions for j in replay.jobs),
            "replay_s": round(replay.wall_s, 2)}


def decision_times(policy_name: str, nodes: int = 12_500, queued: int = 10_000,
                   decisions: int = 200, seed: int = 0) -> list[float]:
    """Seconds per scheduling decision with `queued` jobs waiting on `nodes` 8-GPU nodes,
    nearly full: each decision follows the completion of a random running job."""
    rng = random.Random(seed)
    jobs = fresh(load())
    kernel = Kernel()
    manager = SimulatedCluster(simulated_nodes(nodes, 8), kernel)
    scheduler = Scheduler(POLICIES[policy_name](), manager, record_events=False)
    manager.scheduler = scheduler
    it = iter(jobs * (1 + 2 * (nodes * 8 + queued) // len(jobs)))
    while scheduler.cluster.free_gpus > 8:  # fill with running jobs, a batch at a time
        for _ in range(min(5_000, max(1, scheduler.cluster.free_gpus // 2))):
            job = next(it)
            scheduler.submit(Job(f"r{len(scheduler.jobs)}", job.spec, 0.0,
                                 duration_s=job.duration_s), 0.0)
        scheduler.schedule(0.0)
    for job in list(scheduler.waiting()):  # what did not fit goes
        scheduler.cancel(job.id, 0.0)
    while len(scheduler.queue) < queued:
        job = next(it)
        scheduler.submit(Job(f"q{len(scheduler.jobs)}", job.spec, 500.0,
                             duration_s=job.duration_s), 500.0)
    times = []
    now = 1_000.0  # every running job past its minimum run: all may be preempted
    for _ in range(decisions):
        victim = rng.choice(list(scheduler.running.values()))
        scheduler.handle(JobEvent(victim.id, now, JobState.COMPLETED))
        started = time.perf_counter()
        scheduler.schedule(now)
        times.append(time.perf_counter() - started)
        now += 1.0
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="64,80,96,128")
    parser.add_argument("--policies", default="fifo,sjf,srtf,tiresias,qssf,fairshare,easy,"
                                              "dcops")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    err = sys.stderr
    sizes = [int(n) for n in args.nodes.split(",")]
    names = args.policies.split(",")
    started = time.perf_counter()
    jobs = load()
    print(f"{len(jobs)} jobs read in {time.perf_counter() - started:.1f} s", file=err)
    runs = [(name, nodes) for nodes in sizes for name in names]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for row in pool.map(run_one, runs):
            results.setdefault(str(row["nodes"]), {})[row["policy"]] = row
            print(f"{row['nodes']:>4} nodes {row['policy']:>10}: avg JCT "
                  f"{row['avg_jct_s']:>10,.0f} s, avg queue {row['avg_queue_s']:>9,.0f} s, "
                  f"p99 queue {row['p99_queue_s']:>9,.0f} s, util {row['utilization']:.3f}, "
                  f"{row['preemptions']} preemptions, replay {row['replay_s']:.1f} s",
                  file=err, flush=True)
    figures: dict[str, Any] = {"bench": "scheduling", "jobs": len(jobs), "results": results}
    bound = float(np.mean([j.duration_s or 0.0 for j in jobs]))
    figures["avg_duration_s"] = round(bound, 1)
    if "80" in results:
        calibration = {}
        for name, (jct, queue) in REFERENCE_80.items():
            if name in results["80"]:
                row = results["80"][name]
                calibration[name] = {
                    "avg_jct_s": row["avg_jct_s"], "reference_jct_s": jct,
                    "jct_diff": round(row["avg_jct_s"] / jct - 1, 4),
                    "avg_queue_s": row["avg_queue_s"], "reference_queue_s": queue,
                    "queue_diff": round(row["avg_queue_s"] / queue - 1, 4)}
        figures["calibration_80"] = calibration
    if "dcops" in names and "tiresias" in names:
        ratios = {n: round(r["dcops"]["avg_jct_s"] / r["tiresias"]["avg_jct_s"], 4)
                  for n, r in results.items()}
        figures["best_vs_tiresias"] = ratios
        figures["best_vs_tiresias_max"] = max(ratios.values())
        figures["tiresias_bound_ratio"] = {
            n: round(bound / r["tiresias"]["avg_jct_s"], 4) for n, r in results.items()}
    if "dcops" in names and "qssf" in names:
        ratios = {n: round(r["dcops"]["avg_jct_s"] / r["qssf"]["avg_jct_s"], 4)
                  for n, r in results.items()}
        figures["best_vs_qssf"] = ratios
        figures["best_vs_qssf_max"] = max(ratios.values())
    if "80" in results and {"dcops", "tiresias", "srtf"} <= set(results["80"]):
        r = results["80"]
        gap = r["tiresias"]["avg_jct_s"] - r["srtf"]["avg_jct_s"]
        figures["gap_closed_80"] = round(
            (r["tiresias"]["avg_jct_s"] - r["dcops"]["avg_jct_s"]) / gap, 3) if gap else None
    at80 = results.get("80", {})
    figures["replay_s"] = max((row["replay_s"] for row in at80.values()), default=None)
    figures["replay_s_dcops"] = at80.get("dcops", {}).get("replay_s")
    times = decision_times("dcops")
    figures["decision_p50_ms"] = round(percentile(times, 50) * 1000, 2)
    figures["decision_p99_ms"] = round(percentile(times, 99) * 1000, 2)
    fifo_times = decision_times("fifo")
    figures["decision_p99_ms_fifo"] = round(percentile(fifo_times, 99) * 1000, 2)
    figures["note"] = (
        "replay_s: the slowest policy's replay of the whole trace at 80 nodes (one process "
        "each, two at a time); decision: 10,000 queued jobs, 12,500 nodes with at most 8 "
        "GPUs free, after each of 200 random completions (every running job may be "
        "preempted); avg_duration_s is a lower bound on any policy's average JCT")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
