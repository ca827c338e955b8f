"""/api/v1/rules, /api/v1/alerts and /-/reload: Prometheus's shapes, and reload errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from dcops.access.model import Role
from dcops.api.app import create_app
from dcops.core.clock import FakeClock
from dcops.settings import parse_settings
from dcops.telemetry.model import Batch, make_labels
from dcops.telemetry.remote_write import encode_write_request
from dcops.wiring import Services, build_memory_services
from tests.fixtures.prometheus import PrometheusFactory

RULES = """groups:
  - name: gpu
    interval: 15s
    rules:
      - record: node:temp:max
        expr: max by (node) (dcops_gpu_temperature_celsius)
      - alert: GpuTooHot
        expr: dcops_gpu_temperature_celsius > 85
        for: 30s
        labels: {severity: critical}
        annotations: {summary: "{{ $labels.node }} at {{ $value }} C"}
"""
NOW_S = 1_700_000_000


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Services, dict[str, str], Path]]:
    rules = tmp_path / "gpu.yml"
    rules.write_text(RULES)
    settings = parse_settings({"rules": {"paths": [str(rules)], "default_pack": False}})
    clock = FakeClock(NOW_S)
    services = build_memory_services(settings, clock)
    tokens = {role.value: services.tokens.create(role.value, role, NOW_S)[1] for role in Role}
    batch = Batch()
    for k in range(9):
        batch.add(make_labels("dcops_gpu_temperature_celsius", {"node": "n1", "gpu": "0"}),
                  (NOW_S - 120 + 15 * k) * 1000, 90.0)
    services.ingestor.accept(batch, "test")
    services.rules.reload()
    for k in range(4):  # evaluations at now - 45 s .. now
        services.rules.tick((NOW_S - 45 + 15 * k) * 1000)
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client, services, tokens, rules
    services.close()


def _get(client: TestClient, tokens: dict[str, str], path: str) -> Any:
    reply = client.get(path, headers={"Authorization": f"Bearer {tokens['viewer']}"})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_alerts_and_rules_in_prometheus_shapes(
        served: tuple[TestClient, Services, dict[str, str], Path]) -> None:
    client, _, tokens, rules = served
    alerts = _get(client, tokens, "/api/v1/alerts")
    assert alerts == {"status": "success", "data": {"alerts": [{
        "labels": {"alertname": "GpuTooHot", "gpu": "0", "node": "n1", "severity": "critical"},
        "annotations": {"summary": "n1 at 90 C"}, "state": "firing",
        "activeAt": "2023-11-14T22:12:30Z", "value": "9e+01"}]}}
    (group,) = _get(client, tokens, "/api/v1/rules")["data"]["groups"]
    assert (group["name"], group["file"], group["interval"]) == ("gpu", str(rules), 15)
    record, alert = group["rules"]
    assert (record["type"], record["health"], record["name"]) == ("recording", "ok",
                                                                  "node:temp:max")
    assert (alert["type"], alert["state"], alert["duration"], alert["health"]) == (
        "alerting", "firing", 30, "ok")
    assert alert["alerts"] == alerts["data"]["alerts"]
    only = _get(client, tokens, "/api/v1/rules?type=record")["data"]["groups"][0]["rules"]
    assert [r["type"] for r in only] == ["recording"]


def test_reload_needs_an_operator_and_a_bad_file_keeps_the_rules(
        served: tuple[TestClient, Services, dict[str, str], Path]) -> None:
    client, services, tokens, rules = served
    viewer = client.post("/-/reload", headers={"Authorization": f"Bearer {tokens['viewer']}"})
    assert viewer.status_code == 403
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    assert client.post("/-/reload", headers=operator).json() == {"groups": 1, "rules": 2}
    rules.write_text(RULES.replace("for: 30s", "for: thirty seconds"))
    bad = client.post("/-/reload", headers=operator)
    assert bad.status_code == 400
    assert bad.json()["where"] == f"{rules}:9" and "not a duration" in bad.json()["message"]
    assert len(services.rules.manager.alerts()) == 1  # the loaded rules and alerts stay


def _keys(value: Any) -> Any:
    """The shape of a JSON value: keys of objects, recursively; the first item of lists."""
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value else []
    return type(value).__name__


@pytest.mark.engines
def test_the_shapes_are_those_of_a_real_prometheus(
        served: tuple[TestClient, Services, dict[str, str], Path],
        prometheus_factory: PrometheusFactory, tmp_path: Path) -> None:
    client, _, tokens, _ = served
    quick = tmp_path / "quick.yml"  # the same rules, on a clock a test can wait for
    quick.write_text(RULES.replace("interval: 15s", "interval: 1s").replace("for: 30s",
                                                                             "for: 2s"))
    config = ("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
              f"rule_files: [{quick}]\nscrape_configs: []\n")
    server = prometheus_factory(config)
    now = time.time()
    batch = Batch()
    for k in range(25):
        batch.add(make_labels("dcops_gpu_temperature_celsius", {"node": "n1", "gpu": "0"}),
                  int((now - 60 + 2.5 * k) * 1000), 90.0)
    written = httpx.post(f"{server.url}/api/v1/write", content=encode_write_request(batch),
                         headers={"Content-Encoding": "snappy",
                                  "Content-Type": "application/x-protobuf"}, timeout=10)
    assert written.status_code == 204, written.text

    def firing() -> Any:
        reply = httpx.get(f"{server.url}/api/v1/rules", timeout=5).json()
        rules_now = reply["data"]["groups"][0]["rules"] if reply["data"]["groups"] else []
        return reply if any(r.get("state") == "firing" for r in rules_now) else None

    deadline = time.monotonic() + 60
    theirs = firing()
    while theirs is None and time.monotonic() < deadline:
        time.sleep(0.5)
        theirs = firing()
    assert theirs is not None, "prometheus never fired the alert"
    ours = _get(client, tokens, "/api/v1/rules")
    assert _keys(ours) == _keys(theirs)
    their_alerts = httpx.get(f"{server.url}/api/v1/alerts", timeout=5).json()
    assert _keys(_get(client, tokens, "/api/v1/alerts")) == _keys(their_alerts)


def test_alert_history_says_what_happened_and_who_did_it(
        served: tuple[TestClient, Services, dict[str, str], Path]) -> None:
    client, _, tokens, _ = served
    events = _get(client, tokens, "/api/v1/alerts/history")["data"]["events"]
    assert [(e["event"], e["actor"], e["alertname"]) for e in events] == [
        ("firing", "rules/gpu", "GpuTooHot")]
    firing = events[0]
    assert firing["at"] == "2023-11-14T22:13:00Z" and firing["value"] == 90.0
    assert firing["labels"] == {"alertname": "GpuTooHot", "gpu": "0", "node": "n1",
                                "severity": "critical"}
    by_print = _get(client, tokens, "/api/v1/alerts/history?fingerprint="
                    f"{firing['fingerprint']}&limit=1")["data"]["events"]
    assert [e["id"] for e in by_print] == [firing["id"]]
    assert _get(client, tokens, "/api/v1/alerts/history?alertname=Nope")["data"][
        "events"] == []
    assert len(_get(client, tokens, "/api/v1/alerts/history?since=20s")["data"][
        "events"]) == 1
    assert _get(client, tokens, "/api/v1/alerts/history?since=19s")["data"]["events"] == []


def test_alert_history_refuses_bad_filters(
        served: tuple[TestClient, Services, dict[str, str], Path]) -> None:
    client, _, tokens, _ = served
    headers = {"Authorization": f"Bearer {tokens['viewer']}"}
    reply = client.get("/api/v1/alerts/history?since=yesterday", headers=headers)
    assert reply.status_code == 400 and reply.json()["where"] == "since"
    reply = client.get("/api/v1/alerts/history?limit=0", headers=headers)
    assert reply.status_code in (400, 422) and "limit" in reply.text
