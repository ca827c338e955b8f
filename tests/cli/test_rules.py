"""`dcops rules check` and `dcops rules test`: promtool's verbs, with one-line errors."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dcops.cli.main import app

runner = CliRunner()

RULES = """groups:
  - name: gpu
    rules:
      - record: node:temp:max
        expr: max by (node) (dcops_gpu_temperature_celsius)
      - alert: GpuTooHot
        expr: dcops_gpu_temperature_celsius > 85
        for: 1m
"""
TEST = """rule_files: [gpu.yml]
tests:
  - input_series:
      - series: 'dcops_gpu_temperature_celsius{node="n1"}'
        values: '90 90 90'
    alert_rule_test:
      - eval_time: 1m
        alertname: GpuTooHot
        exp_alerts: [{exp_labels: {node: n1}}]
      - eval_time: 2m
        alertname: GpuTooHot
        exp_alerts: %s
"""


def test_check_counts_rules_and_names_the_line_of_a_mistake(tmp_path: Path) -> None:
    (tmp_path / "gpu.yml").write_text(RULES)
    ok = runner.invoke(app, ["rules", "check", str(tmp_path)])
    assert ok.exit_code == 0
    assert "gpu.yml: SUCCESS: 1 groups, 1 alerting and 1 recording rules" in ok.output
    (tmp_path / "bad.yml").write_text(RULES.replace("for: 1m", "for: one minute"))
    bad = runner.invoke(app, ["rules", "check", str(tmp_path / "bad.yml")],
                        env={"COLUMNS": "300"})
    assert bad.exit_code == 1
    assert "bad.yml:8: not a duration: 'one minute'" in bad.output
    assert "Traceback" not in bad.output


def test_test_passes_and_fails_like_promtool(tmp_path: Path) -> None:
    (tmp_path / "gpu.yml").write_text(RULES)
    (tmp_path / "pass.yml").write_text(TEST % "[{exp_labels: {node: n1}}]")
    (tmp_path / "fail.yml").write_text(TEST % "[]")
    passed = runner.invoke(app, ["rules", "test", str(tmp_path / "pass.yml")])
    assert passed.exit_code == 0 and "SUCCESS" in passed.output
    failed = runner.invoke(app, ["rules", "test", str(tmp_path / "fail.yml")])
    assert failed.exit_code == 1
    assert "FAILED" in failed.output and "time: 2m" in failed.output


def test_notify_check_says_success_or_where_it_is_wrong(tmp_path: Path) -> None:
    good = tmp_path / "notify.yml"
    good.write_text("route:\n  receiver: ops\n  routes:\n    - matchers: ['severity=\"page\"']\n"
                    "      receiver: pager\nreceivers:\n  - name: ops\n"
                    "  - name: pager\n    webhook_configs: [{url: 'http://127.0.0.1:9/x'}]\n")
    result = runner.invoke(app, ["notify", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "SUCCESS: 2 routes, 2 receivers (1 integrations), 0 inhibit rules" in result.output
    bad = tmp_path / "bad.yml"
    bad.write_text("route:\n  receiver: ops\n  routes:\n    - receiver: nobody\n"
                   "receivers:\n  - name: ops\n")
    result = runner.invoke(app, ["notify", "check", str(bad)])
    assert result.exit_code == 1 and f"{bad}:4" in result.output
    assert "unknown receiver 'nobody'" in result.output
