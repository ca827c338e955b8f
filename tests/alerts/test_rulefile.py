"""Rule files: Prometheus's format read in full, and every mistake named with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.alerts.model import AlertingRule, FlapThresholds, RecordingRule
from dcops.alerts.rulefile import load_rule_files, load_rule_text
from dcops.core.errors import Invalid

GOOD = """
groups:
  - name: gpu
    interval: 30s
    rules:
      - record: rack:dcops_gpu_power_watts:sum
        expr: sum by (rack) (dcops_gpu_power_watts)
        labels: {source: dcops}
      - alert: GpuTooHot
        expr: dcops_gpu_temperature_celsius > 85
        for: 5m
        keep_firing_for: 1m30s
        clear: dcops_gpu_temperature_celsius < 80
        labels: {severity: critical, gpu_label: "{{ $labels.gpu }}"}
        annotations:
          summary: "GPU {{ $labels.gpu }} at {{ $value | humanize }} C"
  - name: empty
"""


def test_a_full_file_is_read() -> None:
    groups = load_rule_text(GOOD, "gpu.yml")
    assert [g.name for g in groups] == ["gpu", "empty"]
    gpu = groups[0]
    assert gpu.interval_s == 30 and gpu.where == "gpu.yml:3"
    record, alert = gpu.rules
    assert record == RecordingRule("rack:dcops_gpu_power_watts:sum",
                                   "sum by (rack) (dcops_gpu_power_watts)",
                                   {"source": "dcops"}, "gpu.yml:6")
    assert isinstance(alert, AlertingRule)
    assert (alert.for_s, alert.keep_firing_for_s) == (300, 90)
    assert alert.clear_expr == "dcops_gpu_temperature_celsius < 80"
    assert alert.annotations["summary"].startswith("GPU {{ $labels.gpu }}")
    assert groups[1].interval_s == 60 and groups[1].rules == ()
    assert load_rule_text("", "empty.yml") == []


@pytest.mark.parametrize(("text", "line", "message"), [
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        fro: 5m\n",
     6, "unknown alerting rule field 'fro'"),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        record: b\n        expr: up\n",
     4, "exactly one of 'alert' and 'record'"),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5 min\n",
     6, "not a duration"),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(up\n", 5,
     "bad PromQL"),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n"
     "        annotations: {s: '{{ $foo }}'}\n", 6, "unsupported template value"),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n"
     "        labels: {0bad: x}\n", 6, "invalid label name"),
    ("groups:\n  - name: g\n    rules:\n      - record: not a name\n        expr: up\n", 4,
     "invalid recording rule name"),
    ("groups:\n  - name: g\n  - name: g\n", 3, "repeated in the same file"),
    ("groups:\n  - name: g\n    interval: 0s\n", 3, "greater than 0"),
    ("groups:\n  - name: g\n    rules:\n      - record: r\n", 4, "missing field 'expr'"),
    ("groups:\n  - name: g\n   rules: []\n", 3, "bad YAML"),
    ("rules: []\n", 1, "unknown rule file field 'rules'"),
])
def test_mistakes_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        load_rule_text(text, "r.yml")
    assert caught.value.where is not None and caught.value.where.startswith(f"r.yml:{line}")
    assert message in caught.value.message


def test_a_directory_is_every_yaml_file_in_it(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("groups:\n  - name: b\n")
    (tmp_path / "a.yaml").write_text("groups:\n  - name: a\n")
    (tmp_path / "notes.txt").write_text("not rules")
    assert [g.name for g in load_rule_files([tmp_path])] == ["a", "b"]
    with pytest.raises(Invalid, match="no such rule file"):
        load_rule_files([tmp_path / "missing.yml"])


def _one(rule_text: str) -> AlertingRule:
    text = "groups:\n  - name: g\n    rules:\n" + rule_text
    (group,) = load_rule_text(text, "r.yml")
    (rule,) = group.rules
    assert isinstance(rule, AlertingRule)
    return rule


def test_nodata_true_watches_the_vector_side_of_the_comparison() -> None:
    rule = _one("      - alert: A\n        expr: 85 < max by (node) (t{x=\"1\"})\n"
                "        nodata: true\n")
    assert rule.nodata_expr == 'max by (node)(t{x="1"})'
    rule = _one("      - alert: A\n        expr: (t > 85)\n        nodata: true\n")
    assert rule.nodata_expr == "t{}"
    rule = _one("      - alert: A\n        expr: t > 85 and u\n        nodata: up\n")
    assert rule.nodata_expr == "up"
    assert _one("      - alert: A\n        expr: t > 1\n        nodata: false\n"
                ).nodata_expr is None


def test_flapping_thresholds_default_to_nagios_and_can_be_set_or_switched_off() -> None:
    assert _one("      - alert: A\n        expr: t > 1\n").flapping == FlapThresholds(20, 5)
    rule = _one("      - alert: A\n        expr: t > 1\n"
                "        flapping: {high_percent: 50, low_percent: 25}\n")
    assert rule.flapping == FlapThresholds(50, 25)
    assert _one("      - alert: A\n        expr: t > 1\n        flapping: false\n"
                ).flapping is None


@pytest.mark.parametrize(("rule_text", "message"), [
    ("        expr: t > 1 and u\n        nodata: true\n", "needs an expr that is a comparison"),
    ("        expr: t > bool 1\n        nodata: true\n", "needs an expr that is a comparison"),
    ("        expr: t > 1\n        nodata: 'rate(('\n", "bad PromQL"),
    ("        expr: t > 1\n        flapping: {high_percent: 120}\n", "from 0 to 100"),
    ("        expr: t > 1\n        flapping: {high_percent: 5, low_percent: 10}\n",
     "must not be above"),
    ("        expr: t > 1\n        flapping: {high: 5}\n", "unknown flapping field"),
    ("        expr: t > 1\n        flapping: often\n", "true, false or a mapping"),
])
def test_bad_nodata_and_flapping_name_the_line(rule_text: str, message: str) -> None:
    with pytest.raises(Invalid, match=message) as caught:
        _one("      - alert: A\n" + rule_text)
    assert caught.value.where is not None and caught.value.where.startswith("r.yml:")
