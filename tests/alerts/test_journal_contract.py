"""One contract for every AlertJournal: memory, SQLite and PostgreSQL."""

from __future__ import annotations

import math

from dcops.alerts.journal import AlertEvent, StoredAlert
from dcops.alerts.model import Alert, AlertState
from dcops.alerts.notifications import fingerprint
from dcops.backends.sql.state import StateStore

LABELS = (("alertname", "Hot"), ("gpu", "0"), ("node", "n1"))


def _alert(state: AlertState, value: float = 91.5) -> Alert:
    return Alert("Hot", LABELS, {"summary": "hot"}, state, value, 1_000, 61_000,
                 flapping=state is AlertState.FIRING)


def test_history_is_newest_first_and_filters(state_store: StateStore) -> None:
    journal = state_store.alerts
    journal.record([AlertEvent(1_000, "Hot", dict(LABELS), "pending", "rules/gpu", 91.5),
                    AlertEvent(61_000, "Hot", dict(LABELS), "firing", "rules/gpu", 92.0),
                    AlertEvent(62_000, "Cold", {"alertname": "Cold"}, "pending", "rules/x",
                               math.nan, {"note": "n"})], [], [])
    events = journal.history()
    assert [(e.event, e.at_ms) for e in events] == [("pending", 62_000), ("firing", 61_000),
                                                    ("pending", 1_000)]
    assert events[0].value is None or math.isnan(events[0].value)
    assert events[0].details == {"note": "n"} and events[1].labels == dict(LABELS)
    assert [e.event for e in journal.history(alertname="Hot", limit=1)] == ["firing"]
    assert len(journal.history(fingerprint=fingerprint(dict(LABELS)))) == 2
    assert [e.at_ms for e in journal.history(since_ms=61_000)] == [62_000, 61_000]
    ids = [e.id or 0 for e in events]
    assert 0 not in ids and ids == sorted(ids, reverse=True)


def test_live_alerts_are_replaced_and_forgotten(state_store: StateStore) -> None:
    journal = state_store.alerts
    journal.record([], [StoredAlert("r.yml:gpu", "Hot", _alert(AlertState.PENDING))], [])
    journal.record([], [StoredAlert("r.yml:gpu", "Hot", _alert(AlertState.FIRING, math.nan))],
                   [])
    (kept,) = journal.live()
    assert (kept.group, kept.rule) == ("r.yml:gpu", "Hot")
    alert = kept.alert
    assert (alert.labels, alert.state, alert.active_at_ms, alert.fired_at_ms) == (
        LABELS, AlertState.FIRING, 1_000, 61_000)
    assert alert.flapping and alert.annotations == {"summary": "hot"}
    assert math.isnan(alert.value)
    journal.record([], [], [("r.yml:gpu", "Hot", LABELS)])
    assert journal.live() == []
