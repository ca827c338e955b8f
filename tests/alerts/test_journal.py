"""The alert journal: history of every change from firing on, and firing alerts that
survive a restart (pending ones come back from ALERTS_FOR_STATE)."""

from __future__ import annotations

from dcops.alerts.journal import (
    AlertEvent,
    AlertJournal,
    BufferedJournal,
    MemoryAlertJournal,
    StoredAlert,
)
from dcops.alerts.manager import RuleManager
from dcops.alerts.model import Alert, AlertState
from dcops.alerts.notifications import fingerprint
from dcops.alerts.rulefile import load_rule_text
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


def _store(values: list[float]) -> MemoryMetricsStore:
    store = MemoryMetricsStore()
    batch = Batch()
    for k, value in enumerate(values):
        batch.add(make_labels("dcops_gpu_temperature_celsius", {"gpu": "0"}), k * 30_000,
                  value)
    store.append(batch)
    return store


def _manager(store: MemoryMetricsStore, journal: AlertJournal, *, write: bool = False
             ) -> RuleManager:
    manager = RuleManager(Engine(store), store.append if write else None, journal)
    manager.load(load_rule_text(RULES, "r.yml"))
    return manager


def test_every_change_is_in_the_history_with_who_and_when() -> None:
    journal = MemoryAlertJournal()
    manager = _manager(_store([90, 90, 90, 80]), journal)
    for k in range(4):
        manager.tick(k * 30_000)
    events = [(e.at_ms, e.event, e.actor) for e in reversed(journal.history())]
    assert events == [(60_000, "firing", "rules/gpu"), (90_000, "resolved", "rules/gpu")]
    labels = {"alertname": "Hot", "gpu": "0"}
    assert [e.event for e in journal.history(fingerprint=fingerprint(labels), limit=1)] == [
        "resolved"]
    assert journal.history(alertname="Other") == []
    assert [e.event for e in journal.history(since_ms=61_000)] == ["resolved"]
    assert journal.live() == []


def test_alerts_that_are_only_pending_are_not_journaled() -> None:
    journal = MemoryAlertJournal()
    manager = _manager(_store([90, 80, 90, 80]), journal)
    for k in range(4):
        manager.tick(k * 30_000)
    assert [e for _, e in manager.changes] == ["cleared"]
    assert journal.history() == [] and journal.live() == []


def test_a_restart_keeps_a_firing_alert_firing_from_when_it_fired() -> None:
    store, journal = _store([90] * 6), MemoryAlertJournal()
    first = _manager(store, journal)
    for k in range(3):
        first.tick(k * 30_000)
    (kept,) = journal.live()
    assert kept.alert.state is AlertState.FIRING and kept.group == "r.yml:gpu"
    second = _manager(store, journal)  # a new process, the same state store
    (alert,) = second.tick(3 * 30_000)
    assert (alert.state, alert.active_at_ms, alert.fired_at_ms) == (AlertState.FIRING, 0,
                                                                    60_000)
    assert [e for _, e in second.changes] == ["restored"]
    assert [e.event for e in journal.history()] == ["firing"]  # nothing new


def test_a_restart_does_not_start_for_again() -> None:
    store, journal = _store([90] * 6), MemoryAlertJournal()
    _manager(store, journal, write=True).tick(0)  # its start is in ALERTS_FOR_STATE
    second = _manager(store, journal, write=True)
    assert second.tick(30_000)[0].state is AlertState.PENDING
    assert second.tick(60_000)[0].state is AlertState.FIRING  # for: 1m from 0, not 30 s


def test_a_buffered_journal_writes_in_order_and_reads_what_was_written() -> None:
    inner = MemoryAlertJournal()
    journal = BufferedJournal(inner)
    labels = (("alertname", "Hot"), ("gpu", "0"))
    alert = Alert("Hot", labels, {}, AlertState.FIRING, 90.0, 0, 60_000)
    for k in range(50):
        journal.record([AlertEvent(k, "Hot", dict(labels), "firing", "rules/g")],
                       [StoredAlert("r.yml:g", "Hot", alert)], [])
        journal.record([AlertEvent(k, "Hot", dict(labels), "resolved", "rules/g")], [],
                       [("r.yml:g", "Hot", labels)])
    alert.state = AlertState.NODATA  # later news of the same alert wins
    journal.record([], [StoredAlert("r.yml:g", "Hot", alert)], [])
    assert [s.alert.state for s in journal.live()] == [AlertState.NODATA]
    assert len(journal.history(limit=1000)) == 100
    assert journal.history(limit=1)[0].event == "resolved"
    journal.close()
    assert [s.alert.state for s in inner.live()] == [AlertState.NODATA]
