"""Running the control plane: the HTTP server plus its background loops.

`dcops up` and `dcops serve` call `run`. Background work (scraping exporters, the
simulated fleet, compaction, the local agent, the scheduler's tick, anomaly detection,
backups)
starts with the server and stops with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn
from starlette.concurrency import run_in_threadpool

from dcops.access.model import Role
from dcops.api.app import create_app
from dcops.settings import AgentSettings
from dcops.wiring import AGENT_TOKEN_FILE, Services, ensure_token_file

log = logging.getLogger(__name__)

COMPACT_EVERY_S = 600.0
RULES_EVERY_S = 1.0
"""How often the rule manager looks for due groups and changed rule files (the dispatcher
is woken sooner when a group is due to be flushed)."""
SETTLE_EVERY_S = 600.0
"""How often long-lived objects are moved out of the garbage collector's way."""
OUTBOX_KEEP_S = 86_400.0
"""How long finished deliveries stay in the outbox (for inspection) before they go."""


@dataclass(frozen=True)
class RunOptions:
    """What to run beside the API."""

    demo: bool = False
    local_agent: bool = False


async def _every(interval_s: float, stop: asyncio.Event, work: Callable[[], None],
                 what: str) -> None:
    while not stop.is_set():
        try:
            await run_in_threadpool(work)
        except Exception:
            log.exception("%s failed; will retry in %.0fs", what, interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


YOUNG_GENERATION = 100_000
"""Allocations between two collections of the youngest generation (Python's default: 700).
A rule cycle over a large fleet makes a few hundred thousand short-lived tuples and floats;
with the default, every cycle ran several full collections, each a tenth of a second or
more on ~100k series, at the moment alerts went firing."""


def settle_memory() -> None:
    """Collect garbage, then freeze what is left (`gc.freeze`): the series, label index and
    alerts that a control plane keeps for hours are no longer walked by every full
    collection, which otherwise costs a few tenths of a second each time on a large fleet.
    Their memory is still freed by reference counting when they go; only garbage in
    reference cycles among frozen objects would stay, and dcops's stores make none. The
    youngest generation is collected every `YOUNG_GENERATION` allocations."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, older, oldest)


def _pipeline_threads(services: Services, stop: threading.Event) -> list[threading.Thread]:
    """Rules and dispatch in one thread, delivery in another (a slow receiver never holds
    up rule evaluation)."""
    pipeline = services.pipeline
    threads = [threading.Thread(target=pipeline.run, args=(stop, RULES_EVERY_S),
                                name="alerting", daemon=True),
               threading.Thread(target=pipeline.run_delivery, args=(stop,), name="delivery",
                                daemon=True)]
    for thread in threads:
        thread.start()
    return threads


def _scheduling_thread(services: Services, stop: threading.Event) -> threading.Thread:
    """The scheduler's tick in a thread of its own (starting a job spawns a process or
    runs sbatch, which must not hold up the event loop)."""
    interval_s = services.settings.scheduling.tick_interval_s
    thread = threading.Thread(target=services.jobs.run, args=(stop, interval_s),
                              name="scheduling", daemon=True)
    thread.start()
    return thread


def _remediation_thread(services: Services, stop: threading.Event) -> threading.Thread | None:
    """Diagnosis and remediation in a thread of their own, woken by each fault signal (a
    drain runs scontrol, a playbook runs Ansible: neither may hold up the event loop)."""
    service = services.remediation
    if service is None:
        return None
    thread = threading.Thread(target=service.run,
                              args=(stop, services.settings.remediation.tick_s),
                              name="remediation", daemon=True)
    thread.start()
    return thread


def _detection_thread(services: Services, stop: threading.Event) -> threading.Thread | None:
    """Anomaly detectors in a thread of their own (a tick over a large fleet reads and
    scores every GPU's series, which must not hold up the event loop)."""
    service = services.detection
    if service is None:
        return None
    thread = threading.Thread(target=service.run, args=(stop,), name="detection", daemon=True)
    thread.start()
    return thread


def _backup_thread(services: Services, stop: threading.Event) -> threading.Thread | None:
    """Backups in a thread of their own, one run at a time (a run reads and uploads whole
    checkpoint directories, which must not hold up the event loop)."""
    service = services.backup
    if service is None:
        return None
    thread = threading.Thread(target=service.run, args=(stop,), name="backup", daemon=True)
    thread.start()
    return thread


def _demo_loop(services: Services, stop: asyncio.Event) -> asyncio.Task[None]:
    from dcops.fleet.sync import upsert_all
    from dcops.simulation.fleet import SimulatedFleet

    demo = services.settings.demo
    fleet = SimulatedFleet(racks=demo.racks, nodes_per_rack=demo.nodes_per_rack,
                           gpus_per_node=demo.gpus_per_node, seed=demo.seed)
    upsert_all(services.inventory, fleet.inventory_objects())
    if services.remediation is not None:  # its nodes are simulated: so are their drains
        from dcops.remediation.memory import FallbackActuator, MemoryActuator

        remediator = services.remediation.remediator
        remediator.use_actuator(FallbackActuator(remediator.actuator,
                                                 MemoryActuator(fleet.node_names)))

    def tick() -> None:
        services.ingestor.accept(fleet.tick(int(services.clock.now() * 1000)), "demo")

    return asyncio.create_task(_every(demo.interval_s, stop, tick, "simulated fleet"))


def _agent_thread(services: Services, base_url: str, stop: threading.Event) -> threading.Thread:
    from dcops.agent.run import run_agent

    token_file = ensure_token_file(services, AGENT_TOKEN_FILE, "local-agent", Role.OPERATOR)
    settings = services.settings.agent
    agent_settings = AgentSettings(
        server_url=base_url, token_file=token_file, interval_s=settings.interval_s,
        spool_dir=settings.spool_dir or services.data_dir / "spool",
        spool_max_mb=settings.spool_max_mb, node_name=settings.node_name,
        batch_max_samples=settings.batch_max_samples)
    thread = threading.Thread(target=run_agent, args=(agent_settings, stop), name="agent",
                              daemon=True)
    thread.start()
    return thread


async def serve(services: Services, options: RunOptions,
                on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted; background loops run beside the server."""
    cfg = services.settings.server
    services.rules.reload()  # a rule file that does not load stops the start, as in Prometheus
    services.pipeline.load()  # and so does a notification file (Alertmanager does the same)
    app = create_app(services)
    server = uvicorn.Server(uvicorn.Config(app, host=cfg.host, port=cfg.port,
                                           log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=5))
    stop = asyncio.Event()
    thread_stop = threading.Event()
    tasks: list[asyncio.Task[None]] = []
    threads: list[threading.Thread] = []

    def compact() -> None:
        services.store.compact(int(services.clock.now() * 1000))
        services.pipeline.outbox.prune(services.clock.now() - OUTBOX_KEEP_S)

    tasks.append(asyncio.create_task(_every(COMPACT_EVERY_S, stop, compact, "compaction")))
    tasks.append(asyncio.create_task(_every(SETTLE_EVERY_S, stop, settle_memory,
                                            "settling memory")))
    threads += _pipeline_threads(services, thread_stop)
    if services.settings.scheduling.enabled:
        threads.append(_scheduling_thread(services, thread_stop))
    remediation = _remediation_thread(services, thread_stop)
    if remediation is not None:
        threads.append(remediation)
    detection = _detection_thread(services, thread_stop)
    if detection is not None:
        threads.append(detection)
    backup = _backup_thread(services, thread_stop)
    if backup is not None:
        threads.append(backup)
    if services.settings.scrape:
        from dcops.backends.scraper import Scraper

        scraper = Scraper(list(services.settings.scrape), services.store, services.clock)
        tasks.append(asyncio.create_task(scraper.run(stop)))
    if options.demo:
        tasks.append(_demo_loop(services, stop))

    async def when_ready() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        port = cfg.port
        for sock_server in getattr(server, "servers", []):
            for sock in sock_server.sockets:
                port = sock.getsockname()[1]
        base_url = f"http://{cfg.host}:{port}"
        if options.local_agent:
            threads.append(_agent_thread(services, base_url, thread_stop))
        if on_ready is not None:
            on_ready(base_url)

    ready = asyncio.create_task(when_ready())
    try:
        await server.serve()
    finally:
        ready.cancel()
        stop.set()
        thread_stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, ready, return_exceptions=True)
        for thread in threads:
            thread.join(timeout=10)
