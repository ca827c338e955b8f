from __future__ import annotations

from pathlib import Path

import pytest

from dcops.core.errors import Invalid
from dcops.settings import load_settings


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
