"""Remediation's notifications as alerts in the alerting pipeline, so they take the same
routes, groups, silences and receivers as rule alerts (a page goes where pages go).

Each notification is a firing alert named ``DcopsRemediation`` (or the ``alertname`` in
its labels) with a ``severity`` label and a ``summary`` annotation; like an alert sent
to Alertmanager, it resolves `hold_s` after it was last sent unless sent again."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from dcops.alerts.notifications import AlertStatus, NotifiedAlert
from dcops.core.clock import Clock

Sink = Callable[[Sequence[NotifiedAlert], float], None]


class AlertNotifier:
    """A `Notifier` over an alert sink (`Pipeline.put`)."""

    def __init__(self, sink: Sink, clock: Clock, *, hold_s: float = 300.0) -> None:
        self.sink = sink
        self.clock = clock
        self.hold_s = hold_s
        self._open: dict[str, tuple[NotifiedAlert, float]] = {}
        self._lock = threading.Lock()

    def notify(self, severity: str, summary: str, labels: Mapping[str, str]) -> None:
        now = self.clock.now()
        names = {"alertname": "DcopsRemediation", **labels, "severity": severity,
                 "source": "remediation"}
        alert = NotifiedAlert(names, {"summary": summary}, AlertStatus.FIRING, now)
        with self._lock:
            previous = self._open.get(alert.fingerprint)
            if previous is not None:  # keep when it started
                alert = NotifiedAlert(names, {"summary": summary}, AlertStatus.FIRING,
                                      previous[0].starts_at)
            self._open[alert.fingerprint] = (alert, now)
        self.sink([alert], now)

    def tick(self) -> None:
        """Resolve the alerts not sent again within `hold_s`."""
        now = self.clock.now()
        with self._lock:
            expired = [a for a, sent in self._open.values() if now - sent >= self.hold_s]
            for alert in expired:
                del self._open[alert.fingerprint]
        if expired:
            self.sink([NotifiedAlert(a.labels, a.annotations, AlertStatus.RESOLVED,
                                     a.starts_at, now) for a in expired], now)
