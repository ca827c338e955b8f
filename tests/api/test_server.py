"""End to end: a real `dcops` server process, killed and restarted."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from dcops.telemetry.model import Batch, make_labels
from dcops.telemetry.push import make_push
from dcops.telemetry.remote_write import encode_write_request
from tests.api.process import DcopsProcess
from tests.fixtures.alertmanager import AlertmanagerServer
from tests.fixtures.engines import wait_for
from tests.fixtures.prometheus import PrometheusServer
from tests.fixtures.recorder import Recorder

pytestmark = pytest.mark.slow

T0 = (int(time.time()) - 3600) * 1000
"""An hour ago: inside the raw retention, whatever the date the tests run on."""


def _push_until_killed(server: DcopsProcess, agent: str, acked: list[tuple[str, int]],
                       stop: threading.Event, start_seq: int) -> None:
    """Push one sample per batch; record (agent, ts) only when the server said 200."""
    client = httpx.Client(base_url=server.url, timeout=5,
                          headers={"Authorization": f"Bearer {server.token}"})
    seq = start_seq
    while not stop.is_set():
        batch = Batch()
        ts = T0 + seq * 1000
        batch.add(make_labels("kill_test_samples", {"agent": agent}), ts, float(seq))
        try:
            if agent.startswith("rw"):
                response = client.post("/api/v1/write", content=encode_write_request(batch),
                                       headers={"Content-Encoding": "snappy"})
            else:
                response = client.post("/api/v1/push", json=make_push(agent, seq, "n1", batch))
        except httpx.TransportError:
            return
        if response.status_code in (200, 204):
            acked.append((agent, ts))
        seq += 1
    client.close()


def test_every_acknowledged_sample_survives_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    acked: list[tuple[str, int]] = []
    rng = random.Random(4)
    for round_ in range(3):
        server = DcopsProcess(data_dir).start()
        stop = threading.Event()
        pushers = [threading.Thread(target=_push_until_killed,
                                    args=(server, name, acked, stop, round_ * 100_000))
                   for name in ("push-a", "push-b", "rw-a")]
        for thread in pushers:
            thread.start()
        time.sleep(rng.uniform(0.8, 2.0))
        server.kill()
        stop.set()
        for thread in pushers:
            thread.join(timeout=10)
    assert len(acked) > 50
    server = DcopsProcess(data_dir).start()
    try:
        with server.client() as client:
            body = client.get("/api/v1/samples", params={
                "metric": "kill_test_samples", "start": 0, "end": 2e10}).json()
        stored = {(s["labels"]["agent"], round(t * 1000)) for s in body["series"]
                  for t, _ in s["samples"]}
        lost = set(acked) - stored
        assert not lost, (f"{len(lost)} of {len(acked)} acknowledged samples lost "
                          f"({len(stored)} stored), e.g. {sorted(lost)[:5]}")
        total = sum(len(s["samples"]) for s in body["series"])
        assert total == len(stored), "a sample was stored twice"
    finally:
        server.stop()


def test_restart_keeps_data_and_tokens(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = DcopsProcess(data_dir).start()
    token = server.token
    with server.client() as client:
        assert client.post("/api/v1/sites", json={"name": "ams1"}).status_code == 201
        batch = Batch()
        batch.add(make_labels("restart_test", {"x": "1"}), T0, 1.5)
        client.post("/api/v1/push", json=make_push("a", 0, "n1", batch))
    assert server.interrupt() == 0
    server = DcopsProcess(data_dir).start()
    try:
        assert server.token == token
        with server.client() as client:
            assert [s["name"] for s in client.get("/api/v1/sites").json()] == ["ams1"]
            got = client.get("/api/v1/samples", params={"metric": "restart_test", "start": 0,
                                                        "end": 2e10}).json()
            assert got["series"][0]["samples"] == [[T0 / 1000, 1.5]]
            assert client.get("/api/v1/nodes/n1").json()["name"] == "n1"
    finally:
        server.stop()


@pytest.mark.engines
def test_configured_exporters_are_scraped(tmp_path: Path, node_exporter_url: str) -> None:
    config = tmp_path / "dcops.yaml"
    config.write_text(f"scrape:\n  - name: node\n    url: {node_exporter_url}\n"
                      "    interval_s: 1\n    labels: {rack: r07}\n")
    server = DcopsProcess(tmp_path / "data", args=["--config", str(config)]).start()
    try:
        with server.client() as client:
            def scraped() -> bool:
                got = client.get("/api/v1/latest", params={
                    "metric": "node_cpu_seconds_total", "lookback_s": 600}).json()
                return bool(got["series"])

            wait_for(scraped, 30, "node_exporter's samples")
            up = client.get("/api/v1/latest", params={"metric": "up", "label": "job=node"}
                            ).json()["series"]
            assert up[0]["value"] == 1.0 and up[0]["labels"]["rack"] == "r07"
    finally:
        server.stop()


@pytest.mark.engines
def test_state_in_postgresql_by_url(tmp_path: Path, postgres_url: str) -> None:
    config = tmp_path / "dcops.yaml"
    config.write_text(f"storage:\n  state_url: {postgres_url}\n")
    server = DcopsProcess(tmp_path / "data", args=["--config", str(config)]).start()
    try:
        with server.client() as client:
            assert client.post("/api/v1/sites", json={"name": "pg-site"}).status_code == 201
    finally:
        assert server.interrupt() == 0
    assert not (tmp_path / "data" / "state.db").exists()
    server = DcopsProcess(tmp_path / "data", args=["--config", str(config)]).start()
    try:
        with server.client() as client:
            assert [s["name"] for s in client.get("/api/v1/sites").json()] == ["pg-site"]
    finally:
        server.stop()


@pytest.mark.engines
def test_metrics_in_prometheus_by_config(tmp_path: Path,
                                         prometheus_server: PrometheusServer) -> None:
    config = tmp_path / "dcops.yaml"
    config.write_text("storage:\n  metrics_backend: prometheus\n"
                      f"  prometheus: {{url: {prometheus_server.url}, timeout_s: 10}}\n")
    now = int(time.time() * 1000)
    pushed, written = Batch(), Batch()
    for gpu, util in enumerate((77.0, 79.0)):
        labels = {"node": "gpu-e2e-1", "gpu": str(gpu), "uuid": f"GPU-e2e-{gpu}"}
        pushed.add(make_labels("dcops_gpu_utilization_percent", labels), now - 5000, util)
        pushed.add(make_labels("dcops_gpu_temperature_celsius", labels), now - 5000, 61.0)
    written.add(make_labels("exporter_up", {"instance": "pdu-7"}), now - 4000, 1.0)
    server = DcopsProcess(tmp_path / "data", args=["--config", str(config)]).start()
    try:
        with server.client() as client:
            gpus = [{"index": g, "uuid": f"GPU-e2e-{g}", "model": "NVIDIA H100"} for g in (0, 1)]
            assert client.post("/api/v1/push", json=make_push(
                "agent-e2e", 0, "gpu-e2e-1", pushed, gpus=gpus)).status_code == 200
            assert client.post("/api/v1/write", content=encode_write_request(written),
                               headers={"Content-Encoding": "snappy"}).status_code == 204
            # in Prometheus itself, not kept by dcops
            assert [r["value"][1] for r in prometheus_server.query("exporter_up")] == ["1"]
            assert not (tmp_path / "data" / "metrics").exists()

            answer = client.post("/api/v1/query", data={
                "query": "sum by (node) (dcops_gpu_utilization_percent)"}).json()
            assert answer["data"]["result"][0]["metric"] == {"node": "gpu-e2e-1"}
            assert answer["data"]["result"][0]["value"][1] == "156"
            rw = client.get("/api/v1/query", params={"query": "exporter_up"}).json()
            assert [r["metric"]["instance"] for r in rw["data"]["result"]] == ["pdu-7"]

            overview = client.get("/api/v1/fleet/overview").json()
            nodes = {n["name"]: n for n in overview["unplaced"]}
            node = nodes["gpu-e2e-1"]
            assert node["in_inventory"] and node["reporting"]
            assert node["gpu_utilization_avg_percent"] == 78.0
            assert node["gpu_temperature_max_celsius"] == 61.0
            assert [g["uuid"] for g in node["gpus"]] == ["GPU-e2e-0", "GPU-e2e-1"]
            assert overview["totals"]["nodes_reporting"] == 1
    finally:
        server.stop()


@pytest.mark.engines
def test_an_alert_reaches_a_webhook_and_a_real_alertmanager_once(
        tmp_path: Path, recorder: Recorder, alertmanager_server: AlertmanagerServer) -> None:
    (tmp_path / "rules.yml").write_text(
        "groups:\n  - name: fast\n    interval: 1s\n    rules:\n"
        "      - alert: E2eHot\n        expr: e2e_temperature_celsius > 85\n")
    (tmp_path / "notify.yml").write_text(
        "route: {receiver: ops, group_by: [alertname], group_wait: 1s}\n"
        "receivers:\n  - name: ops\n"
        f"    webhook_configs: [{{url: '{recorder.url}/hook'}}]\n"
        f"    alertmanager_configs: [{{url: '{alertmanager_server.url}'}}]\n")
    config = tmp_path / "dcops.yaml"
    config.write_text(f"rules: {{paths: ['{tmp_path / 'rules.yml'}'], default_pack: false}}\n"
                      f"notifications: {{config_file: '{tmp_path / 'notify.yml'}'}}\n")
    args = ["--config", str(config)]
    server = DcopsProcess(tmp_path / "data", args=args).start()
    try:
        with server.client() as client:
            batch = Batch()
            batch.add(make_labels("e2e_temperature_celsius", {"node": "n7"}),
                      int(time.time() * 1000), 91.0)
            assert client.post("/api/v1/write", content=encode_write_request(batch),
                               headers={"Content-Encoding": "snappy"}).status_code == 204
            wait_for(lambda: len(recorder.received) == 1, 30, "the webhook notification")
            (alert,) = recorder.received[0].body["alerts"]
            assert alert["labels"] == {"alertname": "E2eHot", "node": "n7"}
            wait_for(lambda: len(alertmanager_server.alerts(filter='alertname="E2eHot"')) == 1,
                     30, "the alert in Alertmanager")
            (forwarded,) = alertmanager_server.alerts(filter='alertname="E2eHot"')
            assert forwarded["fingerprint"] == alert["fingerprint"]
        server.kill()  # kill -9: the firing alert and what was sent are in the state store
        server = DcopsProcess(tmp_path / "data", args=args).start()
        with server.client() as client:
            wait_for(lambda: any(e["event"] == "notified" and e["actor"] == "receiver/ops"
                                 for e in client.get("/api/v1/alerts/history").json()
                                 ["data"]["events"]), 10, "the history")
            time.sleep(3)  # several evaluations and a group flush after the restart
            assert len(recorder.received) == 1
            states = [a["state"] for a in client.get("/api/v1/alerts").json()["data"]["alerts"]]
            assert states == ["firing"]
    finally:
        server.stop()
