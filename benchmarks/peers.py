"""What the benchmarks share: free loopback ports, a real Prometheus to measure beside, and
nearest-rank percentiles. Imported by the scripts beside it (``python benchmarks/X.py``
puts this folder on the path)."""

from __future__ import annotations

import math
import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_prometheus(work: Path, config: str, *args: str, ready_s: float = 120.0
                     ) -> tuple[subprocess.Popen[bytes], str]:
    """A Prometheus on a free loopback port with `config` (YAML text) and extra `args`,
    its log in `work`; once it is ready, the process and its URL."""
    port = free_port()
    path = work / "prometheus.yml"
    path.write_text(config)
    log = (work / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={path}", f"--web.listen-address=127.0.0.1:{port}",
         "--log.level=warn", *args], stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited: see {work / 'prometheus.log'}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"prometheus did not become ready in {ready_s:g} s")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (with few repeats, p99 is the slowest run)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
