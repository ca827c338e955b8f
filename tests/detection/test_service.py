"""The detection service in a control plane on disk: the real metrics store, PromQL engine,
alerting pipeline and an HTTP receiver. A GPU drifting hot against its peers gets a high
fleet score, a ``dcops_anomaly_score`` series PromQL can read and an ``AnomalyDetected``
alert at the receiver, which a silence holds back and which resolves once the GPU cools;
a restart carries on from the saved state; a damaged state file starts afresh."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from dcops.alerts.matchers import parse_matchers
from dcops.core.clock import FakeClock
from dcops.detection.service import DetectionService
from dcops.settings import parse_settings
from dcops.telemetry.model import Batch, make_labels
from dcops.wiring import Services, build_services
from tests.fixtures.recorder import Recorder

T0 = 1_700_000_010.0
GPUS = 16
NOTIFY = """route:
  receiver: ops
  group_by: [alertname, detector]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: ops
    webhook_configs: [{url: "{url}/hook", send_resolved: true}]
"""
DETECTION = {
    "interval_s": 30, "delay_s": 5, "backfill_s": 300, "forget_after_s": 600,
    "detectors": [{"name": "temp-vs-peers", "kind": "fleet",
                   "selectors": ["dcops_gpu_temperature_celsius"], "group_by": ["model"],
                   "for_s": 60, "params": {"direction": "high"}}]}

Extra = Callable[[int, float], float]
"""(gpu, seconds since T0) -> degrees above normal."""


class Plant:
    """A control plane on disk with a simulated hall of 16 identical GPUs."""

    def __init__(self, tmp_path: Path, recorder: Recorder) -> None:
        (tmp_path / "notify.yml").write_text(NOTIFY.replace("{url}", recorder.url))
        self.settings = parse_settings({
            "storage": {"data_dir": str(tmp_path / "data")},
            "rules": {"default_pack": False},
            "notifications": {"config_file": str(tmp_path / "notify.yml")},
            "detection": DETECTION})
        self.clock = FakeClock(T0)
        self.rng = np.random.default_rng(3)
        self.services = self.start()

    def start(self) -> Services:
        services = build_services(self.settings, self.clock)
        services.pipeline.load()
        return services

    def restart(self) -> None:
        self.services.close()
        self.services = self.start()

    @property
    def detection(self) -> DetectionService:
        assert self.services.detection is not None
        return self.services.detection

    def run(self, until: float, extra: Extra = lambda gpu, t: 0.0) -> None:
        """Samples every 15 s up to T0 + `until`, the detectors and the pipeline every 30 s."""
        while self.clock.now() <= T0 + until:
            t = self.clock.now() - T0
            batch = Batch()
            for gpu in range(GPUS):
                value = 70.0 + self.rng.normal(0.0, 0.8) + extra(gpu, t)
                batch.add(make_labels("dcops_gpu_temperature_celsius", {
                    "node": f"n{gpu // 8}", "gpu": str(gpu % 8), "model": "H100"}),
                    round(self.clock.now() * 1000), value)
            self.services.ingestor.accept(batch, "test")
            if round(t) % 30 == 0:
                self.detection.tick()
                self.services.pipeline.tick(self.clock.now())
                self.services.pipeline.deliver()
            self.clock.advance(15)


@pytest.fixture
def plant(tmp_path: Path, recorder: Recorder) -> Iterator[Plant]:
    made = Plant(tmp_path, recorder)
    yield made
    made.services.close()


def hot_gpu_3(after_s: float, until_s: float = 1e9) -> Extra:
    return lambda gpu, t: 20.0 if gpu == 3 and after_s <= t < until_s else 0.0


def alerts_seen(recorder: Recorder) -> list[list[tuple[str, str]]]:
    return [[(a["labels"]["node"] + "/" + a["labels"]["gpu"], a["status"])
             for a in r.body["alerts"]] for r in recorder.received]


def test_a_gpu_drifting_hot_scores_high_is_a_series_and_an_alert_that_resolves(
        plant: Plant, recorder: Recorder) -> None:
    plant.run(600, hot_gpu_3(300))
    found = plant.services.querier.instant(
        'dcops_anomaly_score{detector="temp-vs-peers"}', round(plant.clock.now() * 1000))
    by_gpu = {dict(s.labels)["node"] + "/" + dict(s.labels)["gpu"]: float(s.values[0])
              for s in found.series}
    assert len(by_gpu) == GPUS
    assert by_gpu["n0/3"] > 0.9
    assert max(v for k, v in by_gpu.items() if k != "n0/3") < 0.5
    history = plant.services.querier.range(
        'dcops_anomaly_score{gpu="3",node="n0"}', round(T0 * 1000),
        round(plant.clock.now() * 1000), 30_000)
    (series,) = history.series
    assert series.values[: len(series.values) // 2].max() < 0.5  # before it went hot

    assert alerts_seen(recorder) == [[("n0/3", "firing")]]
    (alert,) = recorder.received[0].body["alerts"]
    assert alert["labels"]["alertname"] == "AnomalyDetected"
    assert alert["labels"]["detector"] == "temp-vs-peers"
    assert alert["labels"]["source"] == "detection"
    assert alert["labels"]["severity"] == "warning"
    assert float(alert["annotations"]["score"]) > 0.8
    assert "dcops_gpu_temperature_celsius +" in alert["annotations"]["metrics"]
    assert "from 16 peers" in alert["annotations"]["metrics"]

    [top, *_] = plant.detection.scores(parse_matchers('node="n0"', "test"))
    assert top["labels"]["gpu"] == "3" and top["firing"]
    assert top["deviations"][0]["sigma"] > 6

    plant.run(1200, hot_gpu_3(300, 620))  # it cools: the alert resolves, once
    assert alerts_seen(recorder) == [[("n0/3", "firing")], [("n0/3", "resolved")]]
    assert plant.detection.status()[0]["firing"] == 0


def test_a_silence_holds_the_anomaly_alert_back(plant: Plant, recorder: Recorder) -> None:
    plant.services.silences.add(tuple(parse_matchers('alertname="AnomalyDetected", gpu="3"',
                                                     "test")),
                                T0, T0 + 3600, "alice", "known hot GPU", T0)
    plant.run(600, hot_gpu_3(300))
    assert plant.detection.status()[0]["firing"] == 1
    assert recorder.received == []


def test_a_restart_carries_on_from_the_saved_state(plant: Plant, recorder: Recorder) -> None:
    plant.run(600, hot_gpu_3(300))
    before = plant.detection.runners[0]
    last_ms, score = before.last_ms, before.latest[next(iter(before.latest))].score
    plant.restart()
    after = plant.detection.runners[0]
    assert after is not before and after.last_ms == last_ms
    assert after.tracker.firing() == before.tracker.firing() and len(after.tracker.firing()) == 1
    assert after.latest[next(iter(after.latest))].score == score
    plant.run(700, hot_gpu_3(300))
    assert alerts_seen(recorder) == [[("n0/3", "firing")]]  # still firing, not sent again
    assert plant.detection.scores(parse_matchers('gpu="3",node="n0"', "t"))[0]["score"] > 0.9


def test_a_damaged_state_file_is_logged_and_the_detector_starts_afresh(
        plant: Plant, caplog: pytest.LogCaptureFixture) -> None:
    plant.run(120)
    plant.services.close()
    path = plant.services.data_dir / "detection" / "temp-vs-peers.npz"
    assert path.exists()
    path.write_bytes(b"not an npz file")
    with caplog.at_level(logging.WARNING, "dcops.detection.service"):
        plant.services = plant.start()
    assert "temp-vs-peers starts afresh" in caplog.text and str(path) in caplog.text
    assert plant.detection.runners[0].last_ms is None
    plant.run(300)
    assert plant.detection.status()[0]["series"] == GPUS
