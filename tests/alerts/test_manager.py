"""The rule manager: groups run on the multiples of their interval; reloads keep state."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.alerts.flapping import Flaps, FlapTrack
from dcops.alerts.manager import RuleManager
from dcops.alerts.rulefile import load_rule_text
from dcops.alerts.service import Rules
from dcops.core.errors import Invalid
from dcops.query import Engine
from dcops.telemetry.model import Batch, make_labels
from dcops.telemetry.store import MemoryMetricsStore

RULES = """groups:
  - name: gpu
    interval: 30s
    rules:
      - alert: Hot
        expr: dcops_gpu_temperature_celsius > 85
        for: 1m
"""


def _hot_store() -> MemoryMetricsStore:
    store = MemoryMetricsStore()
    batch = Batch()
    for k in range(20):
        batch.add(make_labels("dcops_gpu_temperature_celsius", {"gpu": "0"}), k * 15_000, 90.0)
    store.append(batch)
    return store


def test_groups_run_once_per_interval_on_its_multiples() -> None:
    manager = RuleManager(Engine(_hot_store()))
    manager.load(load_rule_text(RULES, "r.yml"))
    runs = []
    for now in (1_000, 20_000, 31_000, 59_000, 61_000, 95_000):
        manager.tick(now)
        runs.append(manager.runs[("r.yml", "gpu")].last_eval_ms)
    assert runs == [0, 0, 30_000, 30_000, 60_000, 90_000]
    (alert,) = manager.alerts()
    assert (alert.state.value, alert.active_at_ms, alert.fired_at_ms) == ("firing", 0, 60_000)


def test_a_reload_keeps_alerts_of_unchanged_rules_only() -> None:
    manager = RuleManager(Engine(_hot_store()))
    manager.load(load_rule_text(RULES, "r.yml"))
    manager.tick(0)
    manager.load(load_rule_text(RULES.replace("for: 1m", "for: 2m"), "r.yml"))
    assert [a.active_at_ms for a in manager.alerts()] == [0]  # same expression: kept
    manager.load(load_rule_text(RULES.replace("> 85", "> 80"), "r.yml"))
    assert manager.alerts() == []  # a new condition starts afresh


def test_changed_files_are_picked_up_and_bad_ones_keep_the_old_rules(tmp_path: Path) -> None:
    path = tmp_path / "gpu.yml"
    path.write_text(RULES)
    rules = Rules([tmp_path], RuleManager(Engine(_hot_store())))
    rules.tick(0)
    assert [g[1] for g in rules.manager.runs] == ["gpu"]
    path.write_text(RULES.replace("name: gpu", "name: gpu2"))
    rules.tick(30_000)
    assert [g[1] for g in rules.manager.runs] == ["gpu2"]
    path.write_text(RULES.replace("for: 1m", "for: soon"))
    rules.tick(60_000)
    assert [g[1] for g in rules.manager.runs] == ["gpu2"]
    assert rules.last_error is not None and "gpu.yml:7" in rules.last_error
    with pytest.raises(Invalid):
        rules.reload()


def test_a_restarted_manager_keeps_the_for_progress_of_pending_alerts() -> None:
    store = _hot_store()
    rules = load_rule_text(RULES.replace("for: 1m", "for: 2m"), "r.yml")
    first = RuleManager(Engine(store), store.append)
    first.load(rules)
    first.tick(0)
    first.tick(30_000)  # pending since 0
    second = RuleManager(Engine(store), store.append)  # the process restarted
    second.load(rules)
    second.tick(120_000)
    assert [(a.state.value, a.active_at_ms) for a in second.alerts()] == [("firing", 0)]


def test_a_reload_that_drops_a_rule_resolves_its_alerts_once() -> None:
    manager = RuleManager(Engine(_hot_store()))
    manager.load(load_rule_text(RULES, "r.yml"))
    manager.tick(0)
    manager.tick(60_000)
    assert [(a.state.value, e) for a, e in manager.changes] == [("firing", "firing")]
    manager.load(load_rule_text(RULES.replace("> 85", "> 80"), "r.yml"))
    manager.tick(61_000)  # not due: only the ended alert is reported
    ((alert, event),) = manager.changes
    assert (event, alert.state.value, alert.resolved_at_ms) == ("resolved", "inactive", 61_000)
    manager.tick(90_000)
    assert [e for _, e in manager.changes] == ["pending"]  # the new rule's own alert


def test_a_reload_keeps_flap_history() -> None:
    manager = RuleManager(Engine(_hot_store()))
    manager.load(load_rule_text(RULES, "r.yml"))
    manager.tick(0)
    (run,) = manager.runs.values()
    run.evaluator.flaps["Hot"] = Flaps({(): FlapTrack([1], flapping=True)})
    manager.load(load_rule_text(RULES, "r.yml"))
    (after,) = manager.runs.values()
    assert after.evaluator.flaps["Hot"].tracks[()].flapping and after.evaluator.evaluations == 1


def test_step_runs_the_most_overdue_group_first_then_the_fastest() -> None:
    text = RULES + """  - name: fast
    interval: 1s
    rules:
      - record: fast:temp
        expr: dcops_gpu_temperature_celsius
"""
    manager = RuleManager(Engine(_hot_store()))
    manager.load(load_rule_text(text, "r.yml"))
    order = []
    while manager.step(60_000):
        order.append([k[1] for k, r in manager.runs.items() if r.last_eval_ms == 60_000])
    assert order == [["fast"], ["gpu", "fast"]]
    manager.runs[("r.yml", "fast")].last_eval_ms = 59_000  # fell behind by one second
    manager.runs[("r.yml", "gpu")].last_eval_ms = 30_000
    assert manager.step(61_000)
    assert manager.runs[("r.yml", "gpu")].last_eval_ms == 60_000  # due longer ago
