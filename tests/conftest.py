"""Shared test configuration. Real-engine fixtures live in tests/fixtures/, one module each."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.engines",
    "tests.fixtures.postgres",
    "tests.fixtures.prometheus",
    "tests.fixtures.alertmanager",
    "tests.fixtures.node_exporter",
    "tests.fixtures.browser",
    "tests.fixtures.recorder",
    "tests.fixtures.slurm",
    "tests.fixtures.ansible",
    "tests.fixtures.seaweedfs",
]
