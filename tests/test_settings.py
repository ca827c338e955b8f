from __future__ import annotations

from pathlib import Path

import pytest

from dcops.core.errors import Invalid
from dcops.settings import load_settings, parse_settings


def test_defaults_need_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCOPS_CONFIG", raising=False)
    monkeypatch.delenv("DCOPS_DATA_DIR", raising=False)
    settings = load_settings()
    assert settings.server.host == "127.0.0.1"
    assert settings.storage.retention_days == 15
    assert settings.demo.racks * settings.demo.nodes_per_rack * settings.demo.gpus_per_node == 512
    assert load_settings(data_dir=tmp_path).storage.resolved_state_url() == (
        f"sqlite:///{tmp_path / 'state.db'}")


def test_a_file_overrides_parts(tmp_path: Path) -> None:
    path = tmp_path / "dcops.yaml"
    path.write_text("server: {port: 9999}\nscrape:\n  - {name: node, url: 'http://h:9100/metrics'}\n")
    settings = load_settings(path)
    assert settings.server.port == 9999
    assert settings.scrape[0].interval_s == 15
    assert settings.storage.retention_days == 15


@pytest.mark.parametrize(("text", "where", "message"), [
    ("server:\n  port: [1,\n", "dcops.yaml:3:1", "expected"),
    ("storage:\n  retention_days: -1\n", "storage.retention_days", "greater than 0"),
    ("server:\n  prot: 80\n", "server.prot", "Extra inputs"),
    ("- just\n- a list\n", "dcops.yaml", "mapping"),
    ("scrape:\n  - {url: 'http://x'}\n", "scrape.0.name", "required"),
])
def test_bad_config_says_what_and_where(tmp_path: Path, text: str, where: str,
                                        message: str) -> None:
    path = tmp_path / "dcops.yaml"
    path.write_text(text)
    with pytest.raises(Invalid) as caught:
        load_settings(path)
    assert where in (caught.value.where or ""), caught.value
    assert message in caught.value.message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as caught:
        load_settings(tmp_path / "nope.yaml")
    assert "cannot read config" in caught.value.message


def test_the_prometheus_backend_section(tmp_path: Path) -> None:
    path = tmp_path / "dcops.yaml"
    path.write_text("storage:\n  metrics_backend: prometheus\n  prometheus:\n"
                    "    url: http://mimir.example:8080/prometheus/\n"
                    "    write_url: http://mimir.example:8080/api/v1/push\n"
                    "    authorization: {credentials_file: /etc/dcops/mimir.token}\n"
                    "    headers: {X-Scope-OrgID: dc-ams1}\n    timeout_s: 5\n")
    prom = load_settings(path).storage.prometheus
    assert prom is not None
    assert prom.url == "http://mimir.example:8080/prometheus"
    assert prom.resolved_write_url() == "http://mimir.example:8080/api/v1/push"
    assert prom.authorization is not None and prom.authorization.type == "Bearer"
    assert prom.authorization.credentials_file == Path("/etc/dcops/mimir.token")
    assert prom.headers == {"X-Scope-OrgID": "dc-ams1"} and prom.timeout_s == 5
    path.write_text("storage:\n  metrics_backend: prometheus\n"
                    "  prometheus: {url: 'http://127.0.0.1:9090'}\n")
    prom = load_settings(path).storage.prometheus
    assert prom is not None and prom.resolved_write_url() == "http://127.0.0.1:9090/api/v1/write"
    assert prom.timeout_s == 30 and prom.authorization is None
    assert parse_settings({}).storage.prometheus is None
    assert parse_settings({}).storage.metrics_backend == "embedded"


