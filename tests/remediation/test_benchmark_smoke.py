"""The remediation benchmark runs and keeps its contract: the storm part only (no Slurm),
on 100 nodes, its last line one JSON object with the figures the targets are read from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_storm_only_run_prints_its_figures_last() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/remediation.py", "--faults", "0", "--storm-nodes", "100",
         "--no-goodput"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["bench"] == "remediation"
    assert figures["storm_nodes"] == 100 and figures["storm_budget"] == 2
    assert figures["storm_drained"] <= figures["storm_budget"]
    assert figures["storm_breaker_open"] is True and figures["storm_pages"] == 1
    assert figures["faults"] == 0 and figures["drain_latency_p99_s"] is None
