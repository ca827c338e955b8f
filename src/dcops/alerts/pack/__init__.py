"""dcops's default rules for GPU datacenters (gpu-datacenter.yml) and their unit tests."""

from pathlib import Path

PACK_DIR = Path(__file__).resolve().parent
RULES = PACK_DIR / "gpu-datacenter.yml"
TESTS = PACK_DIR / "gpu-datacenter_test.yml"
