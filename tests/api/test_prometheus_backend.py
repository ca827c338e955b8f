"""The API on the prometheus metrics backend when the remote store fails or refuses samples."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dcops.access.model import Role
from dcops.core.errors import NotFound
from dcops.telemetry.model import Batch, make_labels, name_matcher
from dcops.telemetry.push import make_push
from dcops.telemetry.remote_write import encode_write_request
from tests.api.conftest import Api, prometheus_settings, running_api
from tests.fixtures.engines import free_port
from tests.fixtures.prometheus import PrometheusServer

T0 = 1_700_000_000_000
NOW_S = T0 // 1000
WRITE = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
         "X-Prometheus-Remote-Write-Version": "0.1.0"}


def _batch(ts: int, value: float = 1.0) -> Batch:
    batch = Batch()
    batch.add(make_labels("dcops_host_cpu_percent", {"node": "n1", "cpu": "total"}), ts, value)
    return batch


@pytest.fixture
def unreachable_api() -> Iterator[Api]:
    """The app on the prometheus backend, pointed at a port nobody listens on."""
    yield from running_api(prometheus_settings(f"http://127.0.0.1:{free_port()}"))


@pytest.fixture
def prometheus_api(prometheus_server: PrometheusServer) -> Iterator[Api]:
    yield from running_api(prometheus_settings(prometheus_server.url))


def test_ingest_is_503_while_prometheus_is_unreachable(unreachable_api: Api) -> None:
    api = unreachable_api
    push = make_push("agent-1", 0, "n1", _batch(T0))
    for _ in range(2):  # not acknowledged, so the agent's retry is not taken for a duplicate
        response = api.client.post("/api/v1/push", json=push, headers=api.auth(Role.OPERATOR))
        assert response.status_code == 503
        body = response.json()
        assert body["error"] == "unavailable" and body["where"] == "storage.prometheus.url"
        assert body["message"].startswith("Prometheus at http://127.0.0.1:")
        assert "is unreachable" in body["message"]
    written = api.client.post("/api/v1/write", content=encode_write_request(_batch(T0)),
                              headers=api.auth(Role.OPERATOR) | WRITE)
    assert written.status_code == 503 and "is unreachable" in written.json()["message"]
    with pytest.raises(NotFound):  # a node registers with its first acknowledged batch
        api.services.inventory.get_node("n1")


def test_queries_are_503_in_prometheus_shape_while_it_is_unreachable(
        unreachable_api: Api) -> None:
    api = unreachable_api
    viewer = api.auth(Role.VIEWER)
    for path, params in [("/api/v1/query", {"query": "up", "time": str(NOW_S)}),
                         ("/api/v1/query_range", {"query": "up", "start": str(NOW_S - 60),
                                                  "end": str(NOW_S), "step": "15"}),
                         ("/api/v1/series", {"match[]": "up"}), ("/api/v1/labels", {}),
                         ("/api/v1/label/node/values", {})]:
        response = api.client.get(path, params=params, headers=viewer)
        assert response.status_code == 503, path
        body = response.json()
        assert set(body) == {"status", "errorType", "error"}, path
        assert (body["status"], body["errorType"]) == ("error", "unavailable"), path
        assert "is unreachable" in body["error"], path
    for path, params in [("/api/v1/samples", {"metric": "up"}),
                         ("/api/v1/latest", {"metric": "up"}), ("/api/v1/fleet/overview", {})]:
        response = api.client.get(path, params=params, headers=viewer)
        assert response.status_code == 503, path
        assert response.json()["error"] == "unavailable", path
    metrics = api.client.get("/metrics")
    assert metrics.status_code == 200 and "dcops_store_series" not in metrics.text


@pytest.mark.engines
def test_out_of_order_samples_are_400_and_a_redelivery_is_fine(prometheus_api: Api) -> None:
    api = prometheus_api
    operator = api.auth(Role.OPERATOR)
    first = api.client.post("/api/v1/write", content=encode_write_request(_batch(T0)),
                            headers=operator | WRITE)
    assert first.status_code == 204
    again = api.client.post("/api/v1/write", content=encode_write_request(_batch(T0)),
                            headers=operator | WRITE)
    assert again.status_code == 204
    older = api.client.post("/api/v1/write", content=encode_write_request(_batch(T0 - 60_000)),
                            headers=operator | WRITE)
    assert older.status_code == 400
    assert older.json()["error"] == "invalid"
    assert older.json()["message"] == "out of order sample"
    pushed = api.client.post("/api/v1/push", headers=operator,
                             json=make_push("agent-1", 0, "n1", _batch(T0 - 30_000)))
    assert pushed.status_code == 400 and pushed.json()["message"] == "out of order sample"
    stored = api.services.store.select([name_matcher("dcops_host_cpu_percent")], 0, 2 * T0)
    assert stored[0].ts_ms.tolist() == [T0]
