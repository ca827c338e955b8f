"""The agent's HTTP client: POSTs one push to ``{server_url}/api/v1/push`` and says what happened.

The server's answer decides the push's fate (see `PushOutcome`): delivered pushes leave the
spool, rejected ones are dropped so a bad push cannot block the queue, and everything else
stays spooled to be retried. The bearer token is read from a file and re-read after the
server refuses it, so fixing the file on disk is enough to resume.
"""

from __future__ import annotations

import gzip
import json
import logging
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from dcops.core.secret import Secret

log = logging.getLogger(__name__)

PUSH_PATH = "/api/v1/push"
GZIP_MIN_BYTES = 8 * 1024
"""Pushes at least this large are gzip-compressed (typical host pushes shrink ~10x)."""


class PushOutcome(StrEnum):
    """What became of one push attempt."""

    DELIVERED = "delivered"
    """200, or 409 for a seq the server already has: remove from the spool."""
    REJECTED = "rejected"
    """A 4xx saying this push is bad: drop it, keep going."""
    TOO_LARGE = "too_large"
    """413: split the push and try again."""
    UNAUTHORIZED = "unauthorized"
    """401/403: keep spooling until the token is fixed."""
    RETRY = "retry"
    """5xx or no connection: keep spooling, retry with backoff."""


def encode_push(body: dict[str, Any]) -> tuple[bytes, bool]:
    """JSON bytes of a push, gzip-compressed when large; returns (payload, gzipped)."""
    raw = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    if len(raw) < GZIP_MIN_BYTES:
        return raw, False
    return gzip.compress(raw, compresslevel=5, mtime=0), True


def decode_push(payload: bytes, gzipped: bool) -> dict[str, Any]:
    """The push body back from its stored bytes."""
    data: dict[str, Any] = json.loads(gzip.decompress(payload) if gzipped else payload)
    return data


def read_token(path: Path | None) -> Secret | None:
    """The bearer token in `path` (surrounding whitespace stripped); None without a file."""
    if path is None:
        return None
    try:
        text = path.expanduser().read_text().strip()
    except OSError as exc:
        log.error("cannot read agent token file %s: %s; pushing without a token", path,
                  exc.strerror)
        return None
    return Secret(text) if text else None


class Pusher:
    """Delivers pushes to one dcops server over a kept-alive HTTP connection."""

    def __init__(self, server_url: str, token_file: Path | None, *, timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = server_url.rstrip("/") + PUSH_PATH
        self.token_file = token_file
        self._token = read_token(token_file)
        self._client = httpx.Client(timeout=timeout_s, transport=transport,
                                    headers={"Content-Type": "application/json",
                                             "User-Agent": "dcops-agent"})
        self._auth_failed = False
        self._down = False

    def close(self) -> None:
        self._client.close()

    def send(self, payload: bytes, *, gzipped: bool, seq: int) -> PushOutcome:
        """POST one push and classify the server's answer."""
        headers = {"Content-Encoding": "gzip"} if gzipped else {}
        if self._auth_failed:
            self._token = read_token(self.token_file)  # perhaps fixed since
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        try:
            response = self._client.post(self.url, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            if not self._down:
                log.warning("server %s unreachable (%s); spooling until it is back",
                            self.url, type(exc).__name__)
            self._down = True
            return PushOutcome.RETRY
        return self._outcome(response, seq)

    def _outcome(self, response: httpx.Response, seq: int) -> PushOutcome:
        status = response.status_code
        if status in (401, 403):
            if not self._auth_failed:
                log.error("server %s refused the agent token (HTTP %d); check token_file %s; "
                          "spooling until it is accepted", self.url, status, self.token_file)
            self._auth_failed = True
            return PushOutcome.UNAUTHORIZED
        if status >= 500:
            if not self._down:
                log.warning("server %s answered HTTP %d; spooling and retrying", self.url,
                            status)
            self._down = True
            return PushOutcome.RETRY
        if self._down or self._auth_failed:
            log.info("server %s accepting pushes again", self.url)
        self._down = self._auth_failed = False
        if status == 413:
            return PushOutcome.TOO_LARGE
        if 200 <= status < 300 or status == 409:
            return PushOutcome.DELIVERED
        if 400 <= status < 500:
            log.error("server rejected push seq %d with HTTP %d: %s; dropping it", seq, status,
                      response.text[:300])
            return PushOutcome.REJECTED
        log.warning("server answered push seq %d with unexpected HTTP %d; retrying", seq,
                    status)
        return PushOutcome.RETRY
