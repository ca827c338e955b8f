"""What the HTTP receivers share: one JSON POST, its failures as dcops errors, and times.

A receiver that cannot be reached, times out, or answers 5xx, 408 or 429 raises
`Unavailable` (the outbox tries again later); any other non-2xx answer raises `Invalid`
(the receiver refused this notification and will refuse it again), with the
integration's name and the status code. The Alertmanager-compatible parts (times in
RFC 3339, fingerprints, how dcops's own statuses are shown) live here too, so the
webhook and the Alertmanager forwarder agree.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from dcops.alerts.notifications import AlertStatus, NotifiedAlert
from dcops.core.errors import Invalid, Unavailable
from dcops.core.secret import Secret

log = logging.getLogger(__name__)

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time, which Alertmanager sends as the endsAt of a firing alert."""
RETRYABLE = frozenset({408, 429})
STATUS_ANNOTATION = "dcops_status"
"""Added to a flapping or nodata alert's annotations; its Alertmanager status is firing."""

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211


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
    """Alertmanager's fingerprint of a label set (FNV-1a over sorted names and values), so a
    receiver deduplicating on it sees the same id whichever of the two sent the alert."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + b"\xff":
                h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def am_status(status: AlertStatus) -> str:
    """Alertmanager knows firing and resolved only: flapping and nodata alerts are not
    resolved, so they are firing."""
    return "resolved" if status is AlertStatus.RESOLVED else "firing"


def am_annotations(alert: NotifiedAlert) -> dict[str, str]:
    """The alert's annotations, plus ``dcops_status`` when its status is dcops's own."""
    if alert.status in (AlertStatus.FIRING, AlertStatus.RESOLVED):
        return dict(alert.annotations)
    return {**alert.annotations, STATUS_ANNOTATION: str(alert.status)}


def bearer(token: Secret | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token.reveal()}"}


def post_json(http: httpx.Client, url: str, body: Any, *, name: str, where: str,
              headers: dict[str, str] | None = None, shown_url: str | None = None) -> None:
    """POST `body` as JSON; returns on 2xx, raises `Unavailable` or `Invalid` otherwise.
    `shown_url` replaces the URL in messages when the URL itself is a secret."""
    target = shown_url or url
    try:
        response = http.post(url, json=body, headers=headers or {})
    except httpx.TransportError as exc:
        raise Unavailable(f"{name}: {target} is unreachable: {str(exc) or type(exc).__name__}",
                          where=where, hint="check that the receiver is running; the "
                          "notification will be sent again") from None
    if response.is_success:
        log.debug("%s: %s answered %d", name, target, response.status_code)
        return
    status = response.status_code
    text = response.text.strip()[:300] or response.reason_phrase
    message = f"{name}: {target} answered {status}: {text}"
    if status >= 500 or status in RETRYABLE:
        raise Unavailable(message, where=where, hint="the notification will be sent again")
    raise Invalid(message, where=where, hint="the receiver refused this notification; check "
                  "its URL and credentials (sending it again would fail again)")
