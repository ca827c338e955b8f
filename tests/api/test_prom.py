from __future__ import annotations

from typing import Any

import httpx
import pytest
from httpx import Response

from dcops.access.model import Role
from dcops.api.prom import PromError, parse_duration, parse_time
from dcops.query import Engine, Querier, Result
from dcops.telemetry.model import Batch, make_labels
from dcops.telemetry.remote_write import encode_write_request
from tests.api.conftest import Api
from tests.api.grafana_requests import GRAFANA_REQUESTS, HOUR_AGO_S, NOW_S, GrafanaRequest
from tests.fixtures.prometheus import PrometheusServer

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
UTIL = "dcops_gpu_utilization_percent"
TOO_MANY = ("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
            "query resolution (?step=XX)")


def _load(api: Api) -> Batch:
    """Two nodes with two GPUs each, a constant utilization per GPU, every 15 s for 10 min."""
    now_ms = int(api.clock.now() * 1000)
    batch = Batch()
    for node_index, node in enumerate(["gpu-node-1", "gpu-node-2"]):
        for gpu in range(2):
            labels = make_labels(UTIL, {"node": node, "gpu": str(gpu)})
            for i in range(1, 41):
                batch.add(labels, now_ms - 600_000 + i * 15_000, 10.0 + 20 * node_index + 10 * gpu)
    batch.add(make_labels("dcops_host_up", {"node": "gpu-node-1"}), now_ms - 30_000, 1.0)
    api.services.ingestor.accept(batch, "test")
    return batch


def _get(api: Api, path: str, **params: Any) -> Response:
    response: Response = api.client.get(path, params=params, headers=api.auth(Role.VIEWER))
    return response


def _post(api: Api, path: str, **form: Any) -> Response:
    response: Response = api.client.post(path, data=form, headers=api.auth(Role.VIEWER))
    return response


def _send(api: Api, request: GrafanaRequest) -> Response:
    headers = api.auth(Role.VIEWER)
    if request.form is None:
        response: Response = api.client.request(request.method, request.path,
                                                headers=headers)
    else:
        response = api.client.request(request.method, request.path, content=request.form,
                                      headers=headers | FORM)
    return response


def _util(node: str, gpu: int) -> dict[str, str]:
    return {"__name__": UTIL, "gpu": str(gpu), "node": node}


def test_grafana_data_source_requests_get_prometheus_answers(backend_api: Api) -> None:
    api = backend_api
    _load(api)
    steps = [NOW_S - 585 + 15 * i for i in range(40)]
    expected: dict[str, Any] = {
        "buildinfo (heuristics after Save & test)": {
            "version": "0.1.0", "revision": "", "branch": "", "buildUser": "dcops",
            "buildDate": "", "goVersion": _get(api, "/api/v1/status/buildinfo").json()[
                "data"]["goVersion"]},
        "Save & test health check": {"resultType": "scalar", "result": [4, "2"]},
        "Save & test, query timeout set": {"resultType": "scalar", "result": [4, "2"]},
        "dashboard panel": {"resultType": "matrix", "result": [
            {"metric": {"node": "gpu-node-1"}, "values": [[t, "30"] for t in steps]},
            {"metric": {"node": "gpu-node-2"}, "values": [[t, "70"] for t in steps]}]},
        "Explore instant query": {"resultType": "vector", "result": [
            {"metric": _util(node, gpu), "value": [(NOW_S * 1000 + 123) / 1000, str(value)]}
            for node, gpu, value in [("gpu-node-1", 0, 10), ("gpu-node-2", 0, 30),
                                     ("gpu-node-1", 1, 20), ("gpu-node-2", 1, 40)]]},
        "query editor: label names": ["__name__", "gpu", "node"],
        "query editor: label names (POST)": ["__name__", "gpu", "node"],
        "metrics browser: metric names": ["dcops_gpu_utilization_percent", "dcops_host_up"],
        "label values of a metric": ["0", "1"],
        "series of a selector": [_util("gpu-node-1", 0), _util("gpu-node-1", 1)],
        "series of a selector (POST)": [_util("gpu-node-1", 0), _util("gpu-node-1", 1)],
        "metric metadata": {},
    }
    assert sorted(expected) == sorted(r.what for r in GRAFANA_REQUESTS)
    for request in GRAFANA_REQUESTS:
        response = _send(api, request)
        assert response.status_code == 200, (request, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"status": "success", "data": expected[request.what]}, request


