"""A real Prometheus forwards to dcops over remote_write, authenticated with a dcops token."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.process import DcopsProcess
from tests.fixtures.engines import wait_for
from tests.fixtures.prometheus import PrometheusFactory

pytestmark = [pytest.mark.engines, pytest.mark.slow]


def test_prometheus_remote_writes_into_dcops(tmp_path: Path,
                                             prometheus_factory: PrometheusFactory) -> None:
    server = DcopsProcess(tmp_path / "data").start()
    try:
        with server.client() as client:
            made = client.post("/api/v1/tokens", json={"name": "prom", "role": "operator"})
            token_file = tmp_path / "prom.token"
            token_file.write_text(made.json()["secret"])
            config = f"""
global:
  scrape_interval: 1s
  external_labels: {{cluster: test}}
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{{port}}"]
remote_write:
  - url: {server.url}/api/v1/write
    authorization:
      credentials_file: {token_file}
    queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms}}
"""
            prometheus_factory(config, remote_write_receiver=False)

            def arrived() -> bool:
                got = client.get("/api/v1/latest", params={
                    "metric": "prometheus_build_info", "lookback_s": 600}).json()
                return bool(got["series"])

            wait_for(arrived, 60, "Prometheus's samples to arrive in dcops")
            up = client.get("/api/v1/latest", params={"metric": "up", "label": "job=prometheus",
                                                      "lookback_s": 600}).json()["series"]
            assert up[0]["labels"]["cluster"] == "test"
            assert up[0]["value"] == 1.0
            metrics = client.get("/metrics").text
            assert 'dcops_ingest_samples_total{source="remote_write"}' in metrics
    finally:
        server.stop()
