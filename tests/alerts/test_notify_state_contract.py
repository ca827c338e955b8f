"""One contract for every SilenceStore and NotificationLog: memory, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from dcops.alerts.matchers import parse_matchers
from dcops.alerts.notifylog import LogEntry
from dcops.alerts.silences import Silence, SilenceState
from dcops.backends.sql.state import StateStore
from dcops.core.errors import NotFound

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