def test_buildinfo_has_no_features_so_grafana_sees_a_prometheus(api: Api) -> None:
    data = _get(api, "/api/v1/status/buildinfo").json()["data"]
    assert "features" not in data
    assert data["goVersion"].startswith("python3.")


def test_vector_matrix_scalar_and_string_results(api: Api) -> None:
    _load(api)
    vector = _get(api, "/api/v1/query", query='dcops_host_up{node="gpu-node-1"}', time=NOW_S)
    assert vector.json() == {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "dcops_host_up", "node": "gpu-node-1"},
         "value": [NOW_S, "1"]}]}}
    matrix = _get(api, "/api/v1/query", query="dcops_host_up[1m]", time=NOW_S)
    assert matrix.json()["data"] == {"resultType": "matrix", "result": [
        {"metric": {"__name__": "dcops_host_up", "node": "gpu-node-1"},
         "values": [[NOW_S - 30, "1"]]}]}
    scalar = _get(api, "/api/v1/query", query="scalar(sum(dcops_host_up)) / 4",
                  time=f"{NOW_S}.5")
    assert scalar.json()["data"] == {"resultType": "scalar", "result": [NOW_S + 0.5, "0.25"]}
    string = _get(api, "/api/v1/query", query='"rack-7"', time=NOW_S)
    assert string.json()["data"] == {"resultType": "string", "result": [NOW_S, "rack-7"]}
    empty = _get(api, "/api/v1/query", query="nothing_here", time=NOW_S)
    assert empty.json()["data"] == {"resultType": "vector", "result": []}


def test_query_time_defaults_to_now_and_takes_rfc3339(api: Api) -> None:
    _load(api)
    default = _get(api, "/api/v1/query", query="dcops_host_up").json()["data"]
    assert default["result"][0]["value"] == [NOW_S, "1"]
    rfc = _get(api, "/api/v1/query", query="dcops_host_up",
               time="2023-11-14T22:13:20.250Z").json()["data"]
    assert rfc["result"][0]["value"] == [NOW_S + 0.25, "1"]


def test_get_and_post_form_give_the_same_answer(api: Api) -> None:
    _load(api)
    cases = [
        ("/api/v1/query", {"query": f"avg by (node) ({UTIL})", "time": str(NOW_S)}),
        ("/api/v1/query_range", {"query": f"max({UTIL})", "start": str(NOW_S - 300),
                                 "end": str(NOW_S), "step": "1m"}),
        ("/api/v1/series", {"match[]": UTIL, "start": str(HOUR_AGO_S), "end": str(NOW_S)}),
        ("/api/v1/labels", {"match[]": "dcops_host_up"}),
        ("/api/v1/query", {"query": "sum(", "time": str(NOW_S)}),
    ]
    for path, params in cases:
        got, posted = _get(api, path, **params), _post(api, path, **params)
        assert (got.status_code, got.json()) == (posted.status_code, posted.json()), path
    assert _get(api, "/api/v1/labels", **{"match[]": "dcops_host_up"}).json()["data"] == [
        "__name__", "node"]


def test_series_with_several_selectors_is_their_union(api: Api) -> None:
    _load(api)
    response = api.client.get(
        "/api/v1/series", headers=api.auth(Role.VIEWER),
        params=[("match[]", f'{UTIL}{{node="gpu-node-2",gpu="1"}}'),
                ("match[]", '{__name__=~"dcops_host_.*"}'), ("match[]", "dcops_host_up")])
    assert response.json()["data"] == [
        {"__name__": UTIL, "gpu": "1", "node": "gpu-node-2"},
        {"__name__": "dcops_host_up", "node": "gpu-node-1"}]
    outside = _get(api, "/api/v1/series", **{"match[]": UTIL, "start": NOW_S - 7200,
                                              "end": NOW_S - 3600})
    assert outside.json() == {"status": "success", "data": []}


def test_range_beyond_retention_is_empty_not_an_error(api: Api) -> None:
    _load(api)
    response = _post(api, "/api/v1/query_range", query=UTIL, start="0", end="3600",
                     step="60")
    assert response.json() == {"status": "success",
                               "data": {"resultType": "matrix", "result": []}}


def _error(response: Response) -> tuple[int, str, str]:
    body = response.json()
    assert set(body) == {"status", "errorType", "error"} and body["status"] == "error"
    return response.status_code, body["errorType"], body["error"]


