"""Inhibition: firing sources mute targets with equal labels, never themselves."""

from __future__ import annotations

from dcops.alerts.inhibit import Inhibitor, InhibitRule
from dcops.alerts.matchers import parse_matchers
from dcops.alerts.notifications import fingerprint


def rule(source: str, target: str, *equal: str) -> InhibitRule:
    return InhibitRule(tuple(parse_matchers(source, "t")), tuple(parse_matchers(target, "t")),
                       equal)


PDU_DOWN = {"alertname": "PduDown", "rack": "r1", "severity": "critical"}
NODE_DOWN_R1 = {"alertname": "NodeDown", "rack": "r1", "severity": "warning"}
NODE_DOWN_R2 = {"alertname": "NodeDown", "rack": "r2", "severity": "warning"}


def test_a_source_mutes_targets_with_equal_labels_only() -> None:
    inhibitor = Inhibitor([rule('alertname="PduDown"', 'alertname="NodeDown"', "rack")])
    index = inhibitor.index([PDU_DOWN])
    assert index.inhibited_by(NODE_DOWN_R1) == [fingerprint(PDU_DOWN)]
    assert not index.muted(NODE_DOWN_R2)
    assert not index.muted(PDU_DOWN)


def test_only_firing_sources_count() -> None:
    inhibitor = Inhibitor([rule('alertname="PduDown"', 'alertname="NodeDown"', "rack")])
    assert inhibitor.muted(NODE_DOWN_R1, [PDU_DOWN])
    assert not inhibitor.muted(NODE_DOWN_R1, [])


def test_a_label_missing_on_both_sides_is_equal() -> None:
    inhibitor = Inhibitor([rule('severity="critical"', 'severity="warning"', "cluster")])
    assert inhibitor.muted(NODE_DOWN_R2, [PDU_DOWN])
    assert not inhibitor.muted({**NODE_DOWN_R2, "cluster": "c1"}, [PDU_DOWN])


def test_no_equal_labels_mutes_every_target() -> None:
    inhibitor = Inhibitor([rule('alertname="Maintenance"', 'severity="warning"')])
    assert inhibitor.muted(NODE_DOWN_R2, [{"alertname": "Maintenance"}])


def test_an_alert_matching_both_sides_does_not_mute_itself_or_its_kind() -> None:
    inhibitor = Inhibitor([rule('severity=~"critical|warning"', 'severity=~"warning|info"',
                                "rack")])
    warning = {"alertname": "A", "rack": "r1", "severity": "warning"}
    other_warning = {"alertname": "B", "rack": "r1", "severity": "warning"}
    info = {"alertname": "C", "rack": "r1", "severity": "info"}
    index = inhibitor.index([warning, other_warning])
    assert not index.muted(warning)
    assert not index.muted(other_warning)
    assert index.inhibited_by(info) == sorted([fingerprint(warning),
                                                fingerprint(other_warning)])
    # a source that matches only the source side still mutes a two-sided alert
    assert inhibitor.index([PDU_DOWN, warning]).inhibited_by(warning) == [
        fingerprint(PDU_DOWN)]


def test_many_rules_and_many_alerts() -> None:
    inhibitor = Inhibitor([
        rule('alertname="PduDown"', 'alertname="NodeDown"', "rack"),
        rule('alertname="NodeDown"', 'alertname="GpuLost"', "node"),
    ])
    firing = [PDU_DOWN] + [{"alertname": "NodeDown", "rack": f"r{i % 3}", "node": f"n{i}"}
                           for i in range(300)]
    index = inhibitor.index(firing)
    muted = [labels for labels in firing if index.muted(labels)]
    assert len(muted) == 100 and all(m["rack"] == "r1" for m in muted)
    assert index.muted({"alertname": "GpuLost", "node": "n7"})
    assert not index.muted({"alertname": "GpuLost", "node": "n700"})
