from __future__ import annotations

import gzip
import json

from dcops.access.model import Role
from dcops.telemetry.model import Batch, make_labels, name_matcher
from dcops.telemetry.push import make_push
from dcops.telemetry.remote_write import encode_write_request
from tests.api.conftest import Api

T0 = 1_700_000_000_000


def _batch(node: str = "gpu-node-1", n: int = 3) -> Batch:
    batch = Batch()
    for i in range(n):
        batch.add(make_labels("dcops_host_cpu_percent", {"node": node, "cpu": "total"}),
                  T0 + i * 15_000, 10.0 + i)
    return batch


def test_push_is_stored_and_registers_the_node(backend_api: Api) -> None:
    api = backend_api
    body = make_push("agent-1", 0, "gpu-node-1", _batch(),
                     gpus=[{"index": 0, "uuid": "GPU-aaa", "model": "NVIDIA H100"}])
    response = api.client.post("/api/v1/push", json=body, headers=api.auth(Role.OPERATOR))
    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicate": False, "seq": 0}
    stored = api.services.store.select([name_matcher("dcops_host_cpu_percent")], 0, 2 * T0)
    assert [float(v) for v in stored[0].values] == [10.0, 11.0, 12.0]
    node = api.services.inventory.get_node("gpu-node-1")
    assert node.gpu_count == 1 and node.last_seen == api.clock.now()
    assert api.services.inventory.get_gpu("gpu-node-1", 0).uuid == "GPU-aaa"


def test_redelivered_push_is_not_stored_twice(backend_api: Api) -> None:
    api = backend_api
    body = make_push("agent-1", 7, "n1", _batch("n1"))
    for _ in range(3):
        api.client.post("/api/v1/push", json=body, headers=api.auth(Role.OPERATOR))
    stored = api.services.store.select([name_matcher("dcops_host_cpu_percent")], 0, 2 * T0)
    assert len(stored[0].values) == 3
    again = api.client.post("/api/v1/push", json=body, headers=api.auth(Role.OPERATOR))
    assert again.json()["duplicate"] is True


def test_gzip_push(api: Api) -> None:
    raw = gzip.compress(json.dumps(make_push("a", 0, "n1", _batch("n1"))).encode())
    response = api.client.post("/api/v1/push", content=raw, headers=api.auth(Role.OPERATOR) | {
        "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert response.json()["accepted"] == 3


def test_malformed_pushes_get_400_saying_where(api: Api) -> None:
    good = make_push("a", 0, "n1", _batch("n1"))
    cases: list[tuple[bytes, str]] = [
        (b"{not json", "body line 1"),
        (json.dumps({**good, "seq": -1}).encode(), "seq"),
        (json.dumps({**good, "series": [{"labels": {"cpu": "0"}, "samples": [[1, 2]]}]}
                    ).encode(), "series[0].labels"),
        (json.dumps({**good, "series": [{"labels": {"__name__": "bad name"},
                                         "samples": [[1, 2]]}]}).encode(), "series[0].labels"),
        (json.dumps({**good, "series": [{"labels": {"__name__": "ok"},
                                         "samples": [["x", 2]]}]}).encode(), "series[0]"),
        (json.dumps({**good, "series": [{"labels": {"__name__": "ok"},
                                         "samples": [[-5, 2]]}]}).encode(), "samples[0]"),
        (b"\xff\xfe", "body"),
    ]
    for raw, where in cases:
        response = api.client.post("/api/v1/push", content=raw,
                                   headers=api.auth(Role.OPERATOR))
        assert response.status_code == 400, raw
        assert where in response.json()["where"], (raw, response.json())
    bad_gzip = api.client.post("/api/v1/push", content=b"plain", headers=api.auth(
        Role.OPERATOR) | {"Content-Encoding": "gzip"})
    assert bad_gzip.status_code == 400
    assert api.services.store.stats()["samples"] == 0


def test_body_over_the_limit_is_413(api: Api) -> None:
    api.services.settings = api.services.settings.model_copy(update={
        "server": api.services.settings.server.model_copy(update={"max_body_mb": 0.001})})
    response = api.client.post("/api/v1/push", content=b"x" * 5000,
                               headers=api.auth(Role.OPERATOR))
    assert response.status_code == 413


def test_remote_write_is_stored(backend_api: Api) -> None:
    api = backend_api
    body = encode_write_request(_batch("rw-node", 5))
    response = api.client.post("/api/v1/write", content=body, headers=api.auth(
        Role.OPERATOR) | {"Content-Encoding": "snappy",
                          "Content-Type": "application/x-protobuf",
                          "X-Prometheus-Remote-Write-Version": "0.1.0"})
    assert response.status_code == 204
    stored = api.services.store.select([name_matcher("dcops_host_cpu_percent")], 0, 2 * T0)
    assert dict(stored[0].labels)["node"] == "rw-node"
    assert len(stored[0].values) == 5


def test_malformed_remote_write_is_400(api: Api) -> None:
    for raw in (b"", b"not snappy at all", b"\x05\x10garbage"):
        response = api.client.post("/api/v1/write", content=raw, headers=api.auth(
            Role.OPERATOR) | {"Content-Encoding": "snappy"})
        assert response.status_code == 400, raw
        assert response.json()["error"] == "invalid"
    wrong = api.client.post("/api/v1/write", content=b"x", headers=api.auth(
        Role.OPERATOR) | {"Content-Encoding": "zstd"})
    assert wrong.status_code == 400 and wrong.json()["where"] == "Content-Encoding"
    assert "dcops_ingest_rejected_total" in api.client.get("/metrics").text


def test_viewer_cannot_push(api: Api) -> None:
    body = make_push("a", 0, "n1", _batch("n1"))
    assert api.client.post("/api/v1/push", json=body,
                           headers=api.auth(Role.VIEWER)).status_code == 403


def test_samples_and_latest_read_back(backend_api: Api) -> None:
    api = backend_api
    api.services.ingestor.accept(_batch("n1", 4), "test")
    api.services.ingestor.accept(_batch("n2", 2), "test")
    got = api.client.get("/api/v1/samples", params={
        "metric": "dcops_host_cpu_percent", "label": "node=~n1|n9",
        "start": T0 / 1000, "end": T0 / 1000 + 3600}, headers=api.auth(Role.VIEWER)).json()
    assert len(got["series"]) == 1
    assert got["series"][0]["samples"][0] == [T0 / 1000, 10.0]
    api.clock.set(T0 / 1000 + 60)
    latest = api.client.get("/api/v1/latest", params={"metric": "dcops_host_cpu_percent"},
                            headers=api.auth(Role.VIEWER)).json()
    assert sorted(s["value"] for s in latest["series"]) == [11.0, 13.0]
    bad = api.client.get("/api/v1/samples", params={"label": "node=~("},
                         headers=api.auth(Role.VIEWER))
    assert bad.status_code == 400 and "regular expression" in bad.json()["message"]
    empty = api.client.get("/api/v1/samples", params={"label": "node!=x"},
                           headers=api.auth(Role.VIEWER))
    assert empty.status_code == 400
