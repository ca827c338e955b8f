"""The scraper against a real node_exporter, a port nobody listens on, and a bad page."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest

from dcops.backends.scraper import ACCEPT, Scraper, instance_of
from dcops.core.clock import FakeClock
from dcops.settings import ScrapeTarget
from dcops.telemetry.model import Batch, Matcher, MatchOp, labels_dict, metric_name, name_matcher
from dcops.telemetry.store import MemoryMetricsStore
from tests.fixtures.engines import free_port

START_S = 1_700_000_000.0


def names_in(batch: Batch) -> set[str]:
    return {metric_name(labels) for labels in batch.labels}


def value_of(batch: Batch, name: str) -> float:
    for labels, _, value in batch.samples():
        if metric_name(labels) == name:
            return value
    raise KeyError(name)


def test_instance_is_host_and_port() -> None:
    assert instance_of("http://10.0.0.5:9100/metrics") == "10.0.0.5:9100"
    assert instance_of("https://pdu-a01.example/metrics") == "pdu-a01.example:443"
    assert instance_of("http://[::1]:9400/metrics") == "[::1]:9400"


def test_accept_header_prefers_openmetrics_then_text() -> None:
    kinds = [part.split(";")[0] for part in ACCEPT.split(",")]
    assert kinds.index("application/openmetrics-text") < kinds.index("text/plain")


@pytest.mark.engines
def test_scrape_once_reads_node_exporter(node_exporter_url: str) -> None:
    target = ScrapeTarget(name="node", url=node_exporter_url, labels={"rack": "r01"})
    scraper = Scraper([target], MemoryMetricsStore(), FakeClock(START_S))
    result = asyncio.run(scraper.scrape_once(target))

    assert result.up and result.error is None
    assert result.ts_ms == int(START_S * 1000)
    names = names_in(result.batch)
    assert {"node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_load1"} <= names
    # The exporter's own summary arrives as Prometheus stores it.
    assert {"go_gc_duration_seconds", "go_gc_duration_seconds_count"} <= names
    cpu = next(labels_dict(labels) for labels in result.batch.labels
               if metric_name(labels) == "node_cpu_seconds_total")
    assert cpu["job"] == "node"
    assert cpu["instance"] == node_exporter_url.split("/")[2]
    assert cpu["rack"] == "r01" and cpu["mode"]
    assert value_of(result.batch, "up") == 1.0
    assert value_of(result.batch, "scrape_samples_scraped") == result.samples_scraped
    assert result.samples_scraped == len(result.batch) - 3 > 50
    assert 0 < value_of(result.batch, "scrape_duration_seconds") < 10


def test_down_target_gives_up_zero(caplog: pytest.LogCaptureFixture) -> None:
    target = ScrapeTarget(name="gone", url=f"http://127.0.0.1:{free_port()}/metrics",
                          timeout_s=2.0)
    scraper = Scraper([target], MemoryMetricsStore(), FakeClock(START_S))
    with caplog.at_level(logging.WARNING, logger="dcops.backends.scraper"):
        result = asyncio.run(scraper.scrape_once(target))
    assert not result.up
    assert result.error
    assert names_in(result.batch) == {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
    assert value_of(result.batch, "up") == 0.0
    assert value_of(result.batch, "scrape_samples_scraped") == 0.0
    assert "gone" in caplog.text and "down" in caplog.text


@pytest.mark.engines
def test_html_page_is_down_and_names_the_line(node_exporter_url: str) -> None:
    # node_exporter answers any other path with its HTML landing page.
    target = ScrapeTarget(name="landing", url=node_exporter_url.replace("/metrics", "/"))
    result = asyncio.run(Scraper([target], MemoryMetricsStore(), FakeClock()).scrape_once(target))
    assert not result.up
    assert result.error is not None and "line 1" in result.error


def test_http_error_status_is_down() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(503)))
    target = ScrapeTarget(name="busy", url="http://exporter.invalid:9100/metrics")
    scraper = Scraper([target], MemoryMetricsStore(), FakeClock(), client=client)
    result = asyncio.run(scraper.scrape_once(target))
    assert not result.up
    assert result.error == "server returned HTTP status 503"


def test_malformed_page_is_down_and_names_the_line() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"] == ACCEPT
        return httpx.Response(200, text="ok 1\nbad{x=1} 2\n",
                              headers={"content-type": "text/plain; version=0.0.4"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    target = ScrapeTarget(name="broken", url="http://exporter.invalid:9100/metrics")
    scraper = Scraper([target], MemoryMetricsStore(), FakeClock(), client=client)
    result = asyncio.run(scraper.scrape_once(target))
    assert not result.up
    assert result.error is not None and "line 2" in result.error
    assert result.samples_scraped == 0


@pytest.mark.engines
def test_run_loop_stores_samples_and_survives_a_down_target(node_exporter_url: str) -> None:
    store = MemoryMetricsStore()
    clock = FakeClock(START_S)
    targets = [
        ScrapeTarget(name="node", url=node_exporter_url, interval_s=0.1),
        ScrapeTarget(name="gone", url=f"http://127.0.0.1:{free_port()}/metrics",
                     interval_s=0.1, timeout_s=1.0),
    ]
    scraper = Scraper(targets, store, clock)

    def up_samples(job: str) -> int:
        series = store.select([name_matcher("up"), Matcher("job", MatchOp.EQ, job)], 0, 2**62)
        return sum(len(s.values) for s in series)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(scraper.run(stop))
        deadline = time.monotonic() + 15
        while min(up_samples("node"), up_samples("gone")) < 3 and time.monotonic() < deadline:
            clock.advance(0.1)
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(main())
    assert up_samples("node") >= 3 and up_samples("gone") >= 3
    cpu = store.latest([name_matcher("node_cpu_seconds_total"),
                        Matcher("job", MatchOp.EQ, "node")], 0)
    assert cpu and all(dict(s.labels)["instance"] == instance_of(node_exporter_url) for s in cpu)
    ups = {dict(s.labels)["job"]: s.value for s in store.latest([name_matcher("up")], 0)}
    assert ups == {"node": 1.0, "gone": 0.0}
