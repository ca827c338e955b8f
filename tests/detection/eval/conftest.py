"""Where the shared anomaly data is: $DCOPS_ANOMALY_DIR, or shared/data/anomaly near the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()


def anomaly_dir() -> Path | None:
    env = os.environ.get("DCOPS_ANOMALY_DIR")
    candidates = [Path(env)] if env else []
    candidates += [HERE.parents[3] / "shared" / "data" / "anomaly",
                   HERE.parents[4] / "shared" / "data" / "anomaly"]
    for candidate in candidates:
        if (candidate / "smd_baselines_dev.csv").is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def anomaly_data() -> Path:
    found = anomaly_dir()
    if found is None:
        pytest.skip("shared anomaly data not present (set DCOPS_ANOMALY_DIR)")
    return found
