"""The scraper: pulls Prometheus exporters (node_exporter, dcgm-exporter, PDUs) into the store.

It behaves like a Prometheus scrape loop: each target is fetched every `interval_s`
with an Accept header preferring OpenMetrics, every series gets ``job`` (the target's
name) and ``instance`` (host:port) plus the target's own labels, and every scrape also
writes ``up``, ``scrape_duration_seconds`` and ``scrape_samples_scraped``. A target
that fails is recorded as ``up 0`` and logged; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import httpx

from dcops.core.clock import Clock, now_ms
from dcops.core.errors import Invalid
from dcops.settings import ScrapeTarget
from dcops.telemetry.exposition import parse_exposition
from dcops.telemetry.model import Batch, make_labels
from dcops.telemetry.store import MetricsStore

log = logging.getLogger(__name__)

ACCEPT = (
    "application/openmetrics-text;version=1.0.0,"
    "application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,"
    "*/*;q=0.1"
)
"""What Prometheus sends: OpenMetrics first, then the classic text format."""

USER_AGENT = "dcops-scraper"
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """The outcome of fetching one target once: its samples plus the scrape's own series."""

    target: str
    instance: str
    ts_ms: int
    up: bool
    duration_s: float
    samples_scraped: int
    batch: Batch = field(repr=False)
    error: str | None = None


def instance_of(url: str) -> str:
    """The ``instance`` label of a target: host:port of its URL, with the scheme's port."""
    parsed = httpx.URL(url)
    port = parsed.port or DEFAULT_PORTS.get(parsed.scheme, 80)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{host}:{port}"


def target_labels(target: ScrapeTarget) -> dict[str, str]:
    """The labels added to every series of `target`: job, instance, then its own labels."""
    return {"job": target.name, "instance": instance_of(target.url), **target.labels}


class Scraper:
    """Scrapes every configured target at its interval and appends the samples to a store."""

    def __init__(
        self,
        targets: list[ScrapeTarget],
        store: MetricsStore,
        clock: Clock,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        names = [t.name for t in targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise Invalid(f"scrape target names must be unique; repeated: {', '.join(dupes)}",
                          where="config: scrape")
        self.targets = list(targets)
        self._store = store
        self._clock = clock
        self._client = client
        self._was_up: dict[str, bool] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Scrape every target until `stop` is set; returns once all loops have ended."""
        if not self.targets:
            await stop.wait()
            return
        owned = self._client is None
        client = self._client or httpx.AsyncClient(follow_redirects=True)
        try:
            async with asyncio.TaskGroup() as group:
                for target in self.targets:
                    group.create_task(self._loop(target, stop, client))
        finally:
            if owned:
                await client.aclose()

    async def _loop(self, target: ScrapeTarget, stop: asyncio.Event,
                    client: httpx.AsyncClient) -> None:
        started = time.monotonic()
        rounds = 0
        while not stop.is_set():
            result = await self._scrape(target, client)
            try:
                await asyncio.to_thread(self._store.append, result.batch)
            except Exception:
                log.exception("scrape target %s: could not store %d samples",
                              target.name, len(result.batch))
            rounds += 1
            # Keep a fixed cadence; skip rounds that a slow scrape or store overran.
            next_at = started + rounds * target.interval_s
            now = time.monotonic()
            if next_at < now:
                rounds = int((now - started) // target.interval_s) + 1
                next_at = started + rounds * target.interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=next_at - now)

    async def scrape_once(self, target: ScrapeTarget) -> ScrapeResult:
        """Fetch `target` once and return its samples; nothing is written to the store."""
        if self._client is not None:
            return await self._scrape(target, self._client)
        async with httpx.AsyncClient(follow_redirects=True) as client:
            return await self._scrape(target, client)

    async def _scrape(self, target: ScrapeTarget, client: httpx.AsyncClient) -> ScrapeResult:
        labels = target_labels(target)
        ts_ms = now_ms(self._clock)
        began = time.perf_counter()
        batch = Batch()
        error: str | None = None
        try:
            response = await client.get(
                target.url,
                headers={
                    "Accept": ACCEPT,
                    "User-Agent": USER_AGENT,
                    "X-Prometheus-Scrape-Timeout-Seconds": f"{target.timeout_s:g}",
                },
                timeout=target.timeout_s,
            )
            if response.status_code != 200:
                error = f"server returned HTTP status {response.status_code}"
            else:
                batch = parse_exposition(
                    response.text,
                    content_type=response.headers.get("content-type"),
                    default_ts_ms=ts_ms,
                    extra_labels=labels,
                )
        except httpx.TimeoutException:
            error = f"timed out after {target.timeout_s:g}s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except Invalid as exc:
            error = str(exc)
        duration_s = time.perf_counter() - began
        if error is not None:
            batch = Batch()
        scraped = len(batch)
        up = error is None
        for name, value in (
            ("up", 1.0 if up else 0.0),
            ("scrape_duration_seconds", duration_s),
            ("scrape_samples_scraped", float(scraped)),
        ):
            batch.add(make_labels(name, labels), ts_ms, value)
        self._note(target, up, error)
        return ScrapeResult(target=target.name, instance=labels["instance"], ts_ms=ts_ms, up=up,
                            duration_s=duration_s, samples_scraped=scraped, batch=batch,
                            error=error)

    def _note(self, target: ScrapeTarget, up: bool, error: str | None) -> None:
        was_up = self._was_up.get(target.name)
        self._was_up[target.name] = up
        if not up and was_up is not False:
            log.warning("scrape target %s (%s) is down: %s", target.name, target.url, error)
        elif not up:
            log.debug("scrape target %s (%s) still down: %s", target.name, target.url, error)
        elif was_up is False:
            log.info("scrape target %s (%s) is up again", target.name, target.url)
