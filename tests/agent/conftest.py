"""Fixtures of the agent tests: a stub push server and agent settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dcops.settings import AgentSettings
from tests.agent.push_server import PushServer


@pytest.fixture
def push_server() -> Iterator[PushServer]:
    server = PushServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "agent.token"
    path.write_text("dcops_agent_token_1\n")
    return path


@pytest.fixture
def settings(tmp_path: Path, push_server: PushServer, token_file: Path) -> AgentSettings:
    return AgentSettings(server_url=push_server.url, token_file=token_file, interval_s=0.05,
                         spool_dir=tmp_path / "spool", node_name="gpu-node-17")
