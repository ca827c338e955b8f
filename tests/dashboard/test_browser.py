"""End to end in a real browser: `dcops up --demo` and the fleet overview page in Chromium.

One dcops (2 racks x 3 nodes x 4 GPUs, simulated) serves every test in this module; each
test opens the dashboard in a fresh Chromium profile, so no token survives between them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.api.process import DcopsProcess
from tests.fixtures.browser import BrowserPage, require_browser
from tests.fixtures.engines import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Route

pytestmark = pytest.mark.slow

OVERVIEW = "/api/v1/fleet/overview"
REFRESH_WAIT_MS = 12_000
"""The page refreshes every 5 s; allow a slow CI machine twice that and some."""


@pytest.fixture(scope="module")
def demo_dcops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DcopsProcess]:
    """`dcops up --demo` with a filled fleet overview, on a free loopback port."""
    require_browser()  # no server start when the tests would skip anyway
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    server = DcopsProcess(data_dir, "up", ["--demo", "--racks", "2", "--nodes-per-rack", "3",
                                           "--gpus-per-node", "4", "--no-agent"]).start()
    try:
        wait_for(lambda: "Ctrl-C to stop" in server.output(), 30, "the ready banner")

        def filled() -> bool:
            with server.client() as client:
                body = client.get(OVERVIEW).json()
            return bool(body["totals"]["gpus_reporting"] == 24)

        wait_for(filled, 30, "the demo fleet to report")
        yield server
    finally:
        server.stop()


def dashboard_link(server: DcopsProcess) -> str:
    """The dashboard address with its #token=... fragment, as the banner prints it."""
    link = re.search(r"dashboard\s+(http://\S+/#token=\S+)", server.output())
    assert link is not None, server.output()
    return link.group(1)


def test_dashboard_shows_the_demo_fleet_and_refreshes(
        demo_dcops: DcopsProcess, browser_page: BrowserPage, tmp_path: Path) -> None:
    page = browser_page.page
    link = dashboard_link(demo_dcops)
    assert link == f"{demo_dcops.url}/#token={demo_dcops.token}"

    with page.expect_response(lambda r: r.url.endswith(OVERVIEW)) as first:
        page.goto(link)
    assert first.value.status == 200
    page.locator(".node").nth(5).wait_for()

    # The secret has left the address bar (and the history entry).
    assert page.url == f"{demo_dcops.url}/"
    assert "token" not in page.evaluate("window.location.href")
    assert not page.locator("#login").is_visible()

    racks = page.locator("section.rack")
    assert racks.count() == 2
    assert [racks.nth(i).locator("h3").inner_text() for i in range(2)] == ["rack-01", "rack-02"]
    for i in range(2):
        assert racks.nth(i).locator(".node").count() == 3

    nodes = page.locator(".node")
    assert nodes.count() == 6
    for i in range(6):
        cell = nodes.nth(i)
        assert re.fullmatch(r"node-0[12]-0[123]", cell.locator(".node-name").inner_text())
        assert re.fullmatch(r"\d+%", cell.locator(".util").inner_text())
        assert re.fullmatch(r"\d+°C", cell.locator(".temp").inner_text())
        assert cell.locator(".gpu").count() == 4
        # Busy cells are tinted by utilization, not left at the idle default.
        assert cell.evaluate("e => e.style.backgroundColor").startswith("rgb")

    cards = {page.locator("#totals .card .label").nth(i).inner_text():
             page.locator("#totals .card .value").nth(i).inner_text()
             for i in range(page.locator("#totals .card").count())}
    assert cards["Nodes"] == "6 / 6"
    assert cards["GPUs"] == "24 / 24"
    assert re.fullmatch(r"\d+\.\d %", cards["Avg GPU util"])
    assert re.fullmatch(r"\d+ °C", cards["Max GPU temp"])

    status = page.locator("#status")
    shown = status.inner_text()
    assert shown.startswith("updated ")
    assert "error" not in (status.get_attribute("class") or "")
    before = first.value.json()["generated_at"]

    # The page polls by itself: a second fetch with a newer overview, and a new timestamp.
    with page.expect_response(lambda r: r.url.endswith(OVERVIEW),
                              timeout=REFRESH_WAIT_MS) as second:
        pass
    assert second.value.status == 200
    assert second.value.request.headers["authorization"] == f"Bearer {demo_dcops.token}"
    assert second.value.json()["generated_at"] > before
    page.wait_for_function(
        "t => document.getElementById('status').textContent !== t", arg=shown)
    assert status.inner_text().startswith("updated ")
    assert page.locator(".node").count() == 6

    page.screenshot(path=str(tmp_path / "fleet.png"), full_page=True)
    assert browser_page.page_errors == []
    assert browser_page.console_errors == []


