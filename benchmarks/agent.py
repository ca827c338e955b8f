"""Agent overhead: CPU and memory of the real `dcops agent` process on a host.

Runs the agent as a subprocess at a 15 s interval (5 minutes by default) pushing to a stub
receiver in this process, samples the agent's CPU time and resident memory with psutil,
and prints the figures as the last line, e.g.
``{"bench": "agent", "cpu_percent": 0.2, "rss_mb": 48.1, "interval_s": 15, "duration_s": 300}``.
``cpu_percent`` is steady-state use of one core, counted from the first push received
(start-up is reported apart as ``startup_cpu_s``). Targets: under 1% and under 60 MB.

    python benchmarks/agent.py                 # the full 5-minute run
    python benchmarks/agent.py --duration 40   # a smoke run
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil

CPU_TARGET_PERCENT = 1.0
RSS_TARGET_MB = 60.0


class Receiver:
    """Accepts pushes on loopback and counts them; the agent's cost is what is measured."""

    def __init__(self) -> None:
        self.pushes = 0
        self.samples = 0
        self.bytes = 0
        self.first_at: float | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.bytes += len(data)
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                body = json.loads(data)
                receiver.pushes += 1
                receiver.samples += sum(len(s["samples"]) for s in body["series"])
                if receiver.first_at is None:
                    receiver.first_at = time.monotonic()
                reply = json.dumps({"accepted": receiver.samples}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


RECORDED_GPU_AGENT = """
import signal, sys, threading
from pathlib import Path
from dcops.cli.agent import keep_agent_lean
keep_agent_lean()
from dcops.agent.run import run_agent
from dcops.settings import AgentSettings
from tests.agent.recorded_nvml import RecordedNvml
url, interval, spool, recording = sys.argv[1:]
stop = threading.Event()
signal.signal(signal.SIGINT, lambda *_: stop.set())
settings = AgentSettings(server_url=url, interval_s=float(interval), spool_dir=Path(spool),
                         node_name="bench-node")
run_agent(settings, stop, nvml=RecordedNvml(Path(recording)))
"""


def agent_command(how: str, url: str, interval_s: float, spool: Path,
                  recording: Path | None = None) -> list[str]:
    if recording is not None:
        return [sys.executable, "-c", RECORDED_GPU_AGENT, url, str(interval_s), str(spool),
                str(recording)]
    args = ["--server", url, "--interval", str(interval_s), "--spool-dir", str(spool),
            "--node", "bench-node"]
    if how == "cli":
        exe = shutil.which("dcops") or str(Path(sys.executable).with_name("dcops"))
        return [exe, "agent", *args]
    return [sys.executable, "-m", "dcops.agent", *args]


def measure(how: str, interval_s: float, duration_s: float,
            recording: Path | None = None) -> dict[str, Any]:
    receiver = Receiver()
    workdir = Path(tempfile.mkdtemp(prefix="dcops-bench-agent-"))
    env = {k: v for k, v in os.environ.items() if k != "DCOPS_CONFIG"}
    command = agent_command(how, receiver.url, interval_s, workdir / "spool", recording)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=Path(__file__).resolve().parent.parent)
    agent = psutil.Process(proc.pid)
    rss_max = 0
    try:
        deadline = time.monotonic() + 60
        while receiver.first_at is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"agent did not push within 60 s:\n{err}")
            time.sleep(0.05)
        cpu = agent.cpu_times()
        startup_cpu = cpu.user + cpu.system
        started = time.monotonic()
        pushes_at_start = receiver.pushes
        while time.monotonic() - started < duration_s:
            rss_max = max(rss_max, agent.memory_info().rss)
            time.sleep(1.0)
        cpu = agent.cpu_times()
        elapsed = time.monotonic() - started
        steady_cpu = cpu.user + cpu.system - startup_cpu
        rss_max = max(rss_max, agent.memory_info().rss)
        pushes = receiver.pushes - pushes_at_start
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        receiver.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "bench": "agent",
        "cpu_percent": round(100 * steady_cpu / elapsed, 3),
        "rss_mb": round(rss_max / 2**20, 1),
        "interval_s": interval_s,
        "duration_s": round(elapsed, 1),
        "startup_cpu_s": round(startup_cpu, 3),
        "pushes": pushes,
        "samples_per_push": round(receiver.samples / max(receiver.pushes, 1)),
        "bytes_per_push": round(receiver.bytes / max(receiver.pushes, 1)),
        "exit_code": proc.returncode,
        "command": "recorded-nvml" if recording else how,
        "meets_targets": (100 * steady_cpu / elapsed < CPU_TARGET_PERCENT
                          and rss_max / 2**20 < RSS_TARGET_MB),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds to measure")
    parser.add_argument("--interval", type=float, default=15.0, help="agent interval_s")
    parser.add_argument("--command", choices=["module", "cli"], default="cli",
                        help="run `python -m dcops.agent` (default) or the `dcops agent` CLI")
    parser.add_argument("--nvml-recording", type=Path, default=None,
                        help="also collect GPUs, replaying this NVML recording "
                             "(e.g. tests/data/nvml/h100_8gpu.json) where no GPU is present")
    args = parser.parse_args()
    print(json.dumps(measure(args.command, args.interval, args.duration, args.nvml_recording)))


if __name__ == "__main__":
    main()
