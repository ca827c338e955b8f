"""The HTTP client of the prometheus backend, and PromQL passed through to a real Prometheus."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dcops.backends.prometheus_http import PrometheusClient, PrometheusQuerier, parse_result
from dcops.core.errors import Invalid, Unavailable
from dcops.query import QueryError
from dcops.telemetry.model import Batch, make_labels
from dcops.telemetry.remote_write import decode_write_request, encode_write_request
from tests.fixtures.engines import free_port
from tests.fixtures.prometheus import PrometheusServer

T0 = 1_700_000_000_000
Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, **options: Any) -> PrometheusClient:
    return PrometheusClient("http://prom.test:9090/", transport=httpx.MockTransport(handler),
                            **options)


def _batch() -> Batch:
    batch = Batch()
    batch.add(make_labels("dcops_gpu_power_watts", {"node": "n1", "gpu": "0"}), T0, 301.5)
    return batch


def test_write_sends_remote_write_1_0_with_configured_headers_and_token(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    token = tmp_path / "token"
    token.write_text("first-secret\n")
    client = _client(handler, write_url="http://mimir.test/api/v1/push",
                     headers={"X-Scope-OrgID": "tenant-7"}, token_file=token)
    client.write(encode_write_request(_batch()))
    token.write_text("rotated-secret\n")  # read again on every request, as Prometheus does
    client.write(encode_write_request(_batch()))
    first, second = seen
    assert str(first.url) == "http://mimir.test/api/v1/push" and first.method == "POST"
    assert {k: first.headers[k] for k in ("content-encoding", "content-type",
                                          "x-prometheus-remote-write-version",
                                          "x-scope-orgid", "authorization")} == {
        "content-encoding": "snappy", "content-type": "application/x-protobuf",
        "x-prometheus-remote-write-version": "0.1.0", "x-scope-orgid": "tenant-7",
        "authorization": "Bearer first-secret"}
    assert second.headers["authorization"] == "Bearer rotated-secret"
    assert list(decode_write_request(first.content).samples()) == list(_batch().samples())
    assert "secret" not in repr(client)


def test_write_url_defaults_to_the_query_url() -> None:
    assert _client(lambda r: httpx.Response(204)).write_url == (
        "http://prom.test:9090/api/v1/write")


def test_an_unreadable_token_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as caught:
        _client(lambda r: httpx.Response(204), token_file=tmp_path / "missing.token")
    assert caught.value.where == str(tmp_path / "missing.token")
    assert "cannot read the bearer token" in caught.value.message


@pytest.mark.parametrize(("status", "error"), [
    (400, Invalid), (409, Invalid), (413, Invalid), (422, Invalid),
    (401, Unavailable), (404, Unavailable), (429, Unavailable), (500, Unavailable),
    (503, Unavailable),
])
def test_write_statuses(status: int, error: type[Exception]) -> None:
    client = _client(lambda r: httpx.Response(status, text="out of order sample\n"))
    with pytest.raises(error) as caught:
        client.write(b"x")
    assert "out of order sample" in str(caught.value)


def test_an_unreachable_store_is_unavailable() -> None:
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(Unavailable) as caught:
        client.write(b"x")
    assert caught.value.status == 503
    assert caught.value.message.startswith(f"Prometheus at {client.url} is unreachable: ")
    with pytest.raises(Unavailable):
        client.api("/api/v1/labels")


def test_api_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/query"):
            return httpx.Response(422, json={"status": "error", "errorType": "execution",
                                             "error": "query processing would load too "
                                                      "many samples into memory"})
        if request.url.path.endswith("/query_range"):
            return httpx.Response(503, json={"status": "error", "errorType": "timeout",
                                             "error": "query timed out in query execution"})
        return httpx.Response(502, text="<html>Bad gateway</html>")

    querier = PrometheusQuerier(_client(handler))
    with pytest.raises(QueryError) as query_error:
        querier.instant("sum(x)", T0)
    assert (query_error.value.kind, query_error.value.message) == (
        "execution", "query processing would load too many samples into memory")
    with pytest.raises(Unavailable) as timeout:
        querier.range("sum(x)", T0, T0 + 60_000, 15_000)
    assert "503: query timed out in query execution" in timeout.value.message
    with pytest.raises(Unavailable) as proxy:
        querier.client.api("/api/v1/labels")
    assert "502: <html>Bad gateway</html>" in proxy.value.message


def test_parse_result_gives_back_prometheus_json() -> None:
    answers: list[dict[str, Any]] = [
        {"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "job": "a"}, "value": [1700000000.123, "1"]},
            {"metric": {"job": "b"}, "value": [1700000000.123, "NaN"]},
            {"metric": {}, "value": [1700000000.123, "-Inf"]}]},
        {"resultType": "matrix", "result": [
            {"metric": {"x": "1"}, "values": [[4, "1e-07"], [4.5, "+Inf"], [5, "-0.25"]]},
            {"metric": {"x": "2"}, "values": [[1700000000, "1e+21"]]}]},
        {"resultType": "matrix", "result": []},
        {"resultType": "vector", "result": []},
        {"resultType": "scalar", "result": [4, "2"]},
        {"resultType": "scalar", "result": [1700000000.5, "NaN"]},
        {"resultType": "string", "result": [4, "rack-7"]},
    ]
    for answer in answers:
        assert parse_result(answer).to_prometheus_json() == answer
    matrix = parse_result(answers[1])
    assert matrix.series[0].ts_ms.tolist() == [4000, 4500, 5000]
    assert matrix.series[0].values[1] == math.inf
    assert [s.labels for s in matrix.series] == [(("x", "1"),), (("x", "2"),)]


def test_native_histograms_are_refused_clearly() -> None:
    with pytest.raises(QueryError) as caught:
        parse_result({"resultType": "vector", "result": [
            {"metric": {}, "histogram": [4, {"count": "1", "sum": "1", "buckets": []}]}]})
    assert "native histograms" in caught.value.message


def _load(server: PrometheusServer) -> None:
    batch = Batch()
    values = {"a": 1.5, "b": math.nan, "c": math.inf, "d": 1e-7, "e": 0.1 + 0.2, "f": -0.0}
    for i in range(9):
        for kind, value in values.items():
            batch.add(make_labels("t_value", {"kind": kind, "node": f"n{i % 3}"}),
                      T0 + i * 15_000 + 7, value * (i + 1))
    PrometheusClient(server.url).write(encode_write_request(batch))


def _direct(server: PrometheusServer, path: str, form: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", data=form, timeout=10)


@pytest.mark.engines
def test_querier_answers_are_prometheus_answers(prometheus_server: PrometheusServer) -> None:
    _load(prometheus_server)
    querier = PrometheusQuerier(PrometheusClient(prometheus_server.url))
    at = T0 + 120_123
    instants = ["t_value", 't_value{kind=~"a|d"}[1m]', "sum by (node) (t_value)",
                'scalar(sum(t_value{kind="a"}))', '"text"', "time()", "nothing_here",
                'sort_desc(t_value{kind="e"})', "rate(t_value[1m])"]
    for query in instants:
        theirs = _direct(prometheus_server, "/api/v1/query",
                         {"query": query, "time": f"{at / 1000:.3f}"}).json()["data"]
        assert querier.instant(query, at).to_prometheus_json() == theirs, query
    for query, step_ms in [("t_value * 2", 15_000), ("time()", 7_000),
                           ('max(t_value{kind="a"})', 1_000)]:
        theirs = _direct(prometheus_server, "/api/v1/query_range", {
            "query": query, "start": f"{T0 / 1000}", "end": f"{(T0 + 130_000) / 1000}",
            "step": f"{step_ms / 1000}"}).json()["data"]
        ours = querier.range(query, T0, T0 + 130_000, step_ms).to_prometheus_json()
        assert ours == theirs, query
        assert ours["result"], query


@pytest.mark.engines
def test_querier_errors_are_prometheus_errors(prometheus_server: PrometheusServer) -> None:
    _load(prometheus_server)
    querier = PrometheusQuerier(PrometheusClient(prometheus_server.url))
    cases: list[tuple[str, Callable[[], object], dict[str, str]]] = [
        ("/api/v1/query", lambda: querier.instant("sum(rate(x[5m])", T0),
         {"query": "sum(rate(x[5m])", "time": str(T0 / 1000)}),
        ("/api/v1/query", lambda: querier.instant("t_value + on() t_value", T0 + 60_000),
         {"query": "t_value + on() t_value", "time": str((T0 + 60_000) / 1000)}),
        ("/api/v1/query_range", lambda: querier.range("t_value[1m]", T0, T0 + 60_000, 15_000),
         {"query": "t_value[1m]", "start": str(T0 / 1000), "end": str((T0 + 60_000) / 1000),
          "step": "15"}),
    ]
    kinds = []
    for path, call, form in cases:
        theirs = _direct(prometheus_server, path, form).json()
        with pytest.raises(QueryError) as caught:
            call()
        assert (caught.value.kind, caught.value.message) == (theirs["errorType"],
                                                             theirs["error"]), form
        kinds.append(caught.value.kind)
    assert kinds == ["bad_data", "execution", "bad_data"]


def test_an_unreachable_write_url_elsewhere_is_named() -> None:
    write_url = f"http://127.0.0.1:{free_port()}/api/v1/push"
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}/prometheus", write_url=write_url,
                              timeout_s=2)
    with pytest.raises(Unavailable) as caught:
        client.write(b"x")
    assert caught.value.message.startswith(f"Prometheus at {write_url} is unreachable: ")
    assert caught.value.where == "storage.prometheus.write_url"
