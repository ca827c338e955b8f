"""The notification log: what each receiver was last told about each alert group.

Alertmanager's deduplication, kept as data so a restarted dispatcher does not notify
again: per (receiver, group key), the alerts that were firing and those that were
resolved in the last notification sent, and when it was sent. A non-resolved alert is
logged as ``fingerprint/status`` (``firing``, ``flapping``, ``nodata``), so a change of
status is news; a resolved one as its fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dcops.alerts.notifications import AlertStatus, NotifiedAlert


@dataclass(frozen=True, slots=True)
class LogEntry:
    """The last notification one receiver got for one group."""

    receiver: str
    group_key: str
    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: float


class NotificationLog(Protocol):
    """Where log entries are kept (in memory here; SQL so they survive a restart)."""

    def get(self, receiver: str, group_key: str) -> LogEntry | None: ...

    def put(self, entry: LogEntry) -> None:
        """Replace the entry for its (receiver, group key)."""
        ...


class MemoryNotificationLog:
    """NotificationLog in process memory."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], LogEntry] = {}

    def get(self, receiver: str, group_key: str) -> LogEntry | None:
        return self._entries.get((receiver, group_key))

    def put(self, entry: LogEntry) -> None:
        self._entries[(entry.receiver, entry.group_key)] = entry


def firing_key(alert: NotifiedAlert) -> str:
    return f"{alert.fingerprint}/{alert.status}"


def needs_update(entry: LogEntry | None, firing: frozenset[str], resolved: frozenset[str],
                 *, send_resolved: bool, repeat_interval_s: float, now: float) -> bool:
    """Whether a group with these alerts must be notified again (Alertmanager's dedup).

    Nothing was sent yet: only when something fires. New or changed non-resolved alerts:
    yes. Nothing left firing: yes if the receiver was told something fired. New
    resolutions: yes for a receiver that wants them. Otherwise only once
    `repeat_interval_s` has passed, and only while some alert really fires: a group of
    flapping or no-data alerts is held until one of them changes.
    """
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    really_firing = any(key.endswith(f"/{AlertStatus.FIRING}") for key in firing)
    return really_firing and now - entry.sent_at >= repeat_interval_s
