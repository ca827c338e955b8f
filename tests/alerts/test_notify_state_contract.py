"""One contract for every SilenceStore, NotificationLog and Outbox: memory, SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest

from dcops.alerts.matchers import parse_matchers
from dcops.alerts.notifications import AlertStatus
from dcops.alerts.notifylog import LogEntry
from dcops.alerts.outbox import OutboxItem
from dcops.alerts.silences import Silence, SilenceState
from dcops.backends.sql.state import StateStore
from dcops.core.errors import NotFound
from tests.alerts.samples import T0, gpu_alert, notification

MATCHERS = tuple(parse_matchers('{alertname="GpuTooHot", node=~"n[0-9]+\\\\.dc", '
                                'rack!="r \\"x\\""}', "test"))


def _silence(silence_id: str = "s1", starts: float = 100.0, ends: float = 200.0) -> Silence:
    return Silence(silence_id, MATCHERS, starts, ends, "alice", "reboot", 90.0)


def test_silences_round_trip_with_their_matchers(state_store: StateStore) -> None:
    store = state_store.silences
    assert store.add(_silence()) == _silence()
    got = store.get("s1")
    assert got == _silence() and got.matchers == MATCHERS
    assert got.matches({"alertname": "GpuTooHot", "node": "n12.dc", "rack": "r1"})
    store.add(_silence("s2", 300.0, 400.0))
    assert [s.id for s in store.list()] == ["s1", "s2"]
    assert [s.id for s in store.list(SilenceState.ACTIVE, 150.0)] == ["s1"]
    assert [s.id for s in store.list(SilenceState.PENDING, 150.0)] == ["s2"]


def test_silences_update_and_expire(state_store: StateStore) -> None:
    store = state_store.silences
    store.add(_silence())
    changed = Silence("s1", MATCHERS, 100.0, 500.0, "bob", "longer", 120.0)
    assert store.update(changed) == changed and store.get("s1").ends_at == 500.0
    expired = store.expire("s1", 150.0)
    assert (expired.starts_at, expired.ends_at, expired.updated_at) == (100.0, 150.0, 150.0)
    assert store.get("s1").state(150.0) is SilenceState.EXPIRED
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(NotFound):
        store.update(_silence("nope"))


def test_the_notification_log_keeps_one_entry_per_receiver_and_group(
        state_store: StateStore) -> None:
    log = state_store.notification_log
    assert log.get("ops", "{}:{}") is None
    first = LogEntry("ops", "{}:{}", frozenset({"a/firing", "b/flapping"}), frozenset(), 10.0)
    log.put(first)
    assert log.get("ops", "{}:{}") == first
    later = LogEntry("ops", "{}:{}", frozenset(), frozenset({"a"}), 20.0)
    log.put(later)
    log.put(LogEntry("pager", "{}:{}", frozenset({"a/firing"}), frozenset(), 30.0))
    assert log.get("ops", "{}:{}") == later
    assert log.get("pager", "{}:{}") is not None and log.get("ops", "other") is None


def _item(note_id: str, at: float, notifier: str = "oncall/webhook[0]") -> OutboxItem:
    note = notification(gpu_alert("0"), gpu_alert("1", AlertStatus.RESOLVED, ends_at=T0),
                        id=note_id)
    return OutboxItem(note, notifier, at, at)


def test_the_outbox_keeps_each_delivery_once_until_it_is_done(state_store: StateStore) -> None:
    box = state_store.outbox
    assert box.put(_item("n1", 10.0)) and not box.put(_item("n1", 11.0))
    assert box.put(_item("n1", 12.0, "oncall/email[0]")) and box.put(_item("n2", 5.0))
    assert box.pending_count() == 3 and box.next_due() == 5.0
    assert [i.key for i in box.due(10.0, 10)] == [("n2", "oncall/webhook[0]"),
                                                  ("n1", "oncall/webhook[0]")]
    (first,) = box.due(10.0, 1)
    assert first.notification == _item("n2", 5.0).notification  # JSON round trip
    box.failed(("n2", "oncall/webhook[0]"), 10.0, "503 from receiver", 12.0)
    assert [i.key[0] for i in box.due(11.0, 10)] == ["n1"]
    (retried,) = [i for i in box.due(12.0, 10) if i.key[0] == "n2"]
    assert (retried.attempts, retried.last_error) == (1, "503 from receiver")
    box.delivered(("n2", "oncall/webhook[0]"), 12.0)
    box.gave_up(("n1", "oncall/email[0]"), 13.0, "550 no such user")
    assert box.pending_count() == 1 and box.next_due() == 10.0
    assert box.prune(before=12.5) == 1 and box.prune(before=100.0) == 1
    assert box.pending_count() == 1
    with pytest.raises(NotFound):
        box.delivered(("nope", "x"), 1.0)
