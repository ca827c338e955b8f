"""HTTP to a Prometheus-compatible store: remote_write 1.0 out, the query API's JSON in.

`PrometheusClient` is the one place that talks to Prometheus, Thanos, Mimir or
VictoriaMetrics: it sends snappy-compressed WriteRequests, calls ``/api/v1/...`` and turns
every failure into a dcops error (a refused write is `Invalid`, an unreachable or failing
store is `Unavailable`, a refused query is `QueryError` with Prometheus's own wording).
`PrometheusQuerier` passes PromQL straight through and parses the answer into a `Result`
whose ``to_prometheus_json()`` is the store's answer again, so Grafana cannot tell.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
import numpy.typing as npt

from dcops.core.errors import DcopsError, Invalid, Unavailable
from dcops.core.secret import Secret
from dcops.query.result import QueryError, Result, ResultSeries

log = logging.getLogger(__name__)

WRITE_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "dcops",
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
REFUSED_WRITES = frozenset({400, 409, 413, 422})
"""Statuses that say the samples themselves are wrong (out of order, duplicate, too big):
retrying cannot help. Anything else (401, 404, 429, 5xx) is the store's or dcops's setup
failing, so the sender should keep the samples and retry."""

Params = Mapping[str, str] | Sequence[tuple[str, str]]


def seconds(ms: int) -> str:
    """A timestamp for the query API: unix seconds with milliseconds, as Prometheus reads it."""
    return f"{ms / 1000:.3f}"


class _BearerFile(httpx.Auth):
    """``Authorization: Bearer <token>``, the token read from a file on every request."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def token(self) -> Secret:
        return Secret(self.path.read_text().strip())

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token().reveal()}"
        yield request


class PrometheusClient:
    """One remote store: `write` for remote_write, `api` for ``/api/v1/...`` (returns ``data``)."""

    def __init__(self, url: str, *, write_url: str | None = None, timeout_s: float = 30.0,
                 headers: Mapping[str, str] | None = None, token_file: Path | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.write_url = write_url or f"{self.url}/api/v1/write"
        auth = None
        if token_file is not None:
            auth = _BearerFile(token_file.expanduser())
            try:
                auth.token()
            except OSError as exc:
                raise Invalid(f"cannot read the bearer token: {exc.strerror}",
                              where=str(token_file)) from None
        self.http = httpx.Client(timeout=timeout_s, headers=dict(headers or {}), auth=auth,
                                 transport=transport)

    def __repr__(self) -> str:
        return f"PrometheusClient({self.url!r})"

    def write(self, body: bytes) -> None:
        """POST one remote_write body; returns once the store has acknowledged it (2xx)."""
        response = self._send("POST", self.write_url, content=body, headers=WRITE_HEADERS)
        if response.is_success:
            return
        message = response.text.strip()[:500] or response.reason_phrase
        if response.status_code in REFUSED_WRITES:
            raise Invalid(message, where=f"remote_write to {self.write_url}",
                          hint="the remote store refused these samples; sending them again "
                               "will fail again")
        raise Unavailable(f"{self.write_url} answered {response.status_code}: {message}",
                          where="storage.prometheus.write_url",
                          hint="check the URL, the credentials and that the store accepts "
                               "remote_write; retry later")

    def api(self, path: str, params: Params = (), *, post: bool = False,
            timeout_s: float | None = None) -> Any:
        """Call ``{url}{path}``; the ``data`` of a success, or the error as a dcops error."""
        extra: dict[str, Any] = {} if timeout_s is None else {"timeout": timeout_s}
        pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
        if post:
            response = self._send("POST", self.url + path, content=urlencode(pairs),
                                  headers=FORM, **extra)
        else:
            response = self._send("GET", self.url + path, params=pairs, **extra)
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "success" and response.is_success:
            return body.get("data")
        raise self._api_error(response, body)

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            elsewhere = not url.startswith(f"{self.url}/")  # a write_url elsewhere (Mimir, Thanos)
            raise Unavailable(f"Prometheus at {url if elsewhere else self.url} is unreachable: "
                              f"{str(exc) or type(exc).__name__}",
                              where=f"storage.prometheus.{'write_url' if elsewhere else 'url'}",
                              hint="check that the store is running; retry later") from None
        except OSError as exc:  # the token file went away
            raise Unavailable(f"cannot read the bearer token: {exc.strerror}",
                              where="storage.prometheus.authorization.credentials_file"
                              ) from None

    def _api_error(self, response: httpx.Response, body: Any) -> DcopsError:
        kind = body.get("errorType") if isinstance(body, dict) else None
        message = body.get("error") if isinstance(body, dict) else None
        if kind in ("bad_data", "execution") and isinstance(message, str):
            return QueryError(kind, message)
        text = message or response.text.strip()[:500] or response.reason_phrase
        return Unavailable(f"Prometheus at {self.url} answered {response.status_code}: {text}",
                           where="storage.prometheus.url", hint="retry later")

    def close(self) -> None:
        self.http.close()


def _columns(pairs: Iterable[Any], count: int) -> tuple[npt.NDArray[np.int64],
                                                        npt.NDArray[np.float64]]:
    """``[[ts_s, "value"], ...]`` pairs (flattened) as millisecond and value arrays, in numpy."""
    flat = np.fromiter(chain.from_iterable(pairs), dtype=object, count=2 * count)
    ts_ms = np.rint(flat[0::2].astype(np.float64) * 1000).astype(np.int64)
    return ts_ms, flat[1::2].astype(np.float64)


def _labels(item: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    if "value" not in item and "values" not in item:
        raise QueryError("execution", "native histograms are not supported by dcops")
    return tuple(sorted(item["metric"].items()))


def parse_result(data: Mapping[str, Any]) -> Result:
    """The ``data`` of a /api/v1/query or query_range answer as a `Result`, series in order."""
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        ts_ms = round(float(result[0]) * 1000)
        if kind == "string":
            return Result("string", at_ms=ts_ms, string=str(result[1]))
        return Result("scalar", at_ms=ts_ms, scalar=float(result[1]))
    labels = [_labels(item) for item in result]
    if kind == "vector":
        ts, values = _columns((item["value"] for item in result), len(result))
        return Result("vector", [ResultSeries(lab, ts[i:i + 1], values[i:i + 1])
                                 for i, lab in enumerate(labels)])
    if kind != "matrix":
        raise QueryError("execution", f"unknown result type {kind!r} from the remote store")
    sizes = [len(item["values"]) for item in result]
    ts, values = _columns(chain.from_iterable(item["values"] for item in result), sum(sizes))
    bounds = np.cumsum([0, *sizes]).tolist()
    return Result("matrix", [ResultSeries(lab, ts[lo:hi], values[lo:hi])
                             for lab, lo, hi in zip(labels, bounds, bounds[1:], strict=False)])


def step_param(step_ms: int) -> str:
    """A step Prometheus reads exactly (``15000ms``; float seconds would be truncated to ns)."""
    return f"{step_ms}ms" if step_ms >= 0 else f"{step_ms / 1000}"


class PrometheusQuerier:
    """A `dcops.query.Querier` that asks the remote store's /api/v1/query and query_range."""

    def __init__(self, client: PrometheusClient) -> None:
        self.client = client

    def instant(self, query: str, at_ms: int) -> Result:
        data = self.client.api("/api/v1/query", {"query": query, "time": seconds(at_ms)},
                               post=True)
        return parse_result(data)

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Result:
        data = self.client.api("/api/v1/query_range", {
            "query": query, "start": seconds(start_ms), "end": seconds(end_ms),
            "step": step_param(step_ms)}, post=True)
        return parse_result(data)