def test_errors_use_prometheus_error_json(api: Api) -> None:
    _load(api)
    syntax = _error(_post(api, "/api/v1/query", query="sum(rate(x[5m])", time=NOW_S))
    assert syntax[:2] == (400, "bad_data")
    assert syntax[2].startswith('invalid parameter "query": ')
    assert _error(_get(api, "/api/v1/query_range", query="up", start=0, end=11001,
                       step=1)) == (400, "bad_data", TOO_MANY)
    assert _get(api, "/api/v1/query_range", query="up", start=0, end=11000,
                step=1).status_code == 200
    unsupported = _error(_get(api, "/api/v1/query", query=f'sort_by_label({UTIL}, "node")'))
    assert unsupported[0] in (400, 422) and "sort_by_label" in unsupported[2]
    cases = [
        (_get(api, "/api/v1/query", query="up", time="yesterday"),
         'invalid parameter "time": Invalid time value for \'time\': cannot parse '
         '"yesterday" to a valid timestamp'),
        (_get(api, "/api/v1/labels", start="x"),
         'invalid parameter "start": Invalid time value for \'start\': cannot parse "x" to '
         "a valid timestamp"),
        (_get(api, "/api/v1/query_exemplars", query="up", start=10, end=5),
         "end timestamp must not be before start timestamp"),
        (_get(api, "/api/v1/series", **{"match[]": '{node=""}'}),
         'invalid parameter "match[]": match[] must contain at least one non-empty matcher'),
        (_get(api, "/api/v1/query_range", query="up", start=10, end=5, step=1),
         'invalid parameter "end": end timestamp must not be before start time'),
        (_get(api, "/api/v1/query_range", query="up", start=0, end=5, step=0),
         'invalid parameter "step": zero or negative query resolution step widths are not '
         "accepted. Try a positive integer"),
        (_get(api, "/api/v1/query_range", query="up", start=0, end=5, step="fast"),
         'invalid parameter "step": cannot parse "fast" to a valid duration'),
        (_get(api, "/api/v1/query_range", query="up", end=5, step=1),
         'invalid parameter "start": cannot parse "" to a valid timestamp'),
        (_get(api, "/api/v1/query", query="up", timeout="soon"),
         'invalid parameter "timeout": cannot parse "soon" to a valid duration'),
        (_get(api, "/api/v1/series"), "no match[] parameter provided"),
        (_get(api, "/api/v1/label/bad-name/values"), 'invalid label name: "bad-name"'),
    ]
    for response, message in cases:
        assert _error(response) == (400, "bad_data", message)
    not_selector = _error(_get(api, "/api/v1/series", **{"match[]": f"rate({UTIL}[5m])"}))
    assert not_selector[:2] == (400, "bad_data") and "match[]" in not_selector[2]


def test_metadata_lookups_over_an_empty_range_find_nothing(api: Api) -> None:
    _load(api)
    for path, params in [("/api/v1/series", {"match[]": UTIL}), ("/api/v1/labels", {}),
                         ("/api/v1/label/node/values", {})]:
        response = _get(api, path, start=NOW_S, end=NOW_S - 60, **params)
        assert response.json() == {"status": "success", "data": []}, path
    exemplars = _get(api, "/api/v1/query_exemplars", query=UTIL, start=HOUR_AGO_S, end=NOW_S)
    assert exemplars.json() == {"status": "success", "data": []}


def test_range_query_of_a_range_vector_is_bad_data(api: Api) -> None:
    response = _get(api, "/api/v1/query_range", query="up[5m]", start=0, end=60, step=15)
    assert _error(response)[:2] == (400, "bad_data")


