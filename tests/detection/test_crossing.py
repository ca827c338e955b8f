"""Forecast threshold crossings as a detector: a disk filling up is predicted hours before
it is full, said in words, carried over a restart, and alerted on by the service."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcops.alerts.matchers import parse_matchers
from dcops.core.clock import FakeClock
from dcops.core.errors import Invalid
from dcops.detection.crossing import CrossingDetector
from dcops.detection.model import FloatArray
from dcops.settings import parse_settings
from dcops.telemetry.model import Batch, make_labels
from dcops.wiring import build_services
from tests.fixtures.recorder import Recorder

STEP = 300.0
DAY = 86400.0


def free_gb(days: float = 3.0, seed: int = 0) -> tuple[FloatArray, FloatArray]:
    """Free space: steady at 500 GB for a day, then falling by 20 GB an hour."""
    t = np.arange(0.0, days * DAY, STEP)
    rng = np.random.default_rng(seed)
    free = 500.0 + rng.normal(0.0, 1.0, len(t)) - np.where(t > DAY, (t - DAY) / 3600 * 20, 0)
    return t, free


def test_a_filling_disk_is_predicted_hours_before_it_is_full() -> None:
    t, free = free_gb()
    det = CrossingDetector(10.0, direction="below", horizon_s=6 * 3600, label="disk full",
                           step_s=STEP)
    scores = det.score(free)
    full = int(np.argmax(free < 10.0))
    assert scores[t < DAY].max() < 0.1  # steady: nothing to predict
    warned = int(np.argmax(scores >= 0.8))
    assert full - warned > 0 and (t[full] - t[warned]) >= 4 * 3600  # 4+ hours ahead
    ((text, share),) = det.explain().contributions
    assert text.startswith("disk full in ") and share == 1.0
    assert det.details()[0]["direction"] == "below"


def test_a_restart_continues_the_same_forecast() -> None:
    _, free = free_gb(days=2.0)
    straight = CrossingDetector(10.0, direction="below", step_s=STEP).score(free)
    first = CrossingDetector(10.0, direction="below", step_s=STEP)
    head = first.score(free[:400])
    again = CrossingDetector.restore(first.state())
    assert np.allclose(np.concatenate([head, again.score(free[400:])]), straight)


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(Invalid, match="direction"):
        CrossingDetector(1.0, direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="horizon_s"):
        CrossingDetector(1.0, horizon_s=3 * DAY)
    with pytest.raises(Invalid, match="state is damaged"):
        CrossingDetector.restore({"kind": "crossing"})


def test_the_service_alerts_before_the_disk_is_full(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "notify.yml").write_text(
        "route: {receiver: ops, group_by: [alertname], group_wait: 0s}\n"
        f"receivers:\n  - name: ops\n    webhook_configs: [{{url: \"{recorder.url}/hook\"}}]\n")
    settings = parse_settings({
        "storage": {"data_dir": str(tmp_path / "data")}, "rules": {"default_pack": False},
        "notifications": {"config_file": str(tmp_path / "notify.yml")},
        "detection": {"interval_s": STEP, "delay_s": 5, "backfill_s": 3600, "detectors": [{
            "name": "disk-full", "kind": "crossing", "selectors": ["dcops_host_disk_free_gb"],
            "for_s": 600, "params": {"threshold": 10, "direction": "below",
                                     "label": "disk full", "horizon_s": 21600}}]}})
    t0 = 1_700_000_100.0
    clock = FakeClock(t0)
    services = build_services(settings, clock)
    services.pipeline.load()
    assert services.detection is not None
    t, free = free_gb(days=2.0)
    try:
        for ts, value in zip(t.tolist(), free.tolist(), strict=True):
            clock.set(t0 + ts)
            batch = Batch()
            batch.add(make_labels("dcops_host_disk_free_gb", {"node": "n1"}),
                      round(clock.now() * 1000), value)
            services.ingestor.accept(batch, "test")
            services.detection.tick()
            services.pipeline.tick(clock.now())
            services.pipeline.deliver()
            if recorder.received:
                break
        assert recorder.received, "no prediction alert"
        (alert,) = recorder.received[0].body["alerts"]
        assert alert["labels"]["alertname"] == "ThresholdCrossingPredicted"
        assert alert["annotations"]["summary"].startswith("node=n1: disk full in ")
        left = float(np.interp(clock.now() - t0, t, free))
        assert left > 60.0  # hours of filling still ahead when it was sent
        (view,) = services.detection.scores(parse_matchers('node="n1"', "test"))
        assert view["summary"].startswith("disk full in ")
    finally:
        services.close()
