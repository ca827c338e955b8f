"""Rule unit tests in promtool's format: the value notation, and what a failure says."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dcops.alerts.ruletest import STALE, expand_values, parse_series, run_test_file
from dcops.core.errors import Invalid

RULES = """
groups:
  - name: gpu
    rules:
      - alert: GpuTooHot
        expr: dcops_gpu_temperature_celsius > 85
        for: 2m
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.node }} at {{ $value }} C"}
"""


def test_value_notation() -> None:
    assert expand_values("1 2 3", "t") == [1, 2, 3]
    assert expand_values("1+1x3 _x2 7x1 -1-0.5x2", "t") == [1, 2, 3, 4, None, None, 7, 7,
                                                           -1, -1.5, -2]
    (stale,) = expand_values("stale", "t")
    assert stale is not None and math.isnan(stale) and \
        stale.hex() == STALE.hex()
    with pytest.raises(Invalid, match="cannot read value"):
        expand_values("1 two", "t.yml:7")


def test_series_notation() -> None:
    assert parse_series('up{job="a", instance="b"}', "t") == (
        ("__name__", "up"), ("instance", "b"), ("job", "a"))
    assert parse_series("{}", "t") == ()
    with pytest.raises(Invalid):
        parse_series("rate(up[5m])", "t")


def _write(tmp_path: Path, expected_at: str) -> Path:
    (tmp_path / "gpu.yml").write_text(RULES)
    test = tmp_path / "gpu_test.yml"
    test.write_text(f"""
rule_files: [gpu.yml]
tests:
  - input_series:
      - series: 'dcops_gpu_temperature_celsius{{node="n1"}}'
        values: '80 90 90 90 80'
    alert_rule_test:
      - eval_time: {expected_at}
        alertname: GpuTooHot
        exp_alerts:
          - exp_labels: {{node: n1, severity: critical}}
            exp_annotations: {{summary: "n1 at 90 C"}}
""")
    return test


def test_a_passing_and_a_failing_test_file(tmp_path: Path) -> None:
    assert run_test_file(_write(tmp_path, "3m")).ok
    outcome = run_test_file(_write(tmp_path, "2m"))  # still pending at 2m
    assert not outcome.ok
    (failure,) = outcome.failures
    assert "alertname: GpuTooHot, time: 2m" in failure and "got:[]" in failure
