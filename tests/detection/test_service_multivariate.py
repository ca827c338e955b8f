"""The multivariate kind in the detection service: a node's metrics learned together
from its first rows, then a node whose power draw jumps while its temperature does not
is scored high, explained by power, and alerted on; its steady neighbour is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dcops.alerts.matchers import parse_matchers
from dcops.core.clock import FakeClock
from dcops.settings import parse_settings
from dcops.telemetry.model import Batch, make_labels
from dcops.wiring import build_services
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
