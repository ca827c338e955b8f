"""The notification log and Alertmanager's dedup decision."""

from __future__ import annotations

from collections.abc import Collection

from dcops.alerts.notifications import AlertStatus, NotifiedAlert
from dcops.alerts.notifylog import LogEntry, MemoryNotificationLog, firing_key, needs_update


def entry(firing: Collection[str], resolved: Collection[str] = (), at: float = 0.0
          ) -> LogEntry:
    return LogEntry("r", "g", frozenset(firing), frozenset(resolved), at)


def decide(e: LogEntry | None, firing: Collection[str], resolved: Collection[str] = (),
           *, send_resolved: bool = True, now: float = 10.0) -> bool:
    return needs_update(e, frozenset(firing), frozenset(resolved), send_resolved=send_resolved,
                        repeat_interval_s=100.0, now=now)


def test_the_log_keeps_one_entry_per_receiver_and_group() -> None:
    log = MemoryNotificationLog()
    assert log.get("r", "g") is None
    log.put(entry({"a/firing"}))
    log.put(entry({"b/firing"}, at=5.0))
    assert log.get("r", "g") == entry({"b/firing"}, at=5.0)
    assert log.get("other", "g") is None


def test_firing_keys_carry_the_status() -> None:
    alert = NotifiedAlert({"a": "1"}, {}, AlertStatus.FLAPPING, 0.0)
    assert firing_key(alert) == f"{alert.fingerprint}/flapping"


def test_dedup_decisions() -> None:
    assert not decide(None, set(), {"x"})
    assert decide(None, {"a/firing"})
    assert decide(entry({"a/firing"}), {"a/firing", "b/firing"})
    assert decide(entry({"a/firing"}), {"a/flapping"})
    assert not decide(entry({"a/firing", "b/firing"}), {"a/firing"})
    assert decide(entry({"a/firing"}), set(), {"a"}, send_resolved=False)
    assert not decide(entry(set(), {"a"}), set(), {"b"})
    assert decide(entry({"a/firing"}), {"a/firing"}, {"b"})
    assert not decide(entry({"a/firing"}), {"a/firing"}, {"b"}, send_resolved=False)
    assert not decide(entry({"a/firing"}), {"a/firing"}, now=99.0)
    assert decide(entry({"a/firing"}), {"a/firing"}, now=100.0)
    assert not decide(entry({"a/flapping"}), {"a/flapping"}, now=1000.0)
