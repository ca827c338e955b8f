"""Flap detection: Nagios's weighted percent state change, and alerts marked flapping
while they change too often, then settled."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from dcops.alerts.evaluator import GroupEvaluator
from dcops.alerts.flapping import Flaps, FlapTrack, percent_state_change
from dcops.alerts.model import AlertingRule, FlapThresholds, RuleGroup
from dcops.query import Engine
from dcops.telemetry.model import Batch, Labels, make_labels
from dcops.telemetry.store import MemoryMetricsStore

TEMP = "dcops_gpu_temperature_celsius"
MIN = 60_000


def test_the_newest_change_weighs_1_25_and_the_oldest_0_75() -> None:
    assert percent_state_change([20], now=20) == pytest.approx(1.25 * 100 / 20)
    assert percent_state_change([1], now=20) == pytest.approx(0.75 * 100 / 20)
    assert percent_state_change([0], now=20) == 0.0  # out of the 21-state window


def test_a_change_at_every_evaluation_is_100_percent() -> None:
    assert percent_state_change(list(range(1, 21)), now=20) == pytest.approx(100.0)


def test_flapping_starts_above_high_and_stops_only_below_low() -> None:
    track = FlapTrack()
    thresholds = FlapThresholds(high_percent=20, low_percent=5)
    for at in (1, 2, 3):
        track.changed(at)
        track.update(at, thresholds)
    assert not track.flapping  # 3 recent changes: about 18.7 percent
    track.changed(4)
    track.update(4, thresholds)
    assert track.flapping and track.percent > 20
    track.update(20, thresholds)  # older changes weigh less, still above 5
    assert track.flapping
    track.update(23, thresholds)  # only the change at 4 is left: 4.2 percent
    assert not track.flapping and not track.settled
    track.update(24, thresholds)
    assert track.settled


@pytest.mark.parametrize("high_low", [(20, 5), (50, 25), (5, 2)])
@pytest.mark.parametrize("seed", range(20))
def test_flaps_decides_as_a_track_updated_at_every_evaluation_would(
        seed: int, high_low: tuple[float, float]) -> None:
    """Flaps skips the alerts that cannot start flapping (and makes no track for one
    change, unless the thresholds are so low that one may flap): the outcome is the same."""
    rng = random.Random(seed)
    thresholds = FlapThresholds(high_percent=high_low[0], low_percent=high_low[1])
    flaps = Flaps()
    full: dict[Labels, FlapTrack] = {}
    names: list[Labels] = [(("gpu", str(i)),) for i in range(6)]
    burst = rng.random() * 0.6
    for now in range(1, 150):
        if now % 40 == 0:
            burst = rng.random() * 0.6  # calm spells and stormy ones
        for labels in names:
            if rng.random() < burst:
                flaps.changed(labels, now)
                full.setdefault(labels, FlapTrack()).changed(now)
        for track in full.values():
            track.update(now, thresholds)
        full = {k: t for k, t in full.items() if not t.settled}
        reported = dict(flaps.update(now, thresholds))
        assert flaps.flapping() == {k: t.flapping for k, t in full.items()}, now
        for labels, track in full.items():  # every change of flapping is reported
            if track.flapping or labels in reported:
                assert reported[labels].flapping == track.flapping
    for now in range(150, 175):  # all calm: every track is forgotten
        for track in full.values():
            track.update(now, thresholds)
        list(flaps.update(now, thresholds))
    assert flaps.flapping() == {} and not flaps


def _store(values: Sequence[float]) -> MemoryMetricsStore:
    store = MemoryMetricsStore()
    batch = Batch()
    for k, value in enumerate(values):
        batch.add(make_labels(TEMP, {"node": "n1", "gpu": "0"}), k * MIN, value)
    store.append(batch)
    return store


def _flapping(evaluator: GroupEvaluator, minutes: range) -> list[tuple[int, str, bool]]:
    return [(m, a.state.value, a.flapping) for m in minutes for a in evaluator.evaluate(m * MIN)]


def test_an_alert_that_fires_and_resolves_again_and_again_is_marked_flapping() -> None:
    store = _store([90, 80] * 4 + [80] * 25)
    rule = AlertingRule("Hot", f"{TEMP} > 85")
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store))
    log = _flapping(evaluator, range(33))
    assert log[:8] == [(0, "firing", False), (1, "inactive", False), (2, "firing", False),
                       (3, "inactive", True), (4, "firing", True), (5, "inactive", True),
                       (6, "firing", True), (7, "inactive", True)]
    settled = next(m for m, _, flapping in log if m > 7 and not flapping)
    # the last change was at minute 7; the percent falls below 5 once only it is left
    assert 20 <= settled <= 27
    assert all(state == "inactive" for _, state, _ in log[8:])
    assert not evaluator.flaps["Hot"]


def test_a_rule_can_switch_flap_detection_off() -> None:
    store = _store([90, 80] * 4)
    rule = AlertingRule("Hot", f"{TEMP} > 85", flapping=None)
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store))
    assert not any(flapping for _, _, flapping in _flapping(evaluator, range(8)))
    assert "Hot" not in evaluator.flaps


def test_a_steady_alert_is_not_tracked() -> None:
    store = _store([90] * 30)
    rule = AlertingRule("Hot", f"{TEMP} > 85")
    evaluator = GroupEvaluator(RuleGroup("g", 60, (rule,)), Engine(store))
    _flapping(evaluator, range(30))
    assert not evaluator.flaps["Hot"]
