"""The alert journal: every alert's current state and its history, kept in the state store.

The evaluator reports each change of an alert (pending, firing, nodata, resolved, flapping,
steady); the delivery outbox reports each notification (notified, notify_failed). The
journal appends them to the history, which the API and CLI read (who or what did what to
which alert, when), and keeps the alerts that are pending, firing or nodata so a restarted
control plane carries on with them: `for` keeps its progress and a firing alert stays
firing, so it is not announced again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from dcops.alerts.model import Alert
from dcops.alerts.notifications import fingerprint
from dcops.telemetry.model import Labels

EVENTS = ("pending", "firing", "nodata", "resolved", "cleared", "flapping", "steady",
          "notified", "notify_failed")
"""What an `AlertEvent` can say happened."""


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One thing that happened to one alert: a state change, or a notification about it."""

    at_ms: int
    alertname: str
    labels: dict[str, str]
    event: str
    """One of `EVENTS` ("cleared": it went away while pending, before it fired)."""
    actor: str
    """Who or what did it: ``rules/<group>`` for the evaluator, ``receiver/<name>`` for a
    notification."""
    value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert that is pending, firing or nodata, as the journal keeps it across restarts."""

    group: str
    """``file:group`` key of the rule's group, as the rule manager names groups."""
    rule: str
    alert: Alert


class AlertJournal(Protocol):
    """Where alert state and history are kept."""

    def record(self, events: list[AlertEvent], live: list[StoredAlert],
               gone: list[tuple[str, str, Labels]]) -> None:
        """Append `events`; keep `live` as they now are; forget `gone` (group, rule, labels)."""
        ...

    def live(self) -> list[StoredAlert]:
        """Every alert kept as pending, firing or nodata."""
        ...

    def history(self, *, alertname: str | None = None, fingerprint: str | None = None,
                since_ms: int | None = None, limit: int = 100) -> list[AlertEvent]:
        """Events, newest first."""
        ...


class MemoryAlertJournal:
    """AlertJournal in process memory."""

    def __init__(self) -> None:
        self._events: list[AlertEvent] = []
        self._live: dict[tuple[str, str, Labels], StoredAlert] = {}
        self._lock = threading.Lock()

    def record(self, events: list[AlertEvent], live: list[StoredAlert],
               gone: list[tuple[str, str, Labels]]) -> None:
        with self._lock:
            for event in events:
                self._events.append(_numbered(event, len(self._events) + 1))
            for stored in live:
                self._live[(stored.group, stored.rule, stored.alert.labels)] = _copy(stored)
            for key in gone:
                self._live.pop(key, None)

    def live(self) -> list[StoredAlert]:
        with self._lock:
            return [_copy(s) for s in self._live.values()]

    def history(self, *, alertname: str | None = None, fingerprint: str | None = None,
                since_ms: int | None = None, limit: int = 100) -> list[AlertEvent]:
        with self._lock:
            chosen = [e for e in self._events if matches(e, alertname, fingerprint, since_ms)]
        return list(reversed(chosen))[:max(limit, 0)]


def matches(event: AlertEvent, alertname: str | None, fingerprint: str | None,
            since_ms: int | None) -> bool:
    """Whether `event` passes a history query's filters."""
    return ((alertname is None or event.alertname == alertname)
            and (fingerprint is None or event.fingerprint == fingerprint)
            and (since_ms is None or event.at_ms >= since_ms))


def _numbered(event: AlertEvent, event_id: int) -> AlertEvent:
    return AlertEvent(event.at_ms, event.alertname, dict(event.labels), event.event,
                      event.actor, event.value, dict(event.details), event_id)


def _copy(stored: StoredAlert) -> StoredAlert:
    a = stored.alert
    alert = Alert(a.rule, a.labels, dict(a.annotations), a.state, a.value, a.active_at_ms,
                  a.fired_at_ms, a.resolved_at_ms, a.keep_firing_since_ms, a.flapping)
    return StoredAlert(stored.group, stored.rule, alert)
