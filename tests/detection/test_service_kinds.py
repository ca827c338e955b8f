"""The univariate and multivariate kinds in the detection service: a node's metrics
learned together from its first rows, then a node whose power draw jumps while its
temperature does not is scored high, explained by power, and alerted on, its steady
neighbour not; one series that leaves its range is scored high by the univariate kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dcops.alerts.matchers import parse_matchers
from dcops.core.clock import FakeClock
from dcops.settings import parse_settings
from dcops.telemetry.model import Batch, make_labels
from dcops.wiring import Services, build_services
from tests.fixtures.recorder import Recorder

T0 = 1_700_000_010.0
NOTIFY = """route:
  receiver: ops
  group_by: [alertname]
  group_wait: 0s
receivers:
  - name: ops
    webhook_configs: [{url: "{url}/hook"}]
"""


def _services(tmp_path: Path, recorder: Recorder, detector: dict[str, object]) -> Services:
    (tmp_path / "notify.yml").write_text(NOTIFY.replace("{url}", recorder.url))
    settings = parse_settings({
        "storage": {"data_dir": str(tmp_path / "data")}, "rules": {"default_pack": False},
        "notifications": {"config_file": str(tmp_path / "notify.yml")},
        "detection": {"interval_s": 30, "delay_s": 5, "backfill_s": 300,
                      "detectors": [detector]}})
    services = build_services(settings, FakeClock(T0))
    services.pipeline.load()
    return services


def test_a_series_leaving_its_range_is_scored_by_the_univariate_kind(
        tmp_path: Path, recorder: Recorder) -> None:
    services = _services(tmp_path, recorder, {
        "name": "inlet", "kind": "univariate", "selectors": ["dcops_rack_inlet_celsius"],
        "for_s": 30})
    clock = services.clock
    assert isinstance(clock, FakeClock) and services.detection is not None
    rng = np.random.default_rng(2)
    try:
        while clock.now() <= T0 + 6 * 3600:
            t = clock.now() - T0
            value = 22.0 + np.sin(t / 1800) + rng.normal(0, 0.1) + (6.0 if t > 5.8 * 3600
                                                                   else 0.0)
            batch = Batch()
            batch.add(make_labels("dcops_rack_inlet_celsius", {"rack": "r1"}),
                      round(clock.now() * 1000), value)
            services.ingestor.accept(batch, "test")
            if round(t) % 30 == 0:
                services.detection.tick()
            clock.advance(30)
        history = services.querier.range("dcops_anomaly_score", round(T0 * 1000),
                                         round(clock.now() * 1000), 30_000)
        (series,) = history.series
        jumped = series.ts_ms > (T0 + 5.8 * 3600) * 1000
        assert series.values[jumped].max() > 0.9
        before = series.values[~jumped][200:]  # once it has learned: a rare new extreme only
        assert (before >= 0.9).sum() <= 2 and np.median(before) < 0.1
    finally:
        services.close()


def test_a_node_whose_power_jumps_is_scored_and_alerted_on(tmp_path: Path,
                                                           recorder: Recorder) -> None:
    (tmp_path / "notify.yml").write_text(NOTIFY.replace("{url}", recorder.url))
    settings = parse_settings({
        "storage": {"data_dir": str(tmp_path / "data")}, "rules": {"default_pack": False},
        "notifications": {"config_file": str(tmp_path / "notify.yml")},
        "detection": {"interval_s": 30, "delay_s": 5, "backfill_s": 300, "detectors": [{
            "name": "node-metrics", "kind": "multivariate", "entity_by": ["node"],
            "selectors": ["dcops_host_power_watts", "dcops_host_temperature_celsius"],
            "for_s": 60, "params": {"learn_rows": 60}}]}})
    clock = FakeClock(T0)
    services = build_services(settings, clock)
    services.pipeline.load()
    rng = np.random.default_rng(1)
    try:
        while clock.now() <= T0 + 3600:
            t = clock.now() - T0
            batch = Batch()
            for node in ("n1", "n2"):
                jump = 400.0 if node == "n2" and t >= 2400 else 0.0
                ts = round(clock.now() * 1000)
                batch.add(make_labels("dcops_host_power_watts", {"node": node}), ts,
                          5000.0 + rng.normal(0, 10) + jump)
                batch.add(make_labels("dcops_host_temperature_celsius", {"node": node}), ts,
                          30.0 + rng.normal(0, 0.2))
            services.ingestor.accept(batch, "test")
            if round(t) % 30 == 0:
                assert services.detection is not None
                services.detection.tick()
                services.pipeline.tick(clock.now())
                services.pipeline.deliver()
            clock.advance(15)
        assert services.detection is not None
        scores = {s["labels"]["node"]: s for s in
                  services.detection.scores(parse_matchers("", "test"))}
        assert scores["n2"]["score"] > 0.8 > 0.5 > scores["n1"]["score"]
        assert "dcops_host_power_watts" in scores["n2"]["summary"]
        fired = [a["labels"]["node"] for r in recorder.received for a in r.body["alerts"]]
        assert fired and set(fired) == {"n2"}
    finally:
        services.close()
