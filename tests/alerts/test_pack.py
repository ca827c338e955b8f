"""The default rule pack: every rule has a unit test that fires it, and both dcops and
Prometheus's promtool pass those tests."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from dcops.alerts.model import AlertingRule
from dcops.alerts.pack import PACK_DIR, RULES, TESTS
from dcops.alerts.rulefile import load_rule_files
from dcops.alerts.ruletest import run_test_file
from tests.fixtures.engines import require_binary


def test_every_rule_is_tested_firing() -> None:
    names = {r.name for g in load_rule_files([RULES]) for r in g.rules
             if isinstance(r, AlertingRule)}
    tested = {t["alertname"] for case in yaml.safe_load(TESTS.read_text())["tests"]
              for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    assert names and names <= tested, names - tested


def test_the_pack_passes_its_tests_in_dcops() -> None:
    outcome = run_test_file(TESTS)
    assert outcome.ok, "\n".join(outcome.failures)


@pytest.mark.engines
def test_the_pack_passes_its_tests_in_promtool() -> None:
    promtool = require_binary("promtool")
    for args in (["check", "rules", RULES.name], ["test", "rules", TESTS.name]):
        run = subprocess.run([promtool, *args], cwd=PACK_DIR, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
