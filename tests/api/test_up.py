"""End to end: `dcops up --demo` fills the fleet overview from the agent and the demo fleet."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.api.process import DcopsProcess
from tests.fixtures.engines import wait_for

pytestmark = pytest.mark.slow


def test_up_demo_shows_the_fleet_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = DcopsProcess(data_dir, "up", ["--demo", "--racks", "2", "--nodes-per-rack", "3",
                                           "--gpus-per-node", "4"]).start()
    try:
        wait_for(lambda: "Ctrl-C to stop" in server.output(), 30, "the ready banner")
        banner = server.output()
        link = re.search(r"dashboard\s+(http://\S+)/#token=(\S+)", banner)
        assert link is not None, banner
        assert link.group(2) == server.token
        assert f"{server.url}/docs" in banner
        assert httpx.get(f"{server.url}/docs").status_code == 200
        page = httpx.get(f"{server.url}/")
        assert page.status_code == 200 and "<html" in page.text.lower()

        def overview() -> dict[str, object]:
            with server.client() as client:
                body: dict[str, object] = client.get("/api/v1/fleet/overview").json()
                return body

        def filled() -> bool:
            text = str(overview())
            return "rack-" in text and "utilization" in text

        wait_for(filled, 30, "the fleet overview to fill")
        with server.client() as client:
            nodes = client.get("/api/v1/nodes").json()
            assert len([n for n in nodes if n["rack"]]) == 6
            wait_for(lambda: len(client.get("/api/v1/nodes").json()) == 7, 40,
                     "the local agent's node to register")
            local = client.get("/api/v1/latest", params={
                "metric": "dcops_host_cpu_percent", "label": "cpu=total"}).json()
            assert len(local["series"]) >= 7
    finally:
        code = server.interrupt()
    assert code == 0, server.output()
    assert "Traceback" not in server.output()
