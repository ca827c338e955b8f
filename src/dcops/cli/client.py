"""A small API client for CLI commands: finds the server and token, renders errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from dcops.core.errors import DcopsError, Unavailable
from dcops.settings import DEFAULT_PORT, load_settings
from dcops.wiring import ADMIN_TOKEN_FILE


class ApiError(DcopsError):
    """An error answer from the server, carried to the CLI as it was given."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("message", f"HTTP {status}")), where=body.get("where"),
                         hint=body.get("hint"))
        self.status = status


def resolve_token(token: str | None, token_file: Path | None) -> str | None:
    if token:
        return token
    if os.environ.get("DCOPS_TOKEN"):
        return os.environ["DCOPS_TOKEN"]
    path = token_file or load_settings().storage.resolved_data_dir() / ADMIN_TOKEN_FILE
    try:
        return path.read_text().strip()
    except OSError:
        return None


class Client:
    """Calls the dcops REST API with a bearer token."""

    def __init__(self, server: str | None = None, token: str | None = None,
                 token_file: Path | None = None) -> None:
        self.base = (server or os.environ.get("DCOPS_SERVER")
                     or f"http://127.0.0.1:{DEFAULT_PORT}").rstrip("/")
        secret = resolve_token(token, token_file)
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=30.0)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get_text(self, path: str, **kwargs: Any) -> str:
        """A GET whose answer is plain text (a job's log)."""
        return self._send("GET", path, **kwargs).text

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach dcops at {self.base}: {exc}",
                              hint="is `dcops up` running? set --server or DCOPS_SERVER"
                              ) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"message": response.text[:200] or f"HTTP {response.status_code}"}
            raise ApiError(response.status_code, body if isinstance(body, dict) else {})
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)
