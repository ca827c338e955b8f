"""The dispatcher: alerts in, notifications out, on Alertmanager's timers.

The rule evaluator `put`s the alerts of each cycle (firing, flapping and no-data ones every
cycle, a resolved one once). Each alert goes to the routes that `Route.match` picks, and on
each route to the *group* named by the route's id and the alert's ``group_by`` values. A
new group is flushed ``group_wait`` after it appears (at once when its alert started longer
ago than that, as after a restart), then every ``group_interval``. Each flush leaves out
muted alerts (silenced, or inhibited by a firing alert), asks the `NotificationLog`
whether the receiver must hear about the rest (`needs_update`: news, or a firing group
unchanged for ``repeat_interval``), hands a `Notification` to the sink if so, then drops
the group's resolved alerts, and the group once it is empty.

A notification carries the group's visible alerts, resolved ones included; each sender
leaves out resolved alerts when its integration has ``send_resolved: false``. A flush whose
only news is a resolution is handed over only when some integration of the receiver sends
resolved alerts; the log is updated either way. Nothing here reads a clock: every call
takes `now` (Unix seconds), so a timeline replays exactly.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from dcops.alerts.dispatchviews import AlertView, GroupView, view_alert
from dcops.alerts.inhibit import InhibitIndex, Inhibitor
from dcops.alerts.matchers import quote
from dcops.alerts.notifications import AlertStatus, Notification, NotifiedAlert
from dcops.alerts.notifylog import LogEntry, NotificationLog, firing_key, needs_update
from dcops.alerts.receivers import Receiver
from dcops.alerts.routing import Route
from dcops.core.errors import Invalid

log = logging.getLogger(__name__)


class Silencer(Protocol):
    """What the dispatcher asks about silences (`dcops.alerts.silences.Silences` is one)."""

    def silenced_by(self, labels: Mapping[str, str], now: float) -> list[str]: ...


class NoSilences:
    """A Silencer without silences."""

    def silenced_by(self, labels: Mapping[str, str], now: float) -> list[str]:
        return []


@dataclass
class AlertGroup:
    """The alerts one route gathers under one set of ``group_by`` values."""

    key: str
    route: Route
    labels: dict[str, str]
    next_flush: float
    alerts: dict[str, NotifiedAlert] = field(default_factory=dict)
    flushed: bool = False


def format_labels(labels: Mapping[str, str]) -> str:
    """A label set as Alertmanager prints it in group keys: ``{a="1", b="2"}``."""
    return "{" + ", ".join(f"{k}={quote(v)}" for k, v in sorted(labels.items())) + "}"


def notification_id(receiver: str, group_key: str, now: float) -> str:
    text = f"{receiver}\n{group_key}\n{now!r}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class Dispatcher:
    """Alert groups of one routing tree, flushed to receivers when due."""

    def __init__(self, route: Route, receivers: dict[str, Receiver], inhibitor: Inhibitor,
                 silences: Silencer, log: NotificationLog,
                 sink: Callable[[Notification], None], *, external_url: str = "") -> None:
        for each in route.walk():
            if each.receiver not in receivers:
                raise Invalid(f"route names unknown receiver {each.receiver!r}",
                              where=each.where, hint="add it under receivers")
        self.route = route
        self.receivers = receivers
        self.inhibitor = inhibitor
        self.silences = silences
        self.log = log
        self.sink = sink
        self.external_url = external_url
        self._groups: dict[str, AlertGroup] = {}

    def put(self, alerts: Iterable[NotifiedAlert], now: float) -> None:
        """Take this cycle's alerts into their groups (a newer copy replaces an older)."""
        for alert in alerts:
            for route in self.route.match(alert.labels):
                self._insert(route, alert, now)

    def _insert(self, route: Route, alert: NotifiedAlert, now: float) -> None:
        labels = route.group_labels(alert.labels)
        key = f"{route.id}:{format_labels(labels)}"
        group = self._groups.get(key)
        if group is None:
            group = AlertGroup(key, route, labels, now + route.group_wait_s)
            self._groups[key] = group
        if not group.flushed and alert.starts_at + route.group_wait_s <= now:
            group.next_flush = min(group.next_flush, now)
        group.alerts[alert.fingerprint] = alert

    def next_due(self) -> float | None:
        """When `flush_due` next has work (None while there are no groups)."""
        return min((g.next_flush for g in self._groups.values()), default=None)

    def flush_due(self, now: float) -> list[Notification]:
        """Flush every group due by `now`; the notifications handed to the sink."""
        due = sorted((g for g in self._groups.values() if g.next_flush <= now),
                     key=lambda g: (g.next_flush, g.key))
        if not due:
            return []
        index = self._inhibit_index()
        sent = [n for g in due if (n := self._flush(g, now, index)) is not None]
        for notification in sent:
            self.sink(notification)
        return sent

    def _flush(self, group: AlertGroup, now: float, index: InhibitIndex) -> Notification | None:
        visible = [a for a in _ordered(group.alerts.values())
                   if not self.silences.silenced_by(a.labels, now)
                   and not index.muted(a.labels)]
        firing = frozenset(firing_key(a) for a in visible if a.status is not AlertStatus.RESOLVED)
        resolved = frozenset(a.fingerprint for a in visible if a.status is AlertStatus.RESOLVED)
        receiver = self.receivers[group.route.receiver]
        send_resolved = any(i.send_resolved for i in receiver.integrations)
        entry = self.log.get(receiver.name, group.key)
        notification = None
        if needs_update(entry, firing, resolved, send_resolved=send_resolved,
                        repeat_interval_s=group.route.repeat_interval_s, now=now):
            if visible and (firing or send_resolved):
                notification = Notification(
                    receiver.name, group.key, dict(group.labels), tuple(visible),
                    self.external_url, now, id=notification_id(receiver.name, group.key, now))
                log.info("notify %s group %s: %d alerts", receiver.name, group.key,
                         len(visible))
            self.log.put(LogEntry(receiver.name, group.key, firing, resolved, now))
        group.flushed = True
        group.next_flush = now + group.route.group_interval_s
        for fp in [fp for fp, a in group.alerts.items() if a.status is AlertStatus.RESOLVED]:
            del group.alerts[fp]
        if not group.alerts:
            del self._groups[group.key]
        return notification

    def _inhibit_index(self) -> InhibitIndex:
        firing = {a.fingerprint: a.labels for g in self._groups.values()
                  for a in g.alerts.values() if a.status is not AlertStatus.RESOLVED}
        return self.inhibitor.index(firing.values())

    def groups(self, now: float) -> list[GroupView]:
        """Every group with its receiver and its alerts' states at `now`, by key."""
        index = self._inhibit_index()
        return [GroupView(g.key, dict(g.labels), g.route.receiver, g.route.id,
                          tuple(view_alert(a, self.silences.silenced_by(a.labels, now),
                                           index.inhibited_by(a.labels), (g.route.receiver,))
                                for a in _ordered(g.alerts.values())))
                for g in sorted(self._groups.values(), key=lambda g: g.key)]

    def alerts(self, now: float) -> list[AlertView]:
        """Each alert once, with every receiver it goes to (``GET /api/v2/alerts``)."""
        merged: dict[str, AlertView] = {}
        for group in self.groups(now):
            for view in group.alerts:
                seen = merged.get(view.fingerprint)
                receivers = seen.receivers if seen else ()
                merged[view.fingerprint] = view.with_receivers(
                    tuple(sorted({*receivers, *view.receivers})))
        return sorted(merged.values(), key=lambda v: (v.alert.starts_at, v.fingerprint))


def _ordered(alerts: Iterable[NotifiedAlert]) -> list[NotifiedAlert]:
    return sorted(alerts, key=lambda a: (sorted(a.labels.items()), a.fingerprint))
