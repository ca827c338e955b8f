"""The anomaly scores on the dashboard, in a real browser: `dcops up --demo` with its
detectors scoring the simulated fleet every 2 s; the page lists the top scores, each with a
sparkline of its ``dcops_anomaly_score`` history from the PromQL API, and marks a node
whose score is high with a badge that says why."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.api.process import DcopsProcess
from tests.fixtures.browser import BrowserPage, require_browser
from tests.fixtures.engines import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Route

pytestmark = pytest.mark.slow

SCORES = "/api/v1/detection/scores"
CONFIG = """demo: {interval_s: 1}
detection: {interval_s: 2, delay_s: 0}
"""


@pytest.fixture(scope="module")
def scored_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DcopsProcess]:
    """The demo fleet (2 racks x 3 nodes x 4 GPUs) once its detector has scored it a while."""
    require_browser()
    root = tmp_path_factory.mktemp("anomaly-browser")
    (root / "dcops.yaml").write_text(CONFIG)
    server = DcopsProcess(root / "data", "up", [
        "--demo", "--racks", "2", "--nodes-per-rack", "3", "--gpus-per-node", "4",
        "--no-agent", "--config", str(root / "dcops.yaml")]).start()
    try:
        def scored() -> bool:
            with server.client() as client:
                body = client.get(SCORES, params={"limit": 1000}).json()
            return bool(body["count"] == 24)

        wait_for(scored, 30, "the detector to score all 24 GPUs")

        def history() -> bool:  # enough of it for a sparkline at the page's 10 s step
            with server.client() as client:
                now = time.time()
                body = client.get("/api/v1/query_range", params={
                    "query": "max(dcops_anomaly_score)", "start": now - 1800, "end": now,
                    "step": 10}).json()
            result = body["data"]["result"]
            return bool(result and len(result[0]["values"]) >= 3)

        wait_for(history, 60, "30 s of anomaly scores")
        wait_for(lambda: "Ctrl-C to stop" in server.output(), 30, "the ready banner")
        yield server
    finally:
        server.stop()


def test_the_top_anomaly_scores_are_listed_with_sparklines(
        scored_demo: DcopsProcess, browser_page: BrowserPage, tmp_path: Path) -> None:
    page = browser_page.page
    with page.expect_response(lambda r: SCORES in r.url) as scores:
        page.goto(f"{scored_demo.url}/#token={scored_demo.token}")
    assert scores.value.status == 200
    box = page.locator("#anomalies")
    box.locator(".anomaly-row").nth(4).wait_for()
    assert box.locator("h2").inner_text() == "Anomaly scores"
    rows = box.locator(".anomaly-row")
    assert rows.count() == 5
    listed = [float(rows.nth(i).locator(".anomaly-score").inner_text()) for i in range(5)]
    assert listed == sorted(listed, reverse=True) and all(0 <= s <= 1 for s in listed)
    assert "node=node-0" in rows.nth(0).locator(".anomaly-series").inner_text()
    assert "peers' median" in rows.nth(0).locator(".anomaly-why").inner_text()
    points = rows.nth(0).locator("svg.spark polyline").get_attribute("points") or ""
    assert len(points.split()) >= 3  # a history, not one dot
    page.screenshot(path=str(tmp_path / "anomalies.png"), full_page=True)
    assert browser_page.page_errors == [] and browser_page.console_errors == []


def test_a_node_with_a_high_score_gets_a_badge_that_says_why(
        scored_demo: DcopsProcess, browser_page: BrowserPage, tmp_path: Path) -> None:
    page = browser_page.page

    def one_hot(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        for s in body["scores"]:
            s["score"], s["firing"] = 0.0, False
        target = next(s for s in body["scores"] if s["labels"]["node"] == "node-01-02")
        target.update(score=0.95, firing=True)
        body["scores"].sort(key=lambda s: -s["score"])
        route.fulfill(response=response, body=json.dumps(body))

    page.route(f"**{SCORES}*", one_hot)
    page.goto(f"{scored_demo.url}/#token={scored_demo.token}")
    badge = page.locator(".node", has_text="node-01-02").locator(".badge.anomaly")
    badge.wait_for()
    assert badge.inner_text() == "◆ 0.95"
    assert "anomaly-high" in (badge.get_attribute("class") or "")
    assert "gpu-temperature-vs-peers" in (badge.get_attribute("title") or "")
    assert page.locator(".badge.anomaly").count() == 2  # that node, and the legend's
    first = page.locator("#anomalies .anomaly-row").first
    assert "firing" in (first.get_attribute("class") or "")
    assert first.locator(".anomaly-score").inner_text() == "0.95"
    page.screenshot(path=str(tmp_path / "anomaly-badge.png"), full_page=True)
    assert browser_page.page_errors == []
