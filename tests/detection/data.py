"""Where the shared anomaly benchmarks are: ``$DCOPS_ANOMALY_DIR``, or ``shared/data/anomaly``
beside the repository; tests that need them skip cleanly when they are not there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def anomaly_dir() -> Path | None:
    env = os.environ.get("DCOPS_ANOMALY_DIR")
    candidates = [Path(env)] if env else []
    candidates += [parent / "shared" / "data" / "anomaly"
                   for parent in Path(__file__).resolve().parents]
    for candidate in candidates:
        if (candidate / "nab").is_dir() or (candidate / "smd").is_dir():
            return candidate
    return None


def require(*parts: str) -> Path:
    """The path below the anomaly data folder, or a skip saying how to point at it."""
    base = anomaly_dir()
    path = base.joinpath(*parts) if base is not None else None
    if path is None or not path.exists():
        pytest.skip(f"shared anomaly data not present ({'/'.join(parts)}; set "
                    "DCOPS_ANOMALY_DIR)")
    return path
