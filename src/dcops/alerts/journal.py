"""The alert journal: every alert's current state and its history, kept in the state store.

The evaluator reports each change of an alert (pending, firing, nodata, resolved, flapping,
steady); the delivery outbox reports each notification (notified, notify_failed). The
journal appends them to the history, which the API and CLI read (who or what did what to
which alert, when), and keeps the alerts that are pending, firing or nodata so a restarted
control plane carries on with them: `for` keeps its progress and a firing alert stays
firing, so it is not announced again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dcops.alerts.model import Alert, AlertState
from dcops.alerts.notifications import fingerprint
from dcops.telemetry.model import Labels

log = logging.getLogger(__name__)

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
    fingerprint: str = field(default="", compare=False)
    """Alertmanager's fingerprint of `labels` (worked out when left empty)."""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.labels))


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert that is pending, firing or nodata, as the journal keeps it across restarts."""

    group: str
    """``file:group`` key of the rule's group, as the rule manager names groups."""
    rule: str
    alert: Alert


Change = tuple[Alert, str, float]
"""An alert, what happened to it (an `EVENTS` name) and its value then."""
AlertKey = tuple[str, str, Labels]
"""(group, rule, labels): one alert among all groups."""
Records = tuple[list[AlertEvent], list[StoredAlert], list[AlertKey]]
"""What one `record` call writes: events, alerts now live, alerts now gone."""

UNJOURNALED = frozenset({"pending", "cleared"})
"""Changes the journal does not keep: an alert that is only pending (its start is in
ALERTS_FOR_STATE, as in Prometheus); they come and go by the thousand on a busy fleet."""


class AlertJournal(Protocol):
    """Where alert state and history are kept."""

    def record(self, events: list[AlertEvent], live: list[StoredAlert],
               gone: list[AlertKey]) -> None:
        """Append `events`; keep `live` as they now are; forget `gone` (group, rule, labels)."""
        ...

    def changed(self, group: str, actor: str, at_ms: int, changes: list[Change]) -> None:
        """Record what the evaluator of `group` reports (see `records_of`)."""
        ...

    def live(self) -> list[StoredAlert]:
        """Every alert kept as pending, firing or nodata."""
        ...

    def history(self, *, alertname: str | None = None, fingerprint: str | None = None,
                since_ms: int | None = None, limit: int = 100) -> list[AlertEvent]:
        """Events, newest first."""
        ...


def records_of(group: str, actor: str, at_ms: int, changes: list[Change]) -> Records:
    """The events, live alerts and gone alerts that `changes` make, from firing on: an
    alert firing or nodata now is kept live, any other is forgotten."""
    events: list[AlertEvent] = []
    live: list[StoredAlert] = []
    gone: list[AlertKey] = []
    for alert, event, value in changes:
        if event in UNJOURNALED or (alert.fired_at_ms is None and not alert.flapping):
            continue
        events.append(AlertEvent(at_ms, alert.rule, dict(alert.labels), event, actor, value,
                                 fingerprint=alert.fingerprint))
        if alert.state in (AlertState.FIRING, AlertState.NODATA):
            live.append(StoredAlert(group, alert.rule, alert))
        else:
            gone.append((group, alert.rule, alert.labels))
    return events, live, gone


class MemoryAlertJournal:
    """AlertJournal in process memory."""

    def __init__(self) -> None:
        self._events: list[AlertEvent] = []
        self._live: dict[AlertKey, StoredAlert] = {}
        self._lock = threading.Lock()

    def record(self, events: list[AlertEvent], live: list[StoredAlert],
               gone: list[AlertKey]) -> None:
        with self._lock:
            for event in events:
                self._events.append(_numbered(event, len(self._events) + 1))
            for stored in live:
                self._live[(stored.group, stored.rule, stored.alert.labels)] = _copy(stored)
            for key in gone:
                self._live.pop(key, None)

    def changed(self, group: str, actor: str, at_ms: int, changes: list[Change]) -> None:
        self.record(*records_of(group, actor, at_ms, changes))

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
                      event.actor, event.value, dict(event.details), event_id,
                      event.fingerprint)


def _copy(stored: StoredAlert) -> StoredAlert:
    a = stored.alert
    alert = Alert(a.rule, a.labels, dict(a.annotations), a.state, a.value, a.active_at_ms,
                  a.fired_at_ms, a.resolved_at_ms, a.keep_firing_since_ms, a.flapping)
    return StoredAlert(stored.group, stored.rule, alert)


class BufferedJournal:
    """An AlertJournal whose writes happen in a thread of their own, so rule evaluation
    never waits on the state database (a cycle in which 30,000 alerts fire writes 30,000
    rows). Reads (`live`, `history`) and `close` first wait for what is buffered. A crash
    loses at most the changes of the last moments; what receivers were told is in the
    notification log, written at once, so that still does not re-notify.

    With `on_kick`, the writer waits for `kick()` (the pipeline kicks when a round of rule
    evaluation is over), so its work does not compete with the evaluation for the
    interpreter."""

    def __init__(self, inner: AlertJournal, *, on_kick: bool = False) -> None:
        self.inner = inner
        self._on_kick = on_kick
        self._kicked = False
        self._pending: list[Callable[[], Records]] = []
        """What to write, each made only when written (in the writer's thread)."""
        self._lock = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="alert-journal", daemon=True)
        self._thread.start()

    def record(self, events: list[AlertEvent], live: list[StoredAlert],
               gone: list[AlertKey]) -> None:
        # no copies: the alerts are read when written, a moment later, and a state newer
        # than the one recorded is the truer one (a later record of the same alert wins)
        made = (list(events), list(live), list(gone))
        self._put(lambda: made)

    def changed(self, group: str, actor: str, at_ms: int, changes: list[Change]) -> None:
        raw = list(changes)  # turned into rows by the writer, out of the rules' way
        self._put(lambda: records_of(group, actor, at_ms, raw))

    def _put(self, item: Callable[[], Records]) -> None:
        with self._lock:
            self._pending.append(item)
            self._lock.notify_all()

    def kick(self) -> None:
        """Write what is buffered now (when waiting for kicks)."""
        with self._lock:
            self._kicked = True
            self._lock.notify_all()

    def flush(self) -> None:
        """Wait until everything recorded so far is written."""
        self.kick()
        with self._lock:
            self._lock.wait_for(lambda: not self._pending and not self._busy)

    def live(self) -> list[StoredAlert]:
        self.flush()
        return self.inner.live()

    def history(self, *, alertname: str | None = None, fingerprint: str | None = None,
                since_ms: int | None = None, limit: int = 100) -> list[AlertEvent]:
        self.flush()
        return self.inner.history(alertname=alertname, fingerprint=fingerprint,
                                  since_ms=since_ms, limit=limit)

    def close(self) -> None:
        """Write what is buffered and stop the writer."""
        self.flush()
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or (
                    bool(self._pending) and (self._kicked or not self._on_kick)))
                if not self._pending:
                    return
                batch, self._pending, self._busy = self._pending, [], True
                self._kicked = False
            try:
                made = [item() for item in batch]
                events = [e for item in made for e in item[0]]
                final: dict[AlertKey, StoredAlert | None] = {}
                for _, item_live, item_gone in made:  # the last word on each alert wins
                    final.update(((s.group, s.rule, s.alert.labels), s) for s in item_live)
                    final.update((key, None) for key in item_gone)
                self.inner.record(events, [s for s in final.values() if s is not None],
                                  [k for k, s in final.items() if s is None])
            except Exception:
                log.exception("alert journal: %d changes not written", len(batch))
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()
