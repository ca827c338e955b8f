"""The agent end to end against a real loopback HTTP server: outages, restarts, bad pushes."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from dcops.agent.run import Agent, run_agent, split_batch
from dcops.core.clock import FakeClock
from dcops.settings import AgentSettings
from dcops.telemetry.model import Batch, make_labels
from dcops.telemetry.push import parse_push
from tests.agent.push_server import PushServer
from tests.agent.recorded_nvml import RecordedNvml
from tests.fixtures.engines import wait_for


def make_agent(settings: AgentSettings, *, retry_initial_s: float = 1.0,
               retry_max_s: float = 60.0) -> Agent:
    return Agent(settings, use_gpu=False, durable=False, retry_initial_s=retry_initial_s,
                 retry_max_s=retry_max_s)


def names(server: PushServer, i: int) -> set[str]:
    return {s["labels"]["__name__"] for s in server.received[i].body["series"]}


def test_one_collection_is_one_valid_push_with_host_gpu_and_inventory(
        settings: AgentSettings, push_server: PushServer) -> None:
    clock = FakeClock(1_700_000_000.0)
    agent = Agent(settings, nvml=RecordedNvml(), clock=clock, durable=False)
    assert agent.collect_once() == [0]
    assert agent.deliver() is None
    assert len(agent.spool) == 0
    body, batch = parse_push(push_server.received[0].body)  # the server's own validation
    assert body.node == "gpu-node-17" and body.seq == 0
    assert body.agent_id == agent.spool.agent_id
    assert [g.index for g in body.gpus] == list(range(8))
    assert body.gpus[0].model == "NVIDIA H100 80GB HBM3"
    assert {"dcops_host_cpu_percent", "dcops_gpu_temperature_celsius", "dcops_gpu_up",
            "dcops_agent_spool_pushes"} <= names(push_server, 0)
    assert {ts for _, ts, _ in batch.samples()} == {1_700_000_000_000}
    assert all(dict(labels)["node"] == "gpu-node-17" for labels in batch.labels)
    agent.close()


def test_collections_during_an_outage_are_delivered_afterwards_in_order(
        settings: AgentSettings, push_server: PushServer) -> None:
    agent = make_agent(settings)
    push_server.status = 503
    for _ in range(5):
        agent.collect_once()
        assert agent.deliver() is not None
    assert len(agent.spool) == 5 and push_server.received == []
    push_server.stop()  # now not even listening
    agent.collect_once()
    assert agent.deliver() is not None
    push_server.status = None
    push_server.start()
    agent.collect_once()
    assert agent.deliver() is None
    assert push_server.seqs() == list(range(7))
    assert len(agent.spool) == 0 and agent.delivered_total == 7
    agent.close()


def test_spooled_pushes_survive_an_agent_restart(
        settings: AgentSettings, push_server: PushServer) -> None:
    push_server.status = 500
    first = make_agent(settings)
    for _ in range(3):
        first.collect_once()
    first.deliver()
    first.close()
    second = make_agent(settings)
    assert len(second.spool) == 3
    assert second.collect_once() == [3]
    push_server.status = None
    assert second.deliver() is None
    assert push_server.seqs() == [0, 1, 2, 3]
    assert {r.body["agent_id"] for r in push_server.received} == {first.spool.agent_id}
    second.close()


def test_a_lost_reply_does_not_duplicate_a_push(
        settings: AgentSettings, push_server: PushServer) -> None:
    agent = make_agent(settings)
    push_server.drop_reply = True
    agent.collect_once()
    assert agent.deliver() is not None  # the server stored it, the agent never heard
    push_server.drop_reply = False
    agent.collect_once()
    assert agent.deliver() is None  # seq 0 again: 409, counted as delivered
    assert push_server.seqs() == [0, 1]
    assert len(agent.spool) == 0
    agent.close()


def test_a_bad_push_is_dropped_and_the_queue_moves_on(
        settings: AgentSettings, push_server: PushServer,
        caplog: pytest.LogCaptureFixture) -> None:
    agent = make_agent(settings)
    agent.collect_once()
    entry = agent.spool.peek()
    assert entry is not None
    entry.path.write_bytes(b"{not json")  # what the server answers 400 to
    agent.collect_once()
    with caplog.at_level(logging.ERROR, logger="dcops.agent.pusher"):
        assert agent.deliver() is None
    assert push_server.seqs() == [1]
    assert agent.rejected_total == 1
    assert "seq 0 with HTTP 400" in caplog.text
    agent.close()


def test_refused_token_keeps_spooling_until_fixed(
        settings: AgentSettings, push_server: PushServer, token_file: Path) -> None:
    agent = make_agent(settings)
    push_server.status = 401
    agent.collect_once()
    agent.collect_once()
    assert agent.deliver() is not None
    assert len(agent.spool) == 2
    push_server.status = None
    assert agent.deliver() is None
    assert push_server.seqs() == [0, 1]
    agent.close()


def test_too_large_push_is_split(settings: AgentSettings, push_server: PushServer) -> None:
    agent = make_agent(settings)
    agent.collect_once()
    push_server.max_series = 50
    assert agent.deliver() is None
    assert push_server.seqs()[:2] == [1, 2]
    assert all(len(r.body["series"]) <= 50 for r in push_server.received)
    total = sum(len(r.body["series"]) for r in push_server.received)
    agent.close()
    assert total > 50


def test_split_batch_caps_samples_per_push() -> None:
    batch = Batch()
    for i in range(10):
        batch.add(make_labels("m", {"i": str(i)}), 1, float(i))
    parts = split_batch(batch, 4)
    assert [len(p) for p in parts] == [4, 4, 2]
    assert [v for p in parts for v in p.values] == [float(i) for i in range(10)]
    assert split_batch(batch, 10) == [batch]


def test_batch_max_samples_splits_a_collection_into_consecutive_seqs(
        settings: AgentSettings, push_server: PushServer) -> None:
    agent = make_agent(settings.model_copy(update={"batch_max_samples": 30}))
    seqs = agent.collect_once()
    assert len(seqs) > 1 and seqs == list(range(len(seqs)))
    assert agent.deliver() is None
    assert all(sum(len(s["samples"]) for s in r.body["series"]) <= 30
               for r in push_server.received)
    agent.close()


def test_running_agent_rides_out_an_outage(
        settings: AgentSettings, push_server: PushServer) -> None:
    agent = make_agent(settings, retry_initial_s=0.02, retry_max_s=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: len(push_server.received) >= 2, 10, "first pushes")
        push_server.stop()
        wait_for(lambda: len(agent.spool) >= 4, 10, "pushes spooled during the outage")
        push_server.start()
        wait_for(lambda: len(push_server.received) >= 8 and len(agent.spool) == 0, 10,
                 "spool drained")
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    seqs = push_server.seqs()
    assert seqs == list(range(len(seqs)))  # in order, none lost, none twice
    agent.close()


def test_run_agent_once_delivers_one_collection(
        settings: AgentSettings, push_server: PushServer) -> None:
    run_agent(settings, threading.Event(), nvml=RecordedNvml(), once=True)
    assert push_server.seqs() == [0]
    assert len(push_server.received[0].body["gpus"]) == 8


def test_run_agent_stops_when_told(settings: AgentSettings, push_server: PushServer) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=run_agent, args=(settings, stop),
                              kwargs={"nvml": RecordedNvml()})
    thread.start()
    wait_for(lambda: len(push_server.received) >= 3, 10, "three pushes")
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
