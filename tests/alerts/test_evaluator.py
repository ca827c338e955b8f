"""The evaluator's timeline: pending, firing, resolved, as Prometheus's rule manager moves
alerts; hysteresis and keep_firing_for; recording rules; a failing rule stops nothing."""

from __future__ import annotations

import math

from dcops.alerts.evaluator import GroupEvaluator, _alert_series
from dcops.alerts.model import Alert, AlertingRule, AlertState, RecordingRule, RuleGroup
from dcops.query import Engine
from dcops.telemetry.model import Batch, make_labels, name_matcher
from dcops.telemetry.store import MemoryMetricsStore

TEMP = "dcops_gpu_temperature_celsius"
MIN = 60_000


def _store(values: list[float | None], node: str = "n1") -> MemoryMetricsStore:
    store = MemoryMetricsStore()
    store.append(_store_batch(node, values))
    return store


def _store_batch(node: str, values: list[float | None]) -> Batch:
    batch = Batch()
    for k, value in enumerate(values):
        if value is not None:
            batch.add(make_labels(TEMP, {"node": node, "gpu": "0"}), k * MIN, value)
    return batch


def _timeline(evaluator: GroupEvaluator, minutes: int) -> list[tuple[int, str, str]]:
    log = []
    for m in range(minutes):
        for alert in evaluator.evaluate(m * MIN):
            log.append((m, alert.rule, alert.state.value))
    return log


def test_for_holds_an_alert_pending_then_it_fires_and_resolves() -> None:
    store = _store([80, 90, 90, 90, 90, 80, 80])
    rule = AlertingRule("Hot", f"{TEMP} > 85", for_s=120, labels={"severity": "page"},
                        annotations={"summary": "{{ $labels.node }} at {{ $value }}"})
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store))
    assert _timeline(evaluator, 7) == [
        (1, "Hot", "pending"), (2, "Hot", "pending"), (3, "Hot", "firing"),
        (4, "Hot", "firing"), (5, "Hot", "inactive"), (6, "Hot", "inactive")]
    (alert,) = evaluator.alerts["Hot"].values()
    assert dict(alert.labels) == {"alertname": "Hot", "gpu": "0", "node": "n1",
                                  "severity": "page"}
    assert alert.annotations == {"summary": "n1 at 90"}
    assert (alert.active_at_ms, alert.fired_at_ms, alert.resolved_at_ms) == (MIN, 3 * MIN,
                                                                             5 * MIN)


def test_a_pending_alert_that_goes_away_never_fires() -> None:
    store = _store([90, 90, 80, 90])
    rule = AlertingRule("Hot", f"{TEMP} > 85", for_s=180)
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store))
    assert _timeline(evaluator, 4) == [(0, "Hot", "pending"), (1, "Hot", "pending"),
                                       (3, "Hot", "pending")]


def test_hysteresis_fires_above_85_and_clears_only_below_80() -> None:
    store = _store([84, 86, 83, 82, 81, 79, 83])
    rule = AlertingRule("Hot", f"{TEMP} > 85", clear_expr=f"{TEMP} < 80")
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store))
    assert _timeline(evaluator, 7) == [
        (1, "Hot", "firing"), (2, "Hot", "firing"), (3, "Hot", "firing"),
        (4, "Hot", "firing"), (5, "Hot", "inactive"), (6, "Hot", "inactive")]


def test_keep_firing_for_counts_from_the_first_evaluation_without_the_series() -> None:
    store = _store([90, 80, 80, 80, 80])
    rule = AlertingRule("Hot", f"{TEMP} > 85", keep_firing_for_s=120)
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store))
    assert _timeline(evaluator, 5) == [
        (0, "Hot", "firing"), (1, "Hot", "firing"), (2, "Hot", "firing"),
        (3, "Hot", "inactive"), (4, "Hot", "inactive")]


