"""Query benchmark: PromQL latency of dcops's engine against a real Prometheus, same data.

A simulated GPU fleet (``--scale`` x 1,000 nodes x 8 GPUs, 6 DCGM metrics per GPU and
20 host metrics per node, every 15 s for 6 hours ending a minute ago; see
``query_data.py``) is loaded into dcops's production store (DuckDBMetricsStore in a temp
dir) and, written as OpenMetrics text and turned into TSDB blocks by ``promtool tsdb
create-blocks-from openmetrics``, into a real Prometheus. Twenty dashboard and alert-rule
queries then run as an instant query at the end, a range query over the last hour
(step 60 s) and one over the whole 6 hours (step 300 s), ``--repeats`` times each
against both.

dcops is timed in-process: ``Engine.instant``/``Engine.range``, ``Result.to_prometheus_json()``
and the JSON encoding of the reply (what the HTTP API does), without the loopback HTTP
hop. Prometheus is timed through its HTTP API (/api/v1/query, /api/v1/query_range) on
loopback with a keep-alive connection, up to the full body read. Answers are compared per
query: same series (by labels) and values equal to 1e-6 relative (1e-9 absolute near zero).

First, the PromQL differential corpus (tests/query/corpus.txt, 400+ instant and range
answers) runs against a separate real Prometheus and dcops's DuckDB store over the same
hour of data, requiring identical labels and values (1e-9 relative); its counts are
``differential_cases`` and ``differential_mismatches``.

Run from the repository root: ``python benchmarks/query.py [--scale F] [--repeats N]``
(the default, the full 1,000-node fleet, takes about ten minutes here, most of it
building Prometheus's blocks). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests/: the differential corpus

import peers
from peers import percentile
from query_data import build_fleet, load_store, write_openmetrics

from dcops.backends.duckdb_store import DuckDBMetricsStore
from dcops.core.clock import SystemClock
from dcops.query import Engine
from dcops.telemetry.store import Retention

FULL_NODES = 1000
QUERIES = {
    "avg_util_by_rack": "avg by (rack) (DCGM_FI_DEV_GPU_UTIL)",
    "topk_hottest_gpus": "topk(10, DCGM_FI_DEV_GPU_TEMP)",
    "ecc_rate_by_node": "sum by (node) (rate(DCGM_FI_DEV_ECC_SBE_VOL_TOTAL[5m]))",
    "util_p99_1h": "quantile_over_time(0.99, DCGM_FI_DEV_GPU_UTIL[1h])",
    "predict_temp_1h": "max by (rack) (predict_linear(DCGM_FI_DEV_GPU_TEMP[30m], 3600))",
    "net_rx_rate_by_node": "sum by (node) (rate(node_network_receive_bytes_total[5m]))",
    "throttled_gpus": "count(DCGM_FI_DEV_CLOCK_THROTTLE_REASONS > 0)",
    "max_temp_by_rack": "max by (rack) (DCGM_FI_DEV_GPU_TEMP)",
    "power_avg_10m_by_rack": "avg by (rack) (avg_over_time(DCGM_FI_DEV_POWER_USAGE[10m]))",
    "xid_increase_1h": "sum by (node) (increase(DCGM_FI_DEV_XID_ERRORS_TOTAL[1h]))",
    "power_by_rack": "sum by (rack) (DCGM_FI_DEV_POWER_USAGE)",
    "mem_used_pct": "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
    "cpu_busy_by_rack": "avg by (rack) (1 - rate(node_cpu_idle_seconds_total[5m]) / 64)",
    "coolest_nodes": "bottomk(5, avg by (node) (DCGM_FI_DEV_GPU_UTIL))",
    "temp_stddev_by_rack": "stddev by (rack) (DCGM_FI_DEV_GPU_TEMP)",
    "hot_gpus_alert": "DCGM_FI_DEV_GPU_TEMP > 75",
    "temp_swing_5m": "max by (rack) (max_over_time(DCGM_FI_DEV_GPU_TEMP[5m]) "
                     "- min_over_time(DCGM_FI_DEV_GPU_TEMP[5m]))",
    "load_per_gpu": "node_load1 / on (node) count by (node) (DCGM_FI_DEV_GPU_UTIL)",
    "ib_tx_total_rate": "sum(rate(node_ib_port_data_transmitted_bytes_total[5m]))",
    "idle_gpus_by_rack": "count by (rack) (DCGM_FI_DEV_GPU_UTIL < 10)",
}


TIE_QUERIES = {"topk_hottest_gpus", "coolest_nodes"}
"""Answers compared by the values kept per step: equal values may pick different series."""


@dataclass(frozen=True)
class Shape:
    """How a query is asked: instant at the end, or a range over the last `span_s`."""

    name: str
    span_s: int  # 0 for an instant query
    step_s: int


SHAPES = (Shape("instant", 0, 0), Shape("range_1h", 3600, 60), Shape("range_6h", 6 * 3600, 300))


def start_prometheus(work: Path, data: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    return peers.start_prometheus(work, "global:\n  scrape_interval: 1h\nscrape_configs: []\n",
                                  f"--storage.tsdb.path={data}",
                                  "--storage.tsdb.retention.time=30d", *extra)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def params(query: str, shape: Shape, end_ms: int) -> dict[str, str]:
    if not shape.span_s:
        return {"query": query, "time": f"{end_ms / 1000:.3f}"}
    return {"query": query, "start": f"{(end_ms - shape.span_s * 1000) / 1000:.3f}",
            "end": f"{end_ms / 1000:.3f}", "step": str(shape.step_s)}


def run_dcops(engine: Engine, query: str, shape: Shape, end_ms: int) -> dict[str, Any]:
    """The answer's ``data``, encoded to the JSON text the API would send (as Starlette's
    JSONResponse does), so dcops's time includes the encoding that Prometheus's does."""
    if not shape.span_s:
        data = engine.instant(query, end_ms).to_prometheus_json()
    else:
        data = engine.range(query, end_ms - shape.span_s * 1000, end_ms,
                            shape.step_s * 1000).to_prometheus_json()
    json.dumps({"status": "success", "data": data}, ensure_ascii=False, allow_nan=False,
               separators=(",", ":"))
    return data


def run_prometheus(client: httpx.Client, url: str, query: str, shape: Shape,
                   end_ms: int) -> bytes:
    path = "/api/v1/query" if not shape.span_s else "/api/v1/query_range"
    reply = client.get(url + path, params=params(query, shape, end_ms))
    body = reply.read()
    if reply.status_code != 200:
        raise RuntimeError(f"prometheus {reply.status_code} for {query!r}: {body[:300]!r}")
    return body


def _points(data: dict[str, Any]) -> dict[tuple[tuple[str, str], ...], list[tuple[float, float]]]:
    rtype, result = data["resultType"], data["result"]
    if rtype == "scalar":
        return {(): [(float(result[0]), float(result[1]))]}
    out = {}
    for s in result:
        key = tuple(sorted(s["metric"].items()))
        pts = [s["value"]] if rtype == "vector" else s["values"]
        out[key] = [(float(t), float(v)) for t, v in pts]
    return out


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= max(1e-6 * max(abs(a), abs(b)), 1e-9)


def _by_step(points: dict[Any, list[tuple[float, float]]]) -> dict[float, list[float]]:
    out: dict[float, list[float]] = {}
    for pts in points.values():
        for t, v in pts:
            out.setdefault(t, []).append(v)
    return {t: sorted(vs) for t, vs in out.items()}


def compare(ours: dict[str, Any], theirs: dict[str, Any], *,
            ties: bool = False) -> tuple[int, int, str]:
    """(our series, their series, '' if equal else what differs first).

    With `ties` (topk/bottomk), which of several equal values is kept is up to the
    implementation, so the values kept at each step are compared rather than the series.
    """
    a, b = _points(ours), _points(theirs)
    if ours["resultType"] != theirs["resultType"]:
        return len(a), len(b), f"type {ours['resultType']} vs {theirs['resultType']}"
    if ties:
        sa, sb = _by_step(a), _by_step(b)
        if sa.keys() != sb.keys():
            return len(a), len(b), f"steps differ: {len(sa)} vs {len(sb)}"
        for t, kept in sa.items():
            other = sb[t]
            if len(kept) != len(other) or not all(map(_close, kept, other)):
                return len(a), len(b), f"at {t}: values {kept} vs {other}"
        return len(a), len(b), ""
    if a.keys() != b.keys():
        return len(a), len(b), f"series differ: {len(a.keys() - b.keys())} only in dcops, " \
                               f"{len(b.keys() - a.keys())} only in prometheus"
    for key, pa in a.items():
        pb = b[key]
        if len(pa) != len(pb):
            return len(a), len(b), f"{dict(key)}: {len(pa)} vs {len(pb)} points"
        for (ta, va), (tb, vb) in zip(pa, pb, strict=True):
            if ta != tb or not _close(va, vb):
                return len(a), len(b), f"{dict(key)} at {ta}/{tb}: {va} vs {vb}"
    return len(a), len(b), ""


def differential(work: Path) -> dict[str, Any]:
    """The PromQL differential corpus (tests/query/corpus.txt) against a real Prometheus,
    over dcops's production store: how many answers were compared, how many differ."""
    from tests.query.differential import load_both, run_corpus

    work.mkdir(parents=True)
    proc, url = start_prometheus(work, work / "prom", "--web.enable-remote-write-receiver")
    store = DuckDBMetricsStore(work / "dcops", Retention(), flush_interval_s=3600.0,
                               clock=SystemClock())
    try:
        start_ms = (int(time.time()) // 60 - 62) * 60_000
        load_both(store, url, start_ms)
        with httpx.Client(base_url=url, timeout=30.0) as client:
            run = run_corpus(Engine(store), client, start_ms)
    finally:
        store.close()
        stop(proc)
    return {"differential_cases": run.compared, "differential_mismatches": len(run.failures),
            "differential_details": run.failures[:10]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the 1,000-node fleet (0.1: 100 nodes, for a quick run)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per query and shape")
    parser.add_argument("--only", default="", help="comma-separated query names to run")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        raise SystemExit("prometheus and promtool are needed on PATH")
    nodes = max(1, round(FULL_NODES * args.scale))
    end_ms = (int(time.time()) // 60 - 1) * 60_000
    work = Path(tempfile.mkdtemp(prefix="dcops-query-bench-"))
    figures: dict[str, Any] = {"bench": "query", "scale": args.scale, "nodes": nodes,
                               "gpus": nodes * 8}
    err = sys.stderr
    proc = None
    store = None
    try:
        figures.update(differential(work / "differential"))
        print(f"differential suite: {figures['differential_cases']} answers compared, "
              f"{figures['differential_mismatches']} mismatches", file=err)
        t0 = time.perf_counter()
        fleet = build_fleet(nodes, end_ms)
        figures.update(series=fleet.series, samples=fleet.samples,
                       generate_s=round(time.perf_counter() - t0, 2))
        print(f"{nodes} nodes: {fleet.series} series, {fleet.samples} samples "
              f"({figures['generate_s']} s to generate)", file=err)

        t0 = time.perf_counter()
        store = DuckDBMetricsStore(work / "dcops", Retention(), flush_interval_s=3600.0,
                                   clock=SystemClock())
        load_store(fleet, store)
        figures["dcops_load_s"] = round(time.perf_counter() - t0, 2)
        print(f"dcops load (append + flush into DuckDB): {figures['dcops_load_s']} s", file=err)

        t0 = time.perf_counter()
        size = write_openmetrics(fleet, work / "fleet.om")
        figures["openmetrics_write_s"] = round(time.perf_counter() - t0, 2)
        figures["openmetrics_mb"] = round(size / 1e6, 1)
        del fleet
        t0 = time.perf_counter()
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics",
                        str(work / "fleet.om"), str(work / "prom")], check=True,
                       stdout=subprocess.DEVNULL)
        figures["promtool_blocks_s"] = round(time.perf_counter() - t0, 2)
        (work / "fleet.om").unlink()
        t0 = time.perf_counter()
        proc, url = start_prometheus(work, work / "prom")
        figures["prometheus_start_s"] = round(time.perf_counter() - t0, 2)
        print(f"prometheus load: openmetrics {figures['openmetrics_write_s']} s "
              f"({figures['openmetrics_mb']} MB), promtool {figures['promtool_blocks_s']} s, "
              f"start {figures['prometheus_start_s']} s", file=err)

        engine = Engine(store)
        names = [n for n in QUERIES if not args.only or n in args.only.split(",")]
        rows: list[dict[str, Any]] = []
        mismatches = []
        with httpx.Client(timeout=120.0) as client:
            for name in names:
                query = QUERIES[name]
                for shape in SHAPES:
                    ours = run_dcops(engine, query, shape, end_ms)  # warm-up, and the answer
                    theirs = json.loads(run_prometheus(client, url, query, shape, end_ms))["data"]
                    n_ours, n_theirs, diff = compare(ours, theirs,
                                                      ties=name in TIE_QUERIES)
                    if diff:
                        mismatches.append(f"{name}/{shape.name}: {diff}")
                    t_ours, t_theirs = [], []
                    for _ in range(args.repeats):
                        t0 = time.perf_counter()
                        run_dcops(engine, query, shape, end_ms)
                        t_ours.append(time.perf_counter() - t0)
                        t0 = time.perf_counter()
                        run_prometheus(client, url, query, shape, end_ms)
                        t_theirs.append(time.perf_counter() - t0)
                    row: dict[str, Any] = {"query": name, "shape": shape.name, "series": n_ours,
                           "dcops_p50_ms": round(percentile(t_ours, 50) * 1000, 2),
                           "dcops_p99_ms": round(percentile(t_ours, 99) * 1000, 2),
                           "prom_p50_ms": round(percentile(t_theirs, 50) * 1000, 2),
                           "prom_p99_ms": round(percentile(t_theirs, 99) * 1000, 2),
                           "match": not diff}
                    row["ratio_vs_prometheus"] = round(
                        percentile(t_ours, 50) / percentile(t_theirs, 50), 2)
                    rows.append(row)
                    print(f"{name:24s} {shape.name:9s} series={n_ours:6d}/{n_theirs:<6d} "
                          f"dcops p50 {row['dcops_p50_ms']:9.2f} p99 {row['dcops_p99_ms']:9.2f}"
                          f" | prom p50 {row['prom_p50_ms']:8.2f} p99 {row['prom_p99_ms']:8.2f}"
                          f" | x{row['ratio_vs_prometheus']:<7} {diff or 'ok'}",
                          file=err)
        ratios = [r["ratio_vs_prometheus"] for r in rows]
        worst = max(rows, key=lambda r: r["ratio_vs_prometheus"])
        figures.update(
            queries=len(names), shapes=[s.name for s in SHAPES], measurements=len(rows),
            repeats=args.repeats,
            median_ratio_vs_prometheus=round(float(np.median(ratios)), 2),
            max_ratio_vs_prometheus=max(ratios),
            max_ratio_query=f"{worst['query']}/{worst['shape']}",
            dcops_total_p50_s=round(sum(r["dcops_p50_ms"] for r in rows) / 1000, 3),
            prometheus_total_p50_s=round(sum(r["prom_p50_ms"] for r in rows) / 1000, 3),
            answer_mismatches=len(mismatches), mismatch_details=mismatches[:10],
            timing_note="dcops: Engine in-process incl. to_prometheus_json() and JSON "
                        "encoding, no HTTP hop; prometheus: HTTP API on loopback incl. JSON "
                        "encoding and body read; "
                        "p99 is nearest-rank over the repeats (the slowest run when < 100)",
            per_query=rows)
    finally:
        if proc is not None:
            stop(proc)
        if store is not None:
            store.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
