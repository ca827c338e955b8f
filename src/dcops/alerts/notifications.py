"""Notifications: what the dispatcher hands to receivers, in Alertmanager's vocabulary.

An alert reaches a receiver as part of a *group* (the alerts a route gathers by its
``group_by`` labels). Each time a group is flushed, the dispatcher builds one
`Notification` per receiver; a `Notifier` delivers it (webhook, Slack, e-mail, a real
Alertmanager), and the delivery outbox retries it with backoff until it is delivered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from dcops.core.errors import Invalid


class AlertStatus(StrEnum):
    """How an alert stands when a notification is built (Alertmanager's ``status``)."""

    FIRING = "firing"
    RESOLVED = "resolved"
    FLAPPING = "flapping"
    """dcops extension: the alert changes state too often; held in this one notification
    until it settles (Nagios-style flap detection)."""
    NODATA = "nodata"
    """dcops extension: the series behind a firing alert vanished; not resolved."""


_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (FNV-1a over the sorted names and values,
    16 hex digits), so dcops's alert history, its webhooks and a real Alertmanager all
    name an alert by the same id."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + b"\xff":
                h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


@dataclass(frozen=True, slots=True)
class NotifiedAlert:
    """One alert as a receiver sees it."""

    labels: dict[str, str]
    annotations: dict[str, str]
    status: AlertStatus
    starts_at: float
    """Unix seconds: when the alert became active."""
    ends_at: float | None = None
    """Unix seconds: when it resolved; None while it fires."""
    generator_url: str = ""
    fingerprint: str = field(default="", compare=False)
    """`fingerprint(labels)`, worked out once when left empty."""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint(self.labels))


@dataclass(frozen=True, slots=True)
class Notification:
    """One flush of one alert group to one receiver."""

    receiver: str
    group_key: str
    """The route's id and the group's label values: stable across flushes."""
    group_labels: dict[str, str]
    alerts: tuple[NotifiedAlert, ...]
    external_url: str = ""
    created_at: float = 0.0
    """Unix seconds: when the dispatcher built it."""
    truncated_alerts: int = 0
    id: str = field(default="")
    """Unique per notification (group key and flush time); the outbox's key."""

    @property
    def status(self) -> AlertStatus:
        """firing if any alert fires, else the first other status (resolved when all are)."""
        states = {a.status for a in self.alerts}
        for status in (AlertStatus.FIRING, AlertStatus.FLAPPING, AlertStatus.NODATA):
            if status in states:
                return status
        return AlertStatus.RESOLVED

    @property
    def common_labels(self) -> dict[str, str]:
        return _common([a.labels for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common([a.annotations for a in self.alerts])


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


class Notifier(Protocol):
    """Sends notifications to one receiver integration (a webhook URL, an SMTP server...).

    `send` raises `dcops.core.errors.Unavailable` when the receiver could not be reached or
    answered with a retryable error (the outbox tries again later), and `Invalid` when the
    receiver rejected the notification for good (4xx other than 408/429).
    """

    name: str
    """``receiver/integration[index]``, for logs and the outbox."""

    @property
    def send_resolved(self) -> bool:
        """Whether it tells of resolved alerts (it leaves them out of its messages if not)."""
        ...

    def send(self, notification: Notification) -> None: ...


def to_json(notification: Notification) -> str:
    """The notification as one JSON object (what an SQL outbox stores)."""
    return json.dumps(_notification_dict(notification), sort_keys=True, separators=(",", ":"))


def from_json(text: str) -> Notification:
    """The notification `to_json` wrote; `Invalid` when the text is not one."""
    try:
        data = json.loads(text)
        return Notification(
            receiver=str(data["receiver"]), group_key=str(data["group_key"]),
            group_labels=_strings(data["group_labels"]),
            alerts=tuple(_alert(a) for a in data["alerts"]),
            external_url=str(data["external_url"]), created_at=float(data["created_at"]),
            truncated_alerts=int(data["truncated_alerts"]), id=str(data["id"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Invalid(f"not a stored notification: {exc!r}", where="outbox",
                      hint="the row was not written by dcops.alerts.notifications.to_json"
                      ) from None


def _notification_dict(n: Notification) -> dict[str, Any]:
    return {
        "receiver": n.receiver, "group_key": n.group_key, "group_labels": n.group_labels,
        "external_url": n.external_url, "created_at": n.created_at,
        "truncated_alerts": n.truncated_alerts, "id": n.id,
        "alerts": [{"labels": a.labels, "annotations": a.annotations, "status": str(a.status),
                    "starts_at": a.starts_at, "ends_at": a.ends_at,
                    "generator_url": a.generator_url} for a in n.alerts],
    }


def _alert(data: dict[str, Any]) -> NotifiedAlert:
    ends_at = data["ends_at"]
    return NotifiedAlert(
        labels=_strings(data["labels"]), annotations=_strings(data["annotations"]),
        status=AlertStatus(data["status"]), starts_at=float(data["starts_at"]),
        ends_at=None if ends_at is None else float(ends_at),
        generator_url=str(data["generator_url"]))


def _strings(data: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in data.items()}
