"""Where the shared anomaly data is: $DCOPS_ANOMALY_DIR, or shared/data/anomaly near the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.detection.data import anomaly_dir


@pytest.fixture(scope="session")
def anomaly_data() -> Path:
    found = anomaly_dir()
    if found is None:
        pytest.skip("shared anomaly data not present (set DCOPS_ANOMALY_DIR)")
    return found