def test_dashboard_without_a_token_asks_for_one(
        demo_dcops: DcopsProcess, browser_page: BrowserPage, tmp_path: Path) -> None:
    page = browser_page.page
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if OVERVIEW in r.url else None)
    page.goto(f"{demo_dcops.url}/")

    login = page.locator("#login")
    login.wait_for(state="visible")
    assert "API token" in login.inner_text()
    assert page.locator("#status").inner_text() == "not signed in"
    assert page.locator("#logout").is_hidden()
    assert page.locator("#login-token").is_visible()
    assert page.locator(".node").count() == 0
    assert page.locator("#totals .card").count() == 0
    assert fetched == []

    # Pasting the token into the prompt opens the dashboard.
    with page.expect_response(lambda r: r.url.endswith(OVERVIEW)) as response:
        page.locator("#login-token").fill(demo_dcops.token)
        page.locator("#login button[type=submit]").click()
    assert response.value.status == 200
    page.locator(".node").nth(5).wait_for()
    assert not login.is_visible()
    page.screenshot(path=str(tmp_path / "login.png"))
    assert browser_page.page_errors == []


def test_dashboard_with_a_wrong_token_says_so(
        demo_dcops: DcopsProcess, browser_page: BrowserPage, tmp_path: Path) -> None:
    page = browser_page.page
    with page.expect_response(lambda r: r.url.endswith(OVERVIEW)) as response:
        page.goto(f"{demo_dcops.url}/#token=dcops_not-a-real-token")
    assert response.value.status == 401

    login = page.locator("#login")
    login.wait_for(state="visible")
    assert "not accepted" in page.locator("#login-reason").inner_text()
    status = page.locator("#status")
    assert "not signed in" in status.inner_text()
    assert "error" in (status.get_attribute("class") or "")
    assert page.locator(".node").count() == 0
    # The rejected token is forgotten, so a reload asks again rather than retrying it.
    assert page.evaluate("window.localStorage.getItem('dcops_token')") is None
    assert page.locator("#logout").is_hidden()
    page.screenshot(path=str(tmp_path / "wrong-token.png"))
    assert browser_page.page_errors == []


def _mark_trouble(body: dict[str, Any]) -> dict[str, Any]:
    """The demo overview with node 1 hot and throttling, node 2 faulted, 3 draining, 4 silent."""
    nodes = [n for room in body["rooms"] for rack in room["racks"] for n in rack["nodes"]]
    hot, faulted, draining, silent = nodes[:4]
    hot["gpu_temperature_max_celsius"] = 91.0
    hot["gpus"][0].update(temperature_celsius=91.0, throttled=["hw_thermal_slowdown"])
    faulted["faults"] = 2
    faulted["gpus"][1]["faults"] = 2
    draining["state"] = "draining"
    silent["reporting"] = False
    return body


def test_dashboard_marks_hot_faulted_draining_and_silent_nodes(
        demo_dcops: DcopsProcess, browser_page: BrowserPage, tmp_path: Path) -> None:
    page = browser_page.page

    def trouble(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=json.dumps(_mark_trouble(response.json())))

    page.route(f"**{OVERVIEW}", trouble)
    page.goto(f"{demo_dcops.url}/#token={demo_dcops.token}")
    nodes = page.locator(".node")
    nodes.nth(5).wait_for()

    hot, faulted, draining, silent = (nodes.nth(i) for i in range(4))
    assert "hot" in (hot.get_attribute("class") or "")
    assert hot.locator(".temp").inner_text() == "91°C"
    assert "temp-hot" in (hot.locator(".temp").get_attribute("class") or "")
    assert "temp-hot" in (hot.locator(".gpu").first.get_attribute("class") or "")
    assert "throttled (hw_thermal_slowdown)" in (hot.get_attribute("title") or "")
    assert faulted.locator(".badge.fault").inner_text() == "⚠ 2"
    assert "gpu-fault" in (faulted.locator(".gpu").nth(1).get_attribute("class") or "")
    assert draining.locator(".badge.state").inner_text() == "draining"
    assert "not-active" in (draining.get_attribute("class") or "")
    assert "silent" in (silent.get_attribute("class") or "")
    assert silent.locator(".util").inner_text() == "no data"
    for quiet in (nodes.nth(4), nodes.nth(5)):
        assert quiet.get_attribute("class") == "node"
    page.screenshot(path=str(tmp_path / "trouble.png"))
    assert browser_page.page_errors == []
