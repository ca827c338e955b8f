"""Webhook receivers: Alertmanager's webhook JSON (version 4), so existing integrations work.

The body has exactly Alertmanager's fields (``version``, ``groupKey``, ``truncatedAlerts``,
``status``, ``receiver``, ``groupLabels``, ``commonLabels``, ``commonAnnotations``,
``externalURL``, ``alerts``), each alert with ``status``, ``labels``, ``annotations``,
``startsAt``, ``endsAt`` (Go's zero time while it fires), ``generatorURL`` and
``fingerprint`` (Alertmanager's own FNV-1a fingerprint of the labels).

dcops's extra statuses: a *flapping* or *nodata* alert is not resolved, so its ``status``
(and the group's) is ``"firing"``, as an Alertmanager consumer expects, and its
annotations gain ``dcops_status: flapping`` (or ``nodata``). Labels stay untouched, because
receivers group and deduplicate on them; a consumer that knows dcops reads the annotation,
one that does not sees a firing alert.

``send_resolved: false`` drops resolved alerts (nothing is sent when none are left);
``max_alerts`` keeps the first N and counts the rest in ``truncatedAlerts``, as
Alertmanager does (common labels are those of the alerts sent).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from dcops.alerts.amcompat import am_annotations, am_fingerprint, am_status, rfc3339, selected
from dcops.alerts.notifications import AlertStatus, Notification, NotifiedAlert
from dcops.alerts.receivers import WebhookConfig
from dcops.backends.notify_http import bearer, post_json

log = logging.getLogger(__name__)


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def alert_json(alert: NotifiedAlert) -> dict[str, Any]:
    resolved = alert.status is AlertStatus.RESOLVED
    return {
        "status": am_status(alert.status),
        "labels": dict(alert.labels),
        "annotations": am_annotations(alert),
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": rfc3339(alert.ends_at if resolved else None),
        "generatorURL": alert.generator_url,
        "fingerprint": am_fingerprint(alert.labels),
    }


def webhook_body(notification: Notification, alerts: list[NotifiedAlert],
                 truncated: int = 0) -> dict[str, Any]:
    """Alertmanager's webhook message for `alerts` of `notification`."""
    items = [alert_json(a) for a in alerts]
    firing = any(item["status"] == "firing" for item in items)
    return {
        "receiver": notification.receiver,
        "status": "firing" if firing else "resolved",
        "alerts": items,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": _common([item["labels"] for item in items]),
        "commonAnnotations": _common([item["annotations"] for item in items]),
        "externalURL": notification.external_url,
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": notification.truncated_alerts + truncated,
    }


class WebhookNotifier:
    """POSTs each notification to one webhook URL (a `Notifier`)."""

    def __init__(self, config: WebhookConfig, name: str,
                 client: httpx.Client | None = None) -> None:
        self.config = config
        self.name = name
        self.http = client or httpx.Client(timeout=config.timeout_s)
        self._headers = bearer(config.bearer_token)

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.name!r}, {self.config.url!r})"

    @property
    def send_resolved(self) -> bool:
        return self.config.send_resolved

    def send(self, notification: Notification) -> None:
        alerts = selected(notification.alerts, self.config.send_resolved)
        if not alerts:
            log.debug("%s: nothing to send for %s (all resolved)", self.name, notification.id)
            return
        limit = self.config.max_alerts
        truncated = max(0, len(alerts) - limit) if limit > 0 else 0
        body = webhook_body(notification, alerts[:limit] if limit > 0 else alerts, truncated)
        post_json(self.http, self.config.url, body, name=self.name,
                  where=self.config.where or None, headers=self._headers)
        log.info("%s: sent %s (%d alerts)", self.name, notification.id, len(body["alerts"]))

    def close(self) -> None:
        self.http.close()
