"""What the HTTP receivers share: one JSON POST and its failures as dcops errors.

A receiver that cannot be reached, times out, or answers 5xx, 408 or 429 raises
`Unavailable` (the outbox tries again later); any other non-2xx answer raises `Invalid`
(the receiver refused this notification and will refuse it again), with the
integration's name and the status code.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from dcops.core.errors import Invalid, Unavailable
from dcops.core.secret import Secret

log = logging.getLogger(__name__)

RETRYABLE = frozenset({408, 429})


def bearer(token: Secret | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token.reveal()}"}


def post_json(http: httpx.Client, url: str, body: Any, *, name: str, where: str | None,
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