def test_recording_rules_write_series_that_later_rules_read() -> None:
    store = _store([70, 75, 90])
    record = RecordingRule("node:temp:max", f"max by (node) ({TEMP})", {"source": "rules"})
    alert = AlertingRule("NodeHot", "node:temp:max > 85")
    evaluator = GroupEvaluator(RuleGroup("g", 60, (record, alert)), Engine(store),
                               store.append)
    assert _timeline(evaluator, 3) == [(2, "NodeHot", "firing")]
    (written,) = store.select([name_matcher("node:temp:max")], 0, 3 * MIN)
    assert dict(written.labels) == {"__name__": "node:temp:max", "node": "n1",
                                    "source": "rules"}
    assert written.ts_ms.tolist() == [0, MIN, 2 * MIN]
    assert written.values.tolist() == [70, 75, 90]


def test_a_failing_rule_keeps_its_alerts_and_the_others_go_on() -> None:
    store = _store([90, 90])
    broken = AlertingRule("Broken", f'label_replace({TEMP}, "x", "$1", "node", "(")')
    fine = AlertingRule("Hot", f"{TEMP} > 85")
    evaluator = GroupEvaluator(RuleGroup("g", 60, (broken, fine)), Engine(store))
    assert _timeline(evaluator, 2) == [(0, "Hot", "firing"), (1, "Hot", "firing")]
    assert evaluator.health["Broken"].error is not None
    assert evaluator.health["Hot"].error is None


def test_duplicate_label_sets_after_rule_labels_are_an_error_not_a_merge() -> None:
    store = _store([90])
    two = Batch()
    two.add(make_labels(TEMP, {"node": "n2", "gpu": "0"}), 0, 91.0)
    store.append(two)
    rule = AlertingRule("Hot", f"{TEMP} > 85", labels={"node": "all"})
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store))
    assert evaluator.evaluate(0) == []
    assert "same labelset" in (evaluator.health["Hot"].error or "")


def test_alerts_series_follow_the_state_and_end_with_a_staleness_marker() -> None:
    store = _store([90, 90, 90, 80, 80])
    rule = AlertingRule("Hot", f"{TEMP} > 85", for_s=60)
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store), store.append)
    for m in range(5):
        evaluator.evaluate(m * MIN)
    engine = Engine(store)

    def states(m: int) -> list[tuple[str, str]]:
        found = engine.instant("ALERTS", m * MIN).series
        return [(dict(s.labels)["alertstate"], f"{s.values[0]:g}") for s in found]

    assert [states(m) for m in range(5)] == [
        [("pending", "1")], [("firing", "1")], [("firing", "1")], [], []]
    for_state = engine.instant("ALERTS_FOR_STATE", 2 * MIN).series
    assert [float(s.values[0]) for s in for_state] == [0.0]  # active since 0 s


def test_after_a_restart_for_goes_on_from_alerts_for_state() -> None:
    store = _store([90] * 6)
    rule = AlertingRule("Hot", f"{TEMP} > 85", for_s=240)
    before = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store), store.append)
    for m in range(3):  # pending since 0
        before.evaluate(m * MIN)
    after = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store), store.append,
                           restore=True)  # a new process, two minutes later
    assert [a.state.value for a in after.evaluate(4 * MIN)] == ["firing"]
    fresh = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(_store([90] * 6)))
    assert [a.state.value for a in fresh.evaluate(4 * MIN)] == ["pending"]


def test_nodata_holds_a_firing_alert_whose_series_vanished_instead_of_resolving() -> None:
    # 90 for 3 minutes, then nothing for 10 (past the 5-minute lookback), then 90, then 80
    store = _store([90, 90, 90, *[None] * 10, 90, 80])
    rule = AlertingRule("Hot", f"{TEMP} > 85", nodata_expr=TEMP)
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store))
    states = {m: s for m, _, s in _timeline(evaluator, 15)}
    assert [states[m] for m in (0, 2, 7)] == ["firing", "firing", "firing"]  # lookback
    assert all(states[m] == "nodata" for m in range(8, 13))
    assert states[13] == "firing" and states[14] == "inactive"
    (alert,) = evaluator.alerts["Hot"].values()
    assert alert.fired_at_ms == 0  # the same alert throughout, never re-fired


def test_without_nodata_a_vanished_series_resolves_as_in_prometheus() -> None:
    store = _store([90, 90, 90, *[None] * 10])
    rule = AlertingRule("Hot", f"{TEMP} > 85")
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store))
    states = {m: s for m, _, s in _timeline(evaluator, 13)}
    assert states[8] == "inactive"


