"""Ingest benchmark: remote_write samples/s into dcops, side by side with a real Prometheus.

Several pushers (threads with keep-alive HTTP connections, like Prometheus' remote_write
shards) send pre-encoded snappy remote_write payloads of ~2000 samples, one sample per
TimeSeries as Prometheus sends them, for a simulated GPU fleet (DCGM-style metrics with
node, gpu, rack, job, instance, model labels) with advancing timestamps. The same payloads
go first into ``dcops serve`` (POST /api/v1/write) and then into ``prometheus
--web.enable-remote-write-receiver``. The first round of each pusher, which creates the
series, is a warm-up and not timed. The last line printed is one JSON object.

Run from the repository root: ``python benchmarks/ingest.py [--requests N] [--pushers N]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from peers import free_port

from dcops.telemetry.model import Batch, Labels, make_labels
from dcops.telemetry.remote_write import encode_write_request

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_UTIL",
           "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_COPY_UTIL",
           "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_MEMORY_TEMP")
SAMPLES_PER_REQUEST = 2000


def fleet_series(nodes: int) -> list[Labels]:
    """Label sets of `nodes` 8-GPU servers, 16 per rack, each GPU with every metric."""
    out = []
    for n in range(nodes):
        node = f"gpu-node-{n:04d}"
        for g in range(8):
            for metric in METRICS:
                out.append(make_labels(metric, {
                    "node": node, "gpu": str(g), "rack": f"rack-{n // 16:03d}",
                    "instance": f"{node}:9400", "job": "dcgm-exporter",
                    "modelName": "NVIDIA H100 80GB HBM3", "UUID": f"GPU-{n:04d}{g:02d}-7a1e-4c2b",
                    "Hostname": node}))
    return out


def zero_valued(labels: Labels) -> bool:
    """Series that read 0, as in a real fleet: XID error counts, and the utilization of
    idle GPUs (every other GPU here): about a quarter of all samples.

    proto3 leaves zeros off the wire, so they make remote_write bodies irregular.
    """
    found = dict(labels)
    name, gpu = found["__name__"], int(found["gpu"])
    return name == "DCGM_FI_DEV_XID_ERRORS" or (
        name in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL") and gpu % 2 == 1)


def payloads(series: list[Labels], pushers: int, rounds: int, t0_ms: int) -> list[list[bytes]]:
    """Per pusher: `rounds` bodies; pusher p owns a fixed slice of series (like a shard)."""
    rng = np.random.default_rng(7)
    out: list[list[bytes]] = []
    for p in range(pushers):
        mine = series[p * SAMPLES_PER_REQUEST : (p + 1) * SAMPLES_PER_REQUEST]
        zeros = np.array([zero_valued(labels) for labels in mine], dtype=bool)
        bodies = []
        for r in range(rounds):
            batch = Batch()
            values = rng.normal(50, 10, len(mine)).round(2)
            values[zeros] = 0.0
            for labels, value in zip(mine, values.tolist(), strict=True):
                batch.add(labels, t0_ms + r * 1000, value)
            bodies.append(encode_write_request(batch))
        out.append(bodies)
    return out


@dataclass
class Result:
    samples_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def push_all(port: int, headers: dict[str, str], bodies: list[list[bytes]]) -> Result:
    """Round 0 of every pusher as warm-up, then all other rounds concurrently, timed."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def pusher(mine: list[bytes], start: threading.Barrier | None) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        if start is not None:
            start.wait()
        local = []
        for body in mine:
            t = time.perf_counter()
            conn.request("POST", "/api/v1/write", body=body,
                         headers={**headers, "Content-Length": str(len(body))})
            reply = conn.getresponse()
            data = reply.read()
            local.append(time.perf_counter() - t)
            if reply.status >= 300:
                with lock:
                    errors.append(f"{reply.status} {data[:200]!r}")
        conn.close()
        with lock:
            latencies.extend(local)

    for mine in bodies:  # warm-up: creates every series
        pusher(mine[:1], None)
    latencies.clear()
    barrier = threading.Barrier(len(bodies) + 1)
    threads = [threading.Thread(target=pusher, args=(mine[1:], barrier)) for mine in bodies]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        print(f"  {len(errors)} failed requests, first: {errors[0]}", file=sys.stderr)
    n = sum(len(m) - 1 for m in bodies)
    lat = np.array(latencies) * 1000
    return Result(n * SAMPLES_PER_REQUEST / elapsed, float(np.percentile(lat, 50)),
                  float(np.percentile(lat, 99)), n, len(errors))


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} not ready after {timeout_s}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_dcops(work: Path, bodies: list[list[bytes]]) -> Result:
    data_dir, port = work / "dcops", free_port()
    python = ROOT / ".venv" / "bin" / "python"
    exe = str(python) if python.exists() else sys.executable
    with (work / "dcops.log").open("wb") as log:
        proc = subprocess.Popen([exe, "-m", "dcops", "serve", "--data-dir", str(data_dir),
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                cwd=ROOT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, "dcops serve")
        token = (data_dir / "admin.token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "snappy",
                   "Content-Type": "application/x-protobuf",
                   "X-Prometheus-Remote-Write-Version": "0.1.0"}
        return push_all(port, headers, bodies)
    finally:
        stop(proc)


def run_prometheus(work: Path, bodies: list[list[bytes]]) -> Result | None:
    binary = shutil.which("prometheus")
    if binary is None:
        print("prometheus not installed: no peer figures", file=sys.stderr)
        return None
    port, pdir = free_port(), work / "prometheus"
    pdir.mkdir()
    (pdir / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    with (work / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen([binary, f"--config.file={pdir / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={pdir / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}",
                                 "--web.enable-remote-write-receiver", "--log.level=warn"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", proc, "prometheus")
        headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                   "X-Prometheus-Remote-Write-Version": "0.1.0"}
        return push_all(port, headers, bodies)
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=150, help="timed requests per pusher")
    args = parser.parse_args()
    nodes = -(-args.pushers * SAMPLES_PER_REQUEST // (8 * len(METRICS)))
    series = fleet_series(nodes)
    t0_ms = int(time.time() * 1000) - (args.requests + 5) * 1000
    t = time.perf_counter()
    bodies = payloads(series, args.pushers, args.requests + 1, t0_ms)
    size = np.mean([len(b) for m in bodies for b in m])
    print(f"encoded {args.pushers}x{args.requests + 1} payloads of {SAMPLES_PER_REQUEST} "
          f"samples ({size / 1024:.0f} KiB snappy) in {time.perf_counter() - t:.1f}s",
          file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="dcops-bench-ingest-"))
    try:
        ours = run_dcops(work, bodies)
        print(f"dcops:      {ours}", file=sys.stderr)
        peer = run_prometheus(work, bodies)
        print(f"prometheus: {peer}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {
        "bench": "ingest", "samples_per_s": round(ours.samples_per_s),
        "p50_ms": round(ours.p50_ms, 2), "p99_ms": round(ours.p99_ms, 2),
        "errors": ours.errors, "peer": "prometheus",
        "prometheus_samples_per_s": round(peer.samples_per_s) if peer else None,
        "prometheus_p99_ms": round(peer.p99_ms, 2) if peer else None,
        "ratio_vs_prometheus": round(ours.samples_per_s / peer.samples_per_s, 3) if peer else None,
        "pushers": args.pushers, "samples_per_request": SAMPLES_PER_REQUEST,
        "timed_requests": ours.requests, "series": len(series), "cpus": os.cpu_count(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
