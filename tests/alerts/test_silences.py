"""Silences: validation, lifecycle, Alertmanager's update rule, fast look-up and audit."""

from __future__ import annotations

import itertools

import pytest

from dcops.access.store import MemoryAuditLog
from dcops.alerts.matchers import Matcher, parse_matchers
from dcops.alerts.silences import MemorySilenceStore, Silence, Silences, SilenceState
from dcops.core.errors import Invalid, NotFound

T0 = 1_700_000_000.0


def m(text: str) -> tuple[Matcher, ...]:
    return tuple(parse_matchers(text, "t"))


def service() -> tuple[Silences, MemoryAuditLog]:
    audit = MemoryAuditLog()
    counter = itertools.count(1)
    return Silences(MemorySilenceStore(), audit, new_id=lambda: f"s{next(counter)}"), audit


def test_state_follows_the_clock() -> None:
    s = Silence("s1", m('a="b"'), T0 + 10, T0 + 20, "ana", "why", T0)
    assert [s.state(T0 + t) for t in (0, 10, 19.9, 20, 30)] == [
        SilenceState.PENDING, SilenceState.ACTIVE, SilenceState.ACTIVE,
        SilenceState.EXPIRED, SilenceState.EXPIRED]


@pytest.mark.parametrize(("matchers", "ends", "by", "comment", "field"), [
    ("", T0 + 60, "ana", "why", "matchers"),
    ('a="", b=~".*"', T0 + 60, "ana", "why", "matchers"),
    ('a="b"', T0 - 1, "ana", "why", "ends_at"),
    ('a="b"', T0 + 60, " ", "why", "created_by"),
    ('a="b"', T0 + 60, "ana", "", "comment"),
])
def test_invalid_silences_name_the_field(matchers: str, ends: float, by: str, comment: str,
                                         field: str) -> None:
    silences, audit = service()
    with pytest.raises(Invalid) as err:
        silences.add(m(matchers), T0, ends, by, comment, T0)
    assert err.value.where is not None and err.value.where.endswith(field)
    assert audit.list() == []


def test_a_start_in_the_past_becomes_now_and_ending_in_the_past_is_refused() -> None:
    silences, _ = service()
    s = silences.add(m('a="b"'), T0 - 100, T0 + 60, "ana", "why", T0)
    assert s.starts_at == T0
    with pytest.raises(Invalid, match="in the past"):
        silences.add(m('a="b"'), T0 - 100, T0 - 50, "ana", "why", T0)


def test_lifecycle_and_audit_records() -> None:
    silences, audit = service()
    s = silences.add(m('rack="r1"'), T0, T0 + 3600, "ana", "PDU swap", T0)
    assert silences.silenced_by({"rack": "r1", "node": "n1"}, T0 + 1) == ["s1"]
    assert silences.list(T0 + 1, SilenceState.ACTIVE) == [s]
    expired = silences.expire("s1", "bo", T0 + 60)
    assert expired.state(T0 + 60) is SilenceState.EXPIRED and expired.ends_at == T0 + 60
    assert silences.silenced_by({"rack": "r1"}, T0 + 61) == []
    assert silences.list(T0 + 61, SilenceState.ACTIVE) == []
    with pytest.raises(Invalid, match="already expired") as err:
        silences.expire("s1", "bo", T0 + 70)
    assert err.value.hint is not None
    records = list(reversed(audit.list()))
    assert [(r.actor, r.action, r.target) for r in records] == [
        ("ana", "silence.create", "silence:s1"), ("bo", "silence.expire", "silence:s1")]
    assert records[0].details["matchers"] == '{rack="r1"}'
    assert records[0].details["comment"] == "PDU swap"
    with pytest.raises(NotFound):
        silences.expire("nope", "bo", T0)


def test_expiring_a_pending_silence_ends_it_before_it_starts() -> None:
    silences, _ = service()
    silences.add(m('a="b"'), T0 + 100, T0 + 200, "ana", "later", T0)
    assert silences.silenced_by({"a": "b"}, T0 + 150) == ["s1"]
    s = silences.expire("s1", "ana", T0 + 10)
    assert (s.starts_at, s.ends_at) == (T0 + 10, T0 + 10)
    assert silences.silenced_by({"a": "b"}, T0 + 150) == []


def test_update_in_place_when_the_matchers_stay() -> None:
    silences, audit = service()
    silences.add(m('a="b"'), T0, T0 + 60, "ana", "why", T0)
    s = silences.update("s1", m('a="b"'), T0, T0 + 600, "ana", "longer", T0 + 10)
    assert (s.id, s.ends_at, s.comment, s.updated_at) == ("s1", T0 + 600, "longer", T0 + 10)
    assert audit.list()[0].action == "silence.update"


def test_changing_an_active_silences_matchers_expires_it_and_creates_another() -> None:
    silences, audit = service()
    silences.add(m('a="b"'), T0, T0 + 600, "ana", "why", T0)
    new = silences.update("s1", m('a="c"'), T0, T0 + 600, "bo", "other", T0 + 10)
    assert new.id == "s2" and new.starts_at == T0 + 10
    assert silences.get("s1").state(T0 + 10) is SilenceState.EXPIRED
    assert silences.silenced_by({"a": "b"}, T0 + 11) == []
    assert silences.silenced_by({"a": "c"}, T0 + 11) == ["s2"]
    assert [r.action for r in reversed(audit.list())] == [
        "silence.create", "silence.expire", "silence.create"]


def test_updating_an_expired_silence_creates_a_new_one() -> None:
    silences, _ = service()
    silences.add(m('a="b"'), T0, T0 + 60, "ana", "why", T0)
    new = silences.update("s1", m('a="b"'), T0 + 100, T0 + 600, "ana", "again", T0 + 100)
    assert new.id == "s2"
    assert silences.get("s1").ends_at == T0 + 60


def test_silenced_by_picks_up_pending_silences_as_they_start() -> None:
    silences, _ = service()
    silences.add(m('a="b"'), T0 + 100, T0 + 200, "ana", "why", T0)
    silences.add(m('a=~"b|c", rack!="r9"'), T0, T0 + 150, "ana", "why", T0)
    labels = {"a": "b"}
    assert silences.silenced_by(labels, T0) == ["s2"]
    assert silences.silenced_by(labels, T0 + 100) == ["s1", "s2"]
    assert silences.silenced_by(labels, T0 + 150) == ["s1"]
    assert silences.silenced_by(labels, T0 + 200) == []


def test_silenced_by_many_alerts() -> None:
    silences, _ = service()
    for rack in range(50):
        silences.add(m(f'rack="r{rack}", severity!="critical"'), T0, T0 + 60, "ana", "x", T0)
    alerts = [{"rack": f"r{i % 100}", "severity": "warning" if i % 2 else "critical"}
              for i in range(1000)]
    muted = [a for a in alerts if silences.silenced_by(a, T0 + 1)]
    assert len(muted) == 250
    assert silences.silenced_by({"rack": "r7", "severity": "warning"}, T0 + 1) == ["s8"]
