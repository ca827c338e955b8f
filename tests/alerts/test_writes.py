"""A group's rule outputs are written together, yet each rule still sees what the rules
before it wrote at the same evaluation; a failed write is the failing rule's alone."""

from __future__ import annotations

from dcops.alerts.evaluator import GroupEvaluator
from dcops.alerts.model import AlertingRule, RecordingRule, RuleGroup
from dcops.alerts.writes import GroupWrites, merged
from dcops.core.errors import Unavailable
from dcops.query import Engine
from dcops.telemetry.model import Batch, make_labels, metric_name, name_matcher
from dcops.telemetry.store import MemoryMetricsStore

TEMP = "dcops_gpu_temperature_celsius"


class CountingStore(MemoryMetricsStore):
    """A memory store that counts its writes, and refuses those holding `refused`."""

    def __init__(self, refused: str = "") -> None:
        super().__init__()
        self.writes = 0
        self.refused = refused

    def append(self, batch: Batch) -> None:
        if self.refused and any(metric_name(lab) == self.refused for lab in batch.labels):
            raise Unavailable("disk full")
        self.writes += 1
        super().append(batch)


def _store(refused: str = "") -> CountingStore:
    store = CountingStore(refused)
    batch = Batch()
    for node, value in (("n1", 80.0), ("n2", 90.0)):
        batch.add(make_labels(TEMP, {"node": node}), 0, value)
    store.append(batch)
    store.writes = 0
    return store


def _value(store: MemoryMetricsStore, name: str) -> list[float]:
    return [float(s.values[-1]) for s in store.select([name_matcher(name)], 0, 10)]


def test_independent_rules_are_written_in_one_write() -> None:
    store = _store()
    rules = (RecordingRule("a:max", f"max({TEMP})"), RecordingRule("a:min", f"min({TEMP})"),
             AlertingRule("Hot", f"{TEMP} > 85"))
    GroupEvaluator(RuleGroup("g", 60, rules), Engine(store), store.append).evaluate(0)
    assert store.writes == 1
    assert (_value(store, "a:max"), _value(store, "a:min")) == ([90.0], [80.0])
    assert len(store.select([name_matcher("ALERTS")], 0, 10)) == 1


def test_a_rule_sees_what_an_earlier_rule_wrote_at_the_same_evaluation() -> None:
    store = _store()
    rules = (RecordingRule("a:max", f"max({TEMP})"), RecordingRule("a:next", "a:max + 1"),
             RecordingRule("a:alerts", "count(ALERTS)"), AlertingRule("Hot", f"{TEMP} > 85"),
             RecordingRule("a:alerts_after", "count(ALERTS)"))
    GroupEvaluator(RuleGroup("g", 60, rules), Engine(store), store.append).evaluate(0)
    assert _value(store, "a:next") == [91.0]
    assert _value(store, "a:alerts") == []  # no alert yet when it ran
    assert _value(store, "a:alerts_after") == [1.0]
    assert store.writes == 3  # before a:next, before a:alerts_after, at the end


def test_a_selector_without_a_name_sees_every_earlier_output() -> None:
    writes = GroupWrites()
    batch = Batch()
    batch.add(make_labels("a:max", {}), 0, 1.0)
    writes.add("a:max", batch, ("a:max",))
    assert writes.read_by(('{__name__=~"a:.*"}',))
    assert writes.read_by(('sum by (node) ({node="n1"})',))
    assert writes.read_by(("a:max * 2",))
    assert not writes.read_by((f'{TEMP}{{node="n1"}} > 1',))


def test_a_refused_write_is_the_error_of_the_rule_that_made_it() -> None:
    store = _store(refused="a:min")
    rules = (RecordingRule("a:max", f"max({TEMP})"), RecordingRule("a:min", f"min({TEMP})"))
    evaluator = GroupEvaluator(RuleGroup("g", 60, rules), Engine(store), store.append)
    evaluator.evaluate(0)
    assert _value(store, "a:max") == [90.0]
    assert _value(store, "a:min") == []
    assert evaluator.health["a:max"].error is None
    assert evaluator.health["a:min"].error == "disk full"


def test_merged_batches_keep_every_sample_in_order() -> None:
    one, two = Batch(), Batch()
    one.add(make_labels("x", {"n": "1"}), 0, 1.0)
    two.add(make_labels("y", {}), 0, 2.0)
    two.add(make_labels("x", {"n": "1"}), 0, 3.0)
    got = merged([one, two])
    assert [(metric_name(lab), v) for lab, _, v in got.samples()] == [("x", 1.0), ("y", 2.0),
                                                                      ("x", 3.0)]
