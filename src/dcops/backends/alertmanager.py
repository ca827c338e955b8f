"""Forwarding to a real Alertmanager: ``POST /api/v2/alerts``, as Prometheus sends them.

Each alert goes with its labels, annotations, ``startsAt``, ``generatorURL`` and:

- resolved: ``endsAt`` = when it resolved, so the Alertmanager resolves it;
- firing (and dcops's flapping and nodata, marked by a ``dcops_status`` annotation as in
  the webhook body): no ``endsAt`` by default, so the Alertmanager keeps it for its
  ``resolve_timeout``; or, given `firing_ttl_s`, ``endsAt`` = now + that, as Prometheus
  sends (four evaluation intervals ahead), so the alert ends on its own if dcops stops
  sending. Either way the alert must be sent again before then to stay active.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from dcops.alerts.amcompat import am_annotations, rfc3339, selected
from dcops.alerts.notifications import AlertStatus, Notification, NotifiedAlert
from dcops.alerts.receivers import AlertmanagerConfig
from dcops.backends.notify_http import bearer, post_json
from dcops.core.clock import Clock, SystemClock

log = logging.getLogger(__name__)


def posted_alert(alert: NotifiedAlert, ends_at: float | None) -> dict[str, Any]:
    """One element of the ``/api/v2/alerts`` body (Alertmanager's ``postableAlert``)."""
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": am_annotations(alert),
        "startsAt": rfc3339(alert.starts_at),
        "generatorURL": alert.generator_url,
    }
    if ends_at is not None:
        body["endsAt"] = rfc3339(ends_at)
    return body


class AlertmanagerForwarder:
    """Sends each notification's alerts to one Alertmanager (a `Notifier`)."""

    def __init__(self, config: AlertmanagerConfig, name: str,
                 client: httpx.Client | None = None, *, clock: Clock | None = None,
                 firing_ttl_s: float | None = None) -> None:
        self.config = config
        self.name = name
        self.url = config.url.rstrip("/") + "/api/v2/alerts"
        self.http = client or httpx.Client(timeout=config.timeout_s)
        self.clock = clock or SystemClock()
        self.firing_ttl_s = firing_ttl_s
        self._headers = bearer(config.bearer_token)

    def __repr__(self) -> str:
        return f"AlertmanagerForwarder({self.name!r}, {self.url!r})"

    def _ends_at(self, alert: NotifiedAlert) -> float | None:
        if alert.status is AlertStatus.RESOLVED:
            return alert.ends_at if alert.ends_at is not None else self.clock.now()
        return None if self.firing_ttl_s is None else self.clock.now() + self.firing_ttl_s

    @property
    def send_resolved(self) -> bool:
        return self.config.send_resolved

    def send(self, notification: Notification) -> None:
        alerts = selected(notification.alerts, self.config.send_resolved)
        if not alerts:
            return
        body = [posted_alert(a, self._ends_at(a)) for a in alerts]
        post_json(self.http, self.url, body, name=self.name,
                  where=self.config.where or None, headers=self._headers)
        log.info("%s: forwarded %d alerts of %s", self.name, len(body), notification.id)

    def close(self) -> None:
        self.http.close()
