"""dcops's rule evaluation against Prometheus's own rule engine (`promtool test rules`).

Random GPU temperatures (with gaps and staleness markers) go through the same rule file
in dcops; every alert dcops has firing at every evaluation, with its labels and rendered
annotations, every recorded sample and the ALERTS and ALERTS_FOR_STATE series, is written
into a promtool test file as what is expected. promtool then evaluates the same rules over
the same series: it passes only if Prometheus fires exactly the same alerts at exactly the
same times.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from dcops.alerts.evaluator import GroupEvaluator
from dcops.alerts.model import AlertingRule, AlertState
from dcops.alerts.rulefile import load_rule_text
from dcops.alerts.ruletest import expand_values, parse_series
from dcops.alerts.template import go_float
from dcops.query import Engine
from dcops.telemetry.model import Batch
from tests.fixtures.engines import require_binary

RULES = """
groups:
  - name: gpu
    interval: 1m
    rules:
      - record: node:gpu_temp:max
        expr: max by (node) (dcops_gpu_temperature_celsius)
      - alert: GpuHot
        expr: dcops_gpu_temperature_celsius > 80
        for: 3m
        labels: {severity: warning, where: "{{ $labels.node }}/{{ $labels.gpu }}"}
        annotations:
          summary: "GPU {{ $labels.gpu }} at {{ $value }} C"
          share: "{{ $value | humanizePercentage }}"
      - alert: NodeHot
        expr: node:gpu_temp:max > 84
        keep_firing_for: 2m
        labels: {severity: critical}
      - alert: GpuSilent
        expr: absent(dcops_gpu_temperature_celsius{node="n0", gpu="0"})
        for: 1m
      - alert: TempRising
        expr: deriv(dcops_gpu_temperature_celsius[5m]) > 0.02
        annotations: {rate: "{{ printf \\"%.3f\\" $value }}/s"}
"""
MINUTES = 40


def _series(seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for node in ("n0", "n1"):
        for gpu in ("0", "1"):
            walk = np.round(78 + np.cumsum(rng.normal(0, 1.5, MINUTES)), 1)
            words = [go_float(float(v)) for v in walk]
            for k in rng.choice(MINUTES, 3, replace=False):
                words[int(k)] = "_"  # a missed scrape
            if rng.random() < 0.5:
                words[int(rng.integers(5, MINUTES))] = "stale"  # the target went away
            if (node, gpu) == ("n0", "0"):  # and one GPU stops reporting for a while
                words[20:27] = ["stale"] + ["_"] * 6
            out.append((f'dcops_gpu_temperature_celsius{{node="{node}", gpu="{gpu}"}}',
                        " ".join(words)))
    return out


def _expected(series: list[tuple[str, str]]) -> tuple[list[dict[str, object]],
                                                      list[dict[str, object]]]:
    """dcops's firing alerts at every minute, and its recorded samples, as promtool tests."""
    from dcops.telemetry.store import MemoryMetricsStore

    store = MemoryMetricsStore()
    batch = Batch()
    for text, values in series:
        labels = parse_series(text, "test")
        for k, value in enumerate(expand_values(values, "test")):
            if value is not None:
                batch.add(labels, k * 60_000, value)
    store.append(batch)
    (group,) = load_rule_text(RULES, "rules.yml")
    evaluator = GroupEvaluator(group, Engine(store), store.append)
    names = [r.name for r in group.rules if isinstance(r, AlertingRule)]
    alert_tests: list[dict[str, object]] = []
    for minute in range(MINUTES):
        firing: dict[str, list[dict[str, object]]] = {name: [] for name in names}
        for alert in evaluator.evaluate(minute * 60_000):
            if alert.state is AlertState.FIRING:
                shown = {k: v for k, v in alert.labels if k != "alertname"}
                firing[alert.rule].append({"exp_labels": shown,
                                           "exp_annotations": alert.annotations})
        alert_tests += [{"eval_time": f"{minute}m", "alertname": name, "exp_alerts": alerts}
                        for name, alerts in firing.items()]
    engine = Engine(store)
    expr_tests: list[dict[str, object]] = []
    for name, minutes in (("node:gpu_temp:max", range(0, MINUTES, 7)),
                          ("ALERTS", range(1, MINUTES, 3)),
                          ("ALERTS_FOR_STATE", range(2, MINUTES, 6))):
        for minute in minutes:
            result = engine.instant(name, minute * 60_000)
            expr_tests.append({"expr": name, "eval_time": f"{minute}m", "exp_samples": [
                {"labels": name + "{" + ", ".join(
                    f'{k}="{v}"' for k, v in s.labels if k != "__name__") + "}",
                 "value": float(s.values[0])} for s in result.series]})
    return alert_tests, expr_tests


def _promtool(tmp_path: Path, series: list[tuple[str, str]],
              alert_tests: list[dict[str, object]],
              expr_tests: list[dict[str, object]]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yml").write_text(RULES)
    test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "alert_rule_test": alert_tests, "promql_expr_test": expr_tests}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run([require_binary("promtool"), "test", "rules", "test.yml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


@pytest.mark.engines
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_prometheus_fires_the_same_alerts_at_the_same_times(tmp_path: Path, seed: int) -> None:
    series = _series(seed)
    alert_tests, expr_tests = _expected(series)
    # the scenario exercises every rule; it does not pass vacuously
    for name in ("GpuHot", "NodeHot", "GpuSilent", "TempRising"):
        assert any(t["exp_alerts"] for t in alert_tests if t["alertname"] == name), name
    run = _promtool(tmp_path, series, alert_tests, expr_tests)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.engines
def test_promtool_notices_a_wrong_expectation(tmp_path: Path) -> None:
    """The comparison can fail: one alert moved by a minute is caught."""
    series = _series(11)
    alert_tests, expr_tests = _expected(series)
    moved = next(t for t in alert_tests if t["exp_alerts"])
    moved["eval_time"] = f"{int(str(moved['eval_time'])[:-1]) - 1}m"
    run = _promtool(tmp_path, series, alert_tests, expr_tests)
    assert run.returncode != 0 and "FAILED" in run.stdout + run.stderr
