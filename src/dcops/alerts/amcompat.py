"""Alertmanager's view of dcops alerts: its times, fingerprints and two statuses.

Every integration shows alerts the way Alertmanager would, so existing consumers work:
times in Go's RFC 3339, Alertmanager's own label fingerprint, and only ``firing`` and
``resolved``. dcops's *flapping* and *nodata* alerts are not resolved, so they are
``firing``, with their own status in a ``dcops_status`` annotation (labels stay as they
are: receivers group and deduplicate on them).
"""

from __future__ import annotations

from datetime import UTC, datetime

from dcops.alerts.matchers import Matcher, MatchOp
from dcops.alerts.notifications import AlertStatus, NotifiedAlert, fingerprint

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time, which Alertmanager sends as the endsAt of a firing alert."""
STATUS_ANNOTATION = "dcops_status"
"""Added to a flapping or nodata alert's annotations; its Alertmanager status is firing."""



def rfc3339(t: float | None) -> str:
    """Unix seconds as Go's RFC 3339 (nanosecond form, trailing zeros cut), in UTC."""
    if t is None:
        return ZERO_TIME
    whole, micros = divmod(round(t * 1_000_000), 1_000_000)
    text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if micros:
        text += "." + f"{micros:06d}".rstrip("0")
    return text + "Z"


def am_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: dcops uses the same one everywhere."""
    return fingerprint(labels)


def am_status(status: AlertStatus) -> str:
    """Alertmanager knows firing and resolved only: flapping and nodata alerts are not
    resolved, so they are firing."""
    return "resolved" if status is AlertStatus.RESOLVED else "firing"


def am_annotations(alert: NotifiedAlert) -> dict[str, str]:
    """The alert's annotations, plus ``dcops_status`` when its status is dcops's own."""
    if alert.status in (AlertStatus.FIRING, AlertStatus.RESOLVED):
        return dict(alert.annotations)
    return {**alert.annotations, STATUS_ANNOTATION: str(alert.status)}


def selected(alerts: tuple[NotifiedAlert, ...], send_resolved: bool) -> list[NotifiedAlert]:
    """The alerts an integration sends: resolved ones only when it wants them."""
    return [a for a in alerts if send_resolved or a.status is not AlertStatus.RESOLVED]


def am_matcher(matcher: Matcher) -> dict[str, object]:
    """A matcher as Alertmanager's v2 API writes it (``isRegex``, ``isEqual``)."""
    return {"name": matcher.name, "value": matcher.value,
            "isRegex": matcher.op in (MatchOp.RE, MatchOp.NRE),
            "isEqual": matcher.op in (MatchOp.EQ, MatchOp.RE)}


def from_am_matcher(name: str, value: str, is_regex: bool, is_equal: bool,
                    where: str = "") -> Matcher:
    """The matcher an Alertmanager v2 API matcher stands for."""
    if is_regex:
        op = MatchOp.RE if is_equal else MatchOp.NRE
    else:
        op = MatchOp.EQ if is_equal else MatchOp.NE
    return Matcher(name, op, value, where=where)
