"""What the API shows of the dispatcher: groups and alerts, each alert with why it is muted.

The shapes follow Alertmanager's ``/api/v2/alerts`` and ``/api/v2/alerts/groups``: an alert
is ``active`` or ``suppressed``, and a suppressed one lists the silences
(``silencedBy``) and the firing alerts (``inhibitedBy``, by fingerprint) that mute it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from dcops.alerts.notifications import NotifiedAlert


class SuppressionState(StrEnum):
    """Whether an alert reaches its receivers now."""

    ACTIVE = "active"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert in the dispatcher and whether it is muted."""

    alert: NotifiedAlert
    state: SuppressionState
    silenced_by: tuple[str, ...]
    inhibited_by: tuple[str, ...]
    receivers: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        return self.alert.fingerprint

    def with_receivers(self, receivers: tuple[str, ...]) -> AlertView:
        return replace(self, receivers=receivers)

    def to_dict(self) -> dict[str, Any]:
        """Alertmanager's API shape (times as Unix seconds)."""
        return {
            "labels": dict(self.alert.labels), "annotations": dict(self.alert.annotations),
            "fingerprint": self.fingerprint, "startsAt": self.alert.starts_at,
            "endsAt": self.alert.ends_at, "generatorURL": self.alert.generator_url,
            "receivers": [{"name": r} for r in self.receivers],
            "status": {"state": str(self.state), "silencedBy": list(self.silenced_by),
                       "inhibitedBy": list(self.inhibited_by), "mutedBy": []},
        }


@dataclass(frozen=True, slots=True)
class GroupView:
    """One alert group: its key, labels, receiver, route and alerts."""

    key: str
    labels: dict[str, str]
    receiver: str
    route_id: str
    alerts: tuple[AlertView, ...]


def view_alert(alert: NotifiedAlert, silenced_by: list[str], inhibited_by: list[str],
               receivers: tuple[str, ...]) -> AlertView:
    muted = bool(silenced_by or inhibited_by)
    state = SuppressionState.SUPPRESSED if muted else SuppressionState.ACTIVE
    return AlertView(alert, state, tuple(silenced_by), tuple(inhibited_by), receivers)
