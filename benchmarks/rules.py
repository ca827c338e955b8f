"""Rules benchmark: time per evaluation cycle of 1,000 rules over ~100,000 series, dcops
beside a real Prometheus evaluating the same rule files over the same samples (the first
cycle of each, which warms caches, is not counted).

The simulated fleet, scaled up (56 racks x 16 nodes x 8 GPUs: ~101,000 series), has
30 minutes of history at 15 s loaded into dcops's DuckDB store and, by remote_write, into
a Prometheus started with the same rule files (10 groups of 100 rules, half alerting rules
with thresholds per rack and metric, half recording rules of rates, sums and averages);
then both get a new fleet sample every 15 s. The two evaluate one after the other, so
that neither competes with the other for the machine's cores: first Prometheus, for as
many cycles as are measured (its cycle is the sum over groups of its own
``prometheus_rule_group_last_duration_seconds``, read after each of its cycles), then it
is stopped and dcops evaluates (its cycle is the sum of its 10 groups' evaluation times,
through the PromQL engine and the store, writing recorded series, ALERTS and the alert
journal). dcops's measured cycles include the one in which ~30,000 alerts go from pending
to firing at once (``for: 1m``).

The rules run in the alerting pipeline as the server runs it (rules and dispatch in one
thread, delivery in another, state in SQLite, long-lived objects frozen out of the garbage
collector's way after the warm-up cycle, as the server does every 10 minutes). A probe rule
(``for: 0``, in a 1 s group) is routed to a webhook on loopback with ``group_wait: 1s``.
After each cycle's samples, the probe's threshold is crossed at a varied moment, and the
time until the webhook arrives is ``notify_latency`` (the worst of the probes; the target
is ``for`` + ``group_wait`` + 1 s).

Run from the repository root: ``python benchmarks/rules.py [--cycles N]``. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import peers
from peers import percentile

from dcops.alerts.journal import BufferedJournal
from dcops.alerts.manager import RuleManager
from dcops.alerts.pipeline import Pipeline
from dcops.alerts.service import Rules
from dcops.alerts.silences import Silences
from dcops.api.server import settle_memory
from dcops.backends.duckdb_store import DuckDBMetricsStore
from dcops.backends.notifiers import build_notifiers
from dcops.backends.sql.state import open_state
from dcops.core.clock import SystemClock
from dcops.query import Engine
from dcops.simulation.fleet import SimulatedFleet
from dcops.telemetry.model import Batch, Matcher, MatchOp, make_labels
from dcops.telemetry.remote_write import encode_write_request
from dcops.telemetry.store import Retention

GROUPS, RULES_PER_GROUP, STEP_S = 10, 100, 15
GPU_METRICS = [("dcops_gpu_temperature_celsius", 70), ("dcops_gpu_utilization_percent", 90),
               ("dcops_gpu_power_watts", 600), ("dcops_gpu_memory_used_bytes", 6e10)]
COUNTERS = ["dcops_gpu_ecc_corrected_errors_total", "dcops_gpu_nvlink_errors_total",
            "dcops_host_network_received_bytes_total", "dcops_host_network_sent_bytes_total"]
HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}


def rule_file(racks: list[str]) -> str:
    """10 groups x 100 rules, each over one rack's series (as team or cluster rules are):
    thresholds on GPU gauges, and per-node rates, averages and maxima."""
    lines = ["groups:"]
    for g in range(GROUPS):
        lines += [f"  - name: bench{g}", f"    interval: {STEP_S}s", "    rules:"]
        for r in range(RULES_PER_GROUP):
            k = g * RULES_PER_GROUP + r
            rack = racks[k % len(racks)]
            if r % 2 == 0:
                metric, level = GPU_METRICS[k % len(GPU_METRICS)]
                lines += [f"      - alert: Bench{k}",
                          f"        expr: {metric}{{rack=\"{rack}\"}} > {level}",
                          "        for: 1m",
                          "        labels: {severity: warning}",
                          "        annotations: {summary: \"{{ $labels.node }} "
                          "{{ $value }}\"}"]
            else:
                counter = COUNTERS[k % len(COUNTERS)]
                form = k % 3
                expr = (f"sum by (node) (rate({counter}{{rack=\"{rack}\"}}[5m]))" if form == 0
                        else f"avg by (node) ({GPU_METRICS[k % 4][0]}{{rack=\"{rack}\"}})"
                        if form == 1
                        else f"max by (node) ({GPU_METRICS[k % 4][0]}{{rack=\"{rack}\"}})")
                lines += [f"      - record: bench:rule{k}", f"        expr: '{expr}'"]
    return "\n".join(lines) + "\n"


def start_prometheus(work: Path, rules: Path) -> tuple[subprocess.Popen[bytes], str]:
    return peers.start_prometheus(
        work, f"global: {{evaluation_interval: {STEP_S}s}}\nrule_files: [{rules}]\n"
        "scrape_configs: []\n", f"--storage.tsdb.path={work / 'tsdb'}",
        "--web.enable-remote-write-receiver")


def group_durations(url: str) -> dict[str, tuple[float, float]]:
    """Per group: (last duration s, last evaluation timestamp) from Prometheus's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: dict[str, list[float]] = {}
    for name, key in (("prometheus_rule_group_last_duration_seconds", 0),
                      ("prometheus_rule_group_last_evaluation_timestamp_seconds", 1)):
        for match in re.finditer(name + r'\{rule_group="[^"]*;(bench\d+)"\} (\S+)', text):
            out.setdefault(match.group(1), [0.0, 0.0])[key] = float(match.group(2))
    return {g: (v[0], v[1]) for g, v in out.items()}