def test_nodata_alerts_are_written_to_alerts_with_their_state() -> None:
    store = _store([90, *[None] * 7])
    rule = AlertingRule("Hot", f"{TEMP} > 85", nodata_expr=TEMP)
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store), store.append)
    _timeline(evaluator, 8)
    result = Engine(store).instant('ALERTS{alertstate="nodata"}', 7 * MIN)
    assert [dict(s.labels)["alertname"] for s in result.series] == ["Hot"]


def test_alert_labels_follow_each_evaluation_series_and_value() -> None:
    store = _store([90, 90, 95])
    store.append(_store_batch(node="n2", values=[None, 91, 91]))
    by_node = AlertingRule("ByNode", f"{TEMP} > 85", labels={"where": "{{ $labels.node }}"})
    by_value = AlertingRule("ByValue", f"{TEMP} > 85", labels={"level": "{{ $value }}"})
    evaluator = GroupEvaluator(RuleGroup("g", 60, (by_node, by_value)), Engine(store))
    seen = []
    for m in range(3):
        evaluator.evaluate(m * MIN)
        seen.append(sorted((a.rule, dict(a.labels).get("where") or dict(a.labels)["level"])
                           for by_rule in evaluator.alerts.values()
                           for a in by_rule.values() if a.state.value != "inactive"))
    assert seen == [
        [("ByNode", "n1"), ("ByValue", "90")],
        [("ByNode", "n1"), ("ByNode", "n2"), ("ByValue", "90"), ("ByValue", "91")],
        [("ByNode", "n1"), ("ByNode", "n2"), ("ByValue", "91"), ("ByValue", "95")]]


def test_recorded_series_keep_their_labels_as_answers_come_and_go() -> None:
    store = _store([70, 75, 90])
    store.append(_store_batch(node="n2", values=[None, 60, None]))
    record = RecordingRule("node:temp:max", f"max by (node) ({TEMP})", {"source": "rules"})
    evaluator = GroupEvaluator(RuleGroup("g", 60, (record,)), Engine(store), store.append)
    for m in range(3):
        evaluator.evaluate(m * MIN)
    written = {dict(s.labels)["node"]: (s.ts_ms.tolist(), s.values.tolist())
               for s in store.select([name_matcher("node:temp:max")], 0, 3 * MIN)}
    assert written["n1"] == ([0, MIN, 2 * MIN], [70, 75, 90])
    assert written["n2"][0] == [MIN, 2 * MIN]  # then its staleness marker
    assert written["n2"][1][0] == 60


def test_alerts_series_labels_are_the_same_whichever_state_came_first() -> None:
    for extra in ({}, {"alertstate": "firing", "zone": "b"}):  # an alert over ALERTS too
        labels = tuple(sorted({"alertname": "Hot", "node": "n1", **extra}.items()))
        alert = Alert("Hot", labels, {}, AlertState.PENDING, 1.0, 0)
        _alert_series([alert], 0)
        alert.state = AlertState.FIRING
        firing = _alert_series([alert], 0).labels[0]
        assert firing == tuple(sorted((*labels, ("__name__", "ALERTS"),
                                       ("alertstate", "firing"))))


def test_staleness_markers_go_by_labels_not_by_which_tuple_holds_them() -> None:
    written: list[Batch] = []
    evaluator = GroupEvaluator(RuleGroup("g", 60, ()), Engine(MemoryMetricsStore()),
                               written.append)

    def emit(at_ms: int, *labels: tuple[tuple[str, str], ...]) -> list[tuple[str, str | float]]:
        batch = Batch()
        for one in labels:
            batch.add(one, at_ms, 1.0)
        evaluator._emit("r", batch, at_ms, ("r",))
        evaluator._write_held(at_ms)
        return [(dict(lab)["node"], "stale" if math.isnan(v) else v)
                for lab, _, v in written[-1].samples()] if written else []

    a = make_labels("r", {"node": "a"})
    b = make_labels("r", {"node": "b"})
    assert emit(0, a, b) == [("a", 1.0), ("b", 1.0)]
    again = tuple(list(a))  # equal labels, another tuple
    assert again is not a
    assert emit(1, again) == [("a", 1.0), ("b", "stale")]
    assert emit(2, b) == [("b", 1.0), ("a", "stale")]