@pytest.mark.parametrize(("text", "where", "message"), [
    ("storage:\n  metrics_backend: prometheus\n", "storage.prometheus.url", "Field required"),
    ("storage:\n  metrics_backend: prometheus\n  prometheus: {timeout_s: 5}\n",
     "storage.prometheus.url", "Field required"),
    ("storage:\n  prometheus: {url: 'prom:9090'}\n", "storage.prometheus.url", "http://"),
    ("storage:\n  metrics_backend: influx\n", "storage.metrics_backend",
     "'embedded' or 'prometheus'"),
    ("storage:\n  prometheus: {url: 'http://p', authorization: {type: Basic, "
     "credentials_file: t}}\n", "storage.prometheus.authorization.type", "'Bearer'"),
    ("storage:\n  prometheus: {url: 'http://p', timeout_s: 0}\n",
     "storage.prometheus.timeout_s", "greater than 0"),
])
def test_bad_prometheus_backend_config(tmp_path: Path, text: str, where: str,
                                       message: str) -> None:
    path = tmp_path / "dcops.yaml"
    path.write_text(text)
    with pytest.raises(Invalid) as caught:
        load_settings(path)
    assert caught.value.where == f"{path}: {where}"
    assert message in caught.value.message


def test_the_scheduling_section(tmp_path: Path) -> None:
    path = tmp_path / "dcops.yaml"
    path.write_text("scheduling:\n  policy: tiresias\n  local: {gpus_per_node: 2}\n"
                    "  tenants:\n    - {name: research, gpu_quota: 16, weight: 2}\n")
    scheduling = load_settings(path).scheduling
    assert (scheduling.policy, scheduling.executor, scheduling.local.gpus_per_node) == (
        "tiresias", "local", 2)
    assert [(t.name, t.gpu_quota, t.weight) for t in scheduling.tenants] == [
        ("research", 16, 2.0)]
    assert parse_settings({}).scheduling.policy == "fifo"


@pytest.mark.parametrize(("data", "where", "message"), [
    ({"policy": "lottery"}, "scheduling.policy",
     "unknown policy 'lottery'; one of: dcops, easy, fairshare, fifo"),
    ({"executor": "k8s"}, "scheduling.executor", "'local' or 'slurm'"),
    ({"tenants": [{"name": "a"}, {"name": "a"}]}, "scheduling.tenants",
     "tenant 'a' is listed more than once"),
    ({"tenants": [{"name": "a", "gpu_quota": -1}]}, "scheduling.tenants.0.gpu_quota",
     "greater than or equal to 0"),
    ({"local": {"gpus_per_node": 100}}, "scheduling.local.gpus_per_node", "less than"),
])
def test_bad_scheduling_settings_say_where(data: dict[str, object], where: str,
                                           message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_settings({"scheduling": data})
    assert caught.value.where == f"config: {where}"
    assert message in caught.value.message


def test_detection_settings_name_the_file_key_and_reason() -> None:
    from dcops.core.errors import Invalid as _Invalid

    default = parse_settings({}).detection
    assert default.enabled and [d.kind for d in default.detectors] == ["fleet"]
    cases = {
        "detection.detectors.0.kind: Value error, unknown detector kind 'nope'":
            {"name": "a", "kind": "nope", "selectors": ["x"]},
        "detection.detectors.0.selectors: Value error, 'x{' is not a PromQL expression":
            {"name": "a", "kind": "fleet", "selectors": ["x{"]},
        "exactly one selector": {"name": "a", "kind": "zscore", "selectors": ["x", "y"]},
        "does not take these params": {"name": "a", "kind": "fleet", "selectors": ["x"],
                                       "params": {"bogus": 1}},
        "detection.detectors.0.group_by: Value error, '1x' is not a label name":
            {"name": "a", "kind": "fleet", "selectors": ["x"], "group_by": ["1x"]},
    }
    for reason, detector in cases.items():
        with pytest.raises(_Invalid) as caught:
            parse_settings({"detection": {"detectors": [detector]}}, "dcops.yml")
        assert str(caught.value).startswith("dcops.yml: ") and reason in str(caught.value)
    with pytest.raises(_Invalid, match="listed more than once"):
        parse_settings({"detection": {"detectors": [
            {"name": "a", "kind": "fleet", "selectors": ["x"]}] * 2}}, "dcops.yml")
