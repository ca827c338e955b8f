"""The agent against a real dcops server that goes away and comes back."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.agent.run import Agent
from dcops.settings import AgentSettings
from tests.api.process import DcopsProcess

pytestmark = pytest.mark.slow


def test_outage_delivers_everything_once_in_order(tmp_path: Path) -> None:
    server = DcopsProcess(tmp_path / "data").start()
    settings = AgentSettings(server_url=server.url, token_file=tmp_path / "data" / "admin.token",
                             spool_dir=tmp_path / "spool", node_name="outage-node")
    agent = Agent(settings, use_gpu=False)
    try:
        agent.collect_once()
        agent.deliver()
        assert len(agent.spool) == 0
        assert server.interrupt() == 0
        spooled = [seq for _ in range(5) for seq in agent.collect_once()]
        agent.deliver(deadline=0)
        assert len(agent.spool) == len(spooled) == 5
        server = DcopsProcess(tmp_path / "data", port=server.port).start()
        agent.collect_once()
        agent.deliver()
        assert len(agent.spool) == 0
        with server.client() as client:
            got = client.get("/api/v1/samples", params={
                "metric": "dcops_host_memory_used_bytes", "label": "node=outage-node",
                "start": 0, "end": 4e9}).json()["series"]
        times = [t for t, _ in got[0]["samples"]]
        assert len(times) == 7, "every collection stored exactly once"
        assert times == sorted(times) and len(set(times)) == 7
    finally:
        agent.close()
        server.stop()
