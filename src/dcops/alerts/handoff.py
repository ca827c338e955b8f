"""The hand-off from rules to notifications: the rule manager's alert changes become the
dispatcher's alerts.

Only changes travel: an alert is handed over when it starts firing, goes to nodata, starts
or stops flapping, or resolves (once), not at every evaluation. A pending alert is not
handed over. A flapping alert is handed over as `flapping`, whatever it does meanwhile,
until it is steady again; then its state at that moment is. Alerts taken from the journal
after a restart are handed over as they stand, so the dispatcher finds their groups again
and the notification log decides (usually: nothing new to say).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol
from urllib.parse import quote

from dcops.alerts.model import Alert, AlertState
from dcops.alerts.notifications import AlertStatus, NotifiedAlert
from dcops.telemetry.model import Labels


class AlertSink(Protocol):
    """Takes alerts for notification (the dispatcher)."""

    def put(self, alerts: Iterable[NotifiedAlert], now: float) -> None: ...


def status_of(alert: Alert) -> AlertStatus | None:
    """How receivers see `alert` now; None while it is only pending (or gone unseen)."""
    if alert.flapping:
        return AlertStatus.FLAPPING
    if alert.state is AlertState.FIRING:
        return AlertStatus.FIRING
    if alert.state is AlertState.NODATA:
        return AlertStatus.NODATA
    if alert.state is AlertState.INACTIVE and alert.fired_at_ms is not None:
        return AlertStatus.RESOLVED
    return None


class Handoff:
    """Turns alert changes into dispatcher alerts, each news once."""

    def __init__(self, sink: AlertSink, external_url: str = "") -> None:
        self.sink = sink
        self.external_url = external_url.rstrip("/")
        self._told: dict[Labels, AlertStatus] = {}
        """What the dispatcher last heard of each alert it has not yet heard resolve."""

    def forward(self, changes: Iterable[tuple[Alert, str]], now: float) -> int:
        """Hand over what is news in `changes`; how many alerts were handed over."""
        out: dict[Labels, NotifiedAlert] = {}
        for alert, _event in changes:
            status = status_of(alert)
            before = self._told.get(alert.labels)
            if status is None or status is AlertStatus.RESOLVED:
                if before is None:
                    continue  # never told: nothing to take back
                del self._told[alert.labels]
                out[alert.labels] = self._notified(alert, AlertStatus.RESOLVED, now)
                continue
            if status is before:
                continue
            self._told[alert.labels] = status
            out[alert.labels] = self._notified(alert, status, now)
        if out:
            self.sink.put(out.values(), now)
        return len(out)

    def _notified(self, alert: Alert, status: AlertStatus, now: float) -> NotifiedAlert:
        labels = dict(alert.labels)
        ends = None
        if status is AlertStatus.RESOLVED:
            ends = alert.resolved_at_ms / 1000 if alert.resolved_at_ms is not None else now
        url = ""
        if self.external_url:
            url = f"{self.external_url}/api/v1/alerts/history?fingerprint=" \
                  f"{quote(alert.fingerprint)}"
        return NotifiedAlert(labels, dict(alert.annotations), status,
                             alert.active_at_ms / 1000, ends, url, alert.fingerprint)