PROBE_RULES = """groups:
  - name: probe
    interval: 1s
    rules:
      - alert: BenchProbe
        expr: bench_probe > 0
        flapping: false   # it fires and resolves every 15 s on purpose
"""
GROUP_WAIT_S = 1.0
PROBE_OFFSETS_S = (2.3, 5.7, 9.1, 12.4, 0.6, 7.8, 3.9, 11.2, 6.5, 1.4)
"""When, after a cycle's samples arrive, the probe's threshold is crossed (varied, so that
some crossings land while the 1,000 rules are being evaluated)."""


def notify_file(url: str) -> str:
    """The probe's alert goes to a webhook; the 1,000 rules' alerts to a receiver that
    sends nothing (they are routed, grouped and deduplicated all the same)."""
    return f"""route:
  receiver: fleet
  group_by: [alertname]
  routes:
    - matchers: ['alertname="BenchProbe"']
      receiver: probe
      group_wait: {GROUP_WAIT_S:g}s
      group_interval: 1s
receivers:
  - name: fleet
  - name: probe
    webhook_configs: [{{url: "{url}/hook", send_resolved: false}}]
"""


class Arrivals:
    """A webhook receiver on loopback that notes when each notification arrives."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.ready = threading.Event()
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrivals.times.append(time.time())
                arrivals.ready.set()
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def probe(store: DuckDBMetricsStore, arrivals: Arrivals) -> float | None:
    """Cross the probe's threshold now; seconds until its webhook arrives (None: 10 s)."""
    arrivals.ready.clear()
    crossed = time.time()
    batch = Batch()
    batch.add(make_labels("bench_probe", {}), round(crossed * 1000), 1.0)
    store.append(batch)
    arrived = arrivals.ready.wait(10.0)
    latency = arrivals.times[-1] - crossed if arrived else None
    time.sleep(1.0)  # let it be evaluated firing once more, then cross back under
    batch = Batch()
    batch.add(make_labels("bench_probe", {}), round(time.time() * 1000), 0.0)
    store.append(batch)
    return latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=8, help="evaluation cycles measured")
    parser.add_argument("--racks", type=int, default=56)
    args = parser.parse_args()
    if shutil.which("prometheus") is None:
        raise SystemExit("prometheus is needed on PATH")
    err = sys.stderr
    work = Path(tempfile.mkdtemp(prefix="dcops-rules-bench-"))
    rules = work / "rules.yml"
    (work / "probe.yml").write_text(PROBE_RULES)
    arrivals = Arrivals()
    (work / "notify.yml").write_text(notify_file(arrivals.url))
    fleet = SimulatedFleet(racks=args.racks, nodes_per_rack=16, gpus_per_node=8)
    rules.write_text(rule_file(fleet.rack_names))
    store = DuckDBMetricsStore(work / "dcops", Retention(), clock=SystemClock())
    state = open_state(f"sqlite:///{work / 'state.db'}")
    journal = BufferedJournal(state.alerts, on_kick=True)  # as the server writes it
    proc, url = start_prometheus(work, rules)
    figures: dict[str, Any] = {"bench": "rules", "rules": GROUPS * RULES_PER_GROUP,
                               "groups": GROUPS, "peer": "prometheus"}
    stop = threading.Event()
    try:
        now = time.time()
        start = int(now // STEP_S * STEP_S) - 30 * 60
        series = 0
        with httpx.Client(timeout=60) as client:
            def feed(ts_s: int, prometheus: bool = True) -> int:
                batch = fleet.tick(ts_s * 1000)
                store.append(batch)
                if not prometheus:
                    return len(batch)
                reply = client.post(f"{url}/api/v1/write", content=encode_write_request(batch),
                                    headers=HEADERS)
                if reply.status_code != 204:
                    raise SystemExit(f"prometheus refused samples: {reply.text[:300]}")
                return len(batch)

            for ts in range(start, int(now) + 1, STEP_S):
                series = feed(ts)
            figures["series"] = series
            print(f"{series} series, 30 minutes loaded", file=err)
            prom_cycles: list[float] = []
            seen_evals: set[float] = set()
            while len(prom_cycles) < args.cycles + 1:  # its first cycle warms up
                tick_s = int(time.time() // STEP_S * STEP_S) + STEP_S
                time.sleep(max(0.0, tick_s - 0.5 - time.time()))
                feed(tick_s)
                time.sleep(max(0.0, tick_s + STEP_S - 1.0 - time.time()))
                durations = group_durations(url)
                if len(durations) == GROUPS:
                    key = max(ts for _, ts in durations.values())
                    if key not in seen_evals and all(ts > 0 for _, ts in durations.values()):
                        seen_evals.add(key)
                        prom_cycles.append(sum(d for d, _ in durations.values()))
                        print(f"prometheus cycle {len(prom_cycles) - 1}: "
                              f"{prom_cycles[-1]:.3f} s", file=err)
            proc.terminate()
            proc.wait(timeout=30)
            clock = SystemClock()
            manager = RuleManager(Engine(store), store.append, journal)
            pipeline = Pipeline(Rules([work / "probe.yml", rules], manager),
                                Silences(state.silences, state.audit), state.notification_log,
                                state.outbox, build_notifiers, clock, journal=journal,
                                config_file=work / "notify.yml", after_round=journal.kick)
            pipeline.rules.reload()
            pipeline.load()
            bench = [run for key, run in manager.runs.items() if key[1].startswith("bench")]
            threads = [threading.Thread(target=pipeline.run, args=(stop,), daemon=True),
                       threading.Thread(target=pipeline.run_delivery, args=(stop,),
                                        daemon=True)]
            for thread in threads:
                thread.start()
            cycles: list[float] = []
            latencies: list[float | None] = []
            warm = True
            while len(cycles) < args.cycles:
                tick_s = int(time.time() // STEP_S * STEP_S) + STEP_S
                time.sleep(max(0.0, tick_s - 0.5 - time.time()))
                feed(tick_s, prometheus=False)  # just before the groups are due at tick_s
                offset = PROBE_OFFSETS_S[len(latencies) % len(PROBE_OFFSETS_S)]
                time.sleep(max(0.0, tick_s + offset - time.time()))
                latency = probe(store, arrivals) if not warm else None
                while any((run.last_eval_ms or 0) < tick_s * 1000 for run in bench):
                    time.sleep(0.05)
                cycle = sum(run.duration_s for run in bench)
                whole = all(run.last_eval_ms == tick_s * 1000 for run in bench)
                if not warm and whole:  # the first cycle (every alert new) warms up
                    cycles.append(cycle)
                    latencies.append(latency)
                if warm:  # the server settles its memory every 10 minutes; here once, now
                    settle_memory()
                warm = False
                print(f"cycle {len(cycles)}: dcops {cycle:.3f} s, notify latency "
                      f"{latency if latency is not None else float('nan'):.2f} s", file=err)
        alerts = len(manager.alerts())
        recorded = len(store.series([Matcher("__name__", MatchOp.RE, "bench:.*")], 0, 2**62))
        arrived = [x for x in latencies if x is not None]
        figures.update(
            cycles=len(cycles), cycle_p50_s=round(percentile(cycles, 50), 3),
            cycle_p99_s=round(percentile(cycles, 99), 3),
            prometheus_cycle_p50_s=round(percentile(prom_cycles[1:], 50), 3),
            prometheus_cycle_p99_s=round(percentile(prom_cycles[1:], 99), 3),
            ratio_vs_prometheus=round(float(np.median(cycles))
                                      / float(np.median(prom_cycles[1:])), 2),
            alerts_active=alerts, recorded_series=recorded,
            notify_latency_s=round(max(arrived), 2) if len(arrived) == len(latencies)
            else None,
            notify_latency_p50_s=round(percentile(arrived, 50), 2) if arrived else None,
            notify_budget_s=GROUP_WAIT_S + 1.0, notify_probes=len(latencies),
            note="dcops cycle: the 10 groups' evaluation times in the running pipeline "
                 "(DuckDB, SQLite state, alerts routed and deduplicated); prometheus: sum of "
                 "prometheus_rule_group_last_duration_seconds; both write recorded series "
                 "and ALERTS/ALERTS_FOR_STATE; the two run one after the other, each with the "
                 "machine to itself. notify latency: threshold crossing to webhook "
                 "arrival for a rule with for: 0 and group_wait: 1s (worst of the probes)")
    finally:
        stop.set()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        store.close()
        journal.close()
        state.close()
        arrivals.server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