def test_auth_is_required_and_other_routes_keep_dcops_errors(api: Api) -> None:
    unauthenticated = api.client.get("/api/v1/query", params={"query": "1"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "unauthorized"
    bad = api.client.get("/api/v1/samples", params={"label": "no operator"},
                         headers=api.auth(Role.VIEWER))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"


class _RecordingQuerier:
    """A Querier that notes each call and hands it to the real one."""

    def __init__(self, inner: Querier) -> None:
        self.inner = inner
        self.calls: list[tuple[object, ...]] = []

    def instant(self, query: str, at_ms: int) -> Result:
        self.calls.append(("instant", query, at_ms))
        return self.inner.instant(query, at_ms)

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Result:
        self.calls.append(("range", query, start_ms, end_ms, step_ms))
        return self.inner.range(query, start_ms, end_ms, step_ms)


def test_queries_go_to_the_services_querier(api: Api) -> None:
    engine = api.services.querier
    assert isinstance(engine, Engine) and engine.store is api.services.store
    recording = _RecordingQuerier(engine)
    api.services.querier = recording
    assert _get(api, "/api/v1/query", query="1").json()["data"]["result"] == [NOW_S, "1"]
    _post(api, "/api/v1/query_range", query="1", start=0, end=60, step=15)
    assert recording.calls == [("instant", "1", NOW_S * 1000),
                               ("range", "1", 0, 60_000, 15_000)]


@pytest.mark.parametrize(("text", "ms"), [
    ("1700000000", 1_700_000_000_000), ("1700000000.123", 1_700_000_000_123),
    ("4", 4000), ("2023-11-14T22:13:20Z", 1_700_000_000_000),
    ("2023-11-14T23:13:20.5+01:00", 1_700_000_000_500),
    ("2023-11-14T22:13:20.123456789Z", 1_700_000_000_123),
])
def test_parse_time(text: str, ms: int) -> None:
    assert parse_time("time", text) == ms


@pytest.mark.parametrize("text", ["", "now", "2023-11-14", "2023-11-14T22:13:20", "nan",
                                  "inf"])
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(PromError):
        parse_time("time", text)


@pytest.mark.parametrize(("text", "ms"), [
    ("15", 15_000), ("0.5", 500), ("15s", 15_000), ("1m", 60_000), ("1h30m", 5_400_000),
    ("1d", 86_400_000), ("2w", 1_209_600_000), ("1y", 31_536_000_000), ("250ms", 250),
    ("0", 0), ("1m30s500ms", 90_500),
])
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration("step", text) == ms


@pytest.mark.parametrize("text", ["", "1x", "m", "30s1m", "1e300", "-"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(PromError):
        parse_duration("step", text)


def test_answers_match_a_real_prometheus_on_the_same_data(
        backend_api: Api, prometheus_server: PrometheusServer) -> None:
    """Grafana's requests and the API's error cases, sent to dcops and to a real Prometheus.

    On the prometheus backend dcops has a Prometheus of its own, so the answers compared
    come from the data dcops wrote there.
    """
    api = backend_api
    batch = _load(api)
    written = httpx.post(f"{prometheus_server.url}/api/v1/write",
                         content=encode_write_request(batch), timeout=10.0, headers={
                             "Content-Encoding": "snappy",
                             "Content-Type": "application/x-protobuf",
                             "X-Prometheus-Remote-Write-Version": "0.1.0"})
    assert written.status_code == 204, written.text
    errors = [
        GrafanaRequest(what, "GET", f"/api/v1/{query}") for what, query in [
            ("too many points", "query_range?query=up&start=0&end=11001&step=1"),
            ("bad time", "query?query=up&time=yesterday"),
            ("date without time", "query?query=up&time=2023-11-14"),
            ("end before start", "query_range?query=up&start=10&end=5&step=1"),
            ("zero step", "query_range?query=up&start=0&end=5&step=0"),
            ("bad step", "query_range?query=up&start=0&end=5&step=fast"),
            ("huge step", "query_range?query=up&start=0&end=5&step=1e300"),
            ("no start", "query_range?query=up&end=5&step=1"),
            ("bad timeout", "query?query=up&timeout=soon"),
            ("no match[]", "series"),
            ("bad label name", "label/bad-name/values"),
            ("empty matcher", "series?match%5B%5D=%7Bnode%3D%22%22%7D"),
            ("bad start", "labels?start=x"),
            ("empty series range", "series?match%5B%5D=up&start=10&end=5"),
            ("range vector in a range query",
             "query_range?query=up%5B5m%5D&start=0&end=60&step=15"),
            ("string", "query?query=%22rack%22&time=4"),
            ("offset", f"query?query={UTIL}%20offset%201m&time={NOW_S}"),
        ]]
    for request in [r for r in GRAFANA_REQUESTS if "buildinfo" not in r.what] + errors:
        ours = _send(api, request)
        theirs = httpx.request(request.method, prometheus_server.url + request.path,
                               content=request.form, timeout=10.0,
                               headers=FORM if request.form else None)
        assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json()), request
