"""``/api/v1/detection/...``: what runs, and the latest scores with their explanations;
the score series in the PromQL API; clear errors for a bad selector, an unknown detector,
detection switched off and a missing token."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from dcops.access.model import Role
from dcops.settings import parse_settings
from dcops.telemetry.model import Batch, make_labels
from tests.api.conftest import Api, running_api

DETECTION = {"interval_s": 30, "delay_s": 0, "detectors": [
    {"name": "temp", "kind": "fleet", "selectors": ["dcops_gpu_temperature_celsius"],
     "group_by": ["model"], "for_s": 0, "params": {"direction": "high"}}]}


@pytest.fixture
def det_api() -> Iterator[Api]:
    yield from running_api(parse_settings({"detection": DETECTION}))


def feed(api: Api, minutes: int) -> None:
    """16 GPUs every 15 s, GPU 3 of n0 20 degrees hotter; the detectors tick every 30 s."""
    rng = np.random.default_rng(0)
    assert api.services.detection is not None
    for k in range(minutes * 4):
        batch = Batch()
        for gpu in range(16):
            hot = 20.0 if gpu == 3 else 0.0
            batch.add(make_labels("dcops_gpu_temperature_celsius", {
                "node": f"n{gpu // 8}", "gpu": str(gpu % 8), "model": "H100"}),
                round(api.clock.now() * 1000), 70.0 + hot + float(rng.normal(0, 0.8)))
        api.services.ingestor.accept(batch, "test")
        if k % 2:
            api.services.detection.tick()
        api.clock.advance(15)


def test_detectors_and_scores_with_explanations(det_api: Api) -> None:
    feed(det_api, 5)
    got = det_api.client.get("/api/v1/detection/detectors", headers=det_api.auth(Role.VIEWER))
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["enabled"] is True and body["interval_s"] == 30
    (temp,) = body["detectors"]
    assert temp["name"] == "temp" and temp["kind"] == "fleet" and temp["series"] == 16
    assert temp["firing"] == 1 and temp["last_tick_at"] is not None
    assert temp["queries"] == ["last_over_time(dcops_gpu_temperature_celsius[30s])"]

    got = det_api.client.get("/api/v1/detection/scores",
                             params={"selector": '{node="n0"}', "limit": 3},
                             headers=det_api.auth(Role.VIEWER))
    assert got.status_code == 200, got.text
    scores = got.json()["scores"]
    assert len(scores) == 3 and got.json()["count"] == 3
    top = scores[0]
    assert top["labels"] == {"node": "n0", "gpu": "3", "model": "H100", "detector": "temp"}
    assert top["score"] > 0.9 and top["firing"] is True
    assert top["explanation"] == [{"metric": "dcops_gpu_temperature_celsius", "share": 1.0}]
    (deviation,) = top["deviations"]
    assert deviation["sigma"] > 6 and deviation["peers"] == 16
    assert "+" in top["summary"] and "16 peers" in top["summary"]
    assert all(s["labels"]["node"] == "n0" for s in scores)

    got = det_api.client.get("/api/v1/detection/scores",
                             params={"selector": 'dcops_anomaly_score{gpu="3"}',
                                     "min_score": 0.5, "detector": "temp"},
                             headers=det_api.auth(Role.VIEWER))
    assert [s["labels"]["node"] for s in got.json()["scores"]] == ["n0"]

    got = det_api.client.get("/api/v1/query", params={
        "query": 'dcops_anomaly_score{detector="temp",gpu="3",node="n0"}'},
        headers=det_api.auth(Role.VIEWER))
    (series,) = got.json()["data"]["result"]
    assert float(series["value"][1]) > 0.9


def test_bad_requests_are_clear_errors(det_api: Api) -> None:
    viewer = det_api.auth(Role.VIEWER)
    got = det_api.client.get("/api/v1/detection/scores", params={"selector": "{node="},
                             headers=viewer)
    assert got.status_code == 400 and got.json()["where"] == "selector"
    got = det_api.client.get("/api/v1/detection/scores", params={"selector": "rate(x[5m])"},
                             headers=viewer)
    assert got.status_code == 400 and "not a series selector" in got.json()["message"]
    got = det_api.client.get("/api/v1/detection/scores", params={"detector": "nope"},
                             headers=viewer)
    assert got.status_code == 404 and got.json()["error"] == "not_found"
    got = det_api.client.get("/api/v1/detection/scores", params={"min_score": 2},
                             headers=viewer)
    assert got.status_code == 400
    assert det_api.client.get("/api/v1/detection/detectors").status_code == 401


def test_detection_switched_off() -> None:
    for api in running_api(parse_settings({"detection": {"enabled": False}})):
        got = api.client.get("/api/v1/detection/detectors", headers=api.auth(Role.VIEWER))
        assert got.status_code == 200 and got.json()["enabled"] is False
        assert got.json()["detectors"] == []
        got = api.client.get("/api/v1/detection/scores", headers=api.auth(Role.VIEWER))
        assert got.status_code == 503 and got.json()["where"] == "detection.enabled"
