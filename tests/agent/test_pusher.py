"""The pusher against a real loopback HTTP server: every answer maps to the right outcome."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from dcops.agent.pusher import (
    GZIP_MIN_BYTES,
    Pusher,
    PushOutcome,
    decode_push,
    encode_push,
    read_token,
)
from tests.agent.push_server import PushServer
from tests.fixtures.engines import free_port


def push(seq: int, series: int = 1) -> dict[str, object]:
    return {"agent_id": "n1-abc", "seq": seq, "node": "n1", "gpus": [],
            "series": [{"labels": {"__name__": "dcops_host_load1", "node": "n1", "i": str(i)},
                        "samples": [[1_700_000_000_000, 0.5]]} for i in range(series)]}


def send(pusher: Pusher, body: dict[str, object]) -> PushOutcome:
    payload, gzipped = encode_push(body)
    return pusher.send(payload, gzipped=gzipped, seq=int(str(body["seq"])))


def test_small_push_is_plain_json_with_the_bearer_token(
        push_server: PushServer, token_file: Path) -> None:
    pusher = Pusher(push_server.url, token_file)
    assert send(pusher, push(0)) is PushOutcome.DELIVERED
    got = push_server.received[0]
    assert got.body == push(0)
    assert got.headers["Authorization"] == "Bearer dcops_agent_token_1"
    assert got.headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in got.headers
    pusher.close()


def test_large_push_is_gzipped(push_server: PushServer) -> None:
    body = push(0, series=200)
    payload, gzipped = encode_push(body)
    assert gzipped and len(payload) < GZIP_MIN_BYTES
    assert decode_push(payload, gzipped) == body
    pusher = Pusher(push_server.url, None)
    assert pusher.send(payload, gzipped=True, seq=0) is PushOutcome.DELIVERED
    got = push_server.received[0]
    assert got.headers["Content-Encoding"] == "gzip" and got.body == body
    assert "Authorization" not in got.headers
    assert json.loads(gzip.decompress(payload)) == body
    pusher.close()


def test_already_seen_seq_counts_as_delivered(push_server: PushServer) -> None:
    pusher = Pusher(push_server.url, None)
    assert send(pusher, push(7)) is PushOutcome.DELIVERED
    assert send(pusher, push(7)) is PushOutcome.DELIVERED
    assert push_server.seqs() == [7] and push_server.attempts == 2
    pusher.close()


@pytest.mark.parametrize(("status", "outcome"), [
    (400, PushOutcome.REJECTED), (404, PushOutcome.REJECTED), (422, PushOutcome.REJECTED),
    (401, PushOutcome.UNAUTHORIZED), (403, PushOutcome.UNAUTHORIZED),
    (413, PushOutcome.TOO_LARGE), (500, PushOutcome.RETRY), (503, PushOutcome.RETRY)])
def test_status_codes_decide_the_outcome(
        push_server: PushServer, status: int, outcome: PushOutcome) -> None:
    push_server.status = status
    pusher = Pusher(push_server.url, None)
    assert send(pusher, push(0)) is outcome
    pusher.close()


def test_unreachable_server_means_retry_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    pusher = Pusher(f"http://127.0.0.1:{free_port()}", None, timeout_s=2)
    with caplog.at_level(logging.WARNING, logger="dcops.agent.pusher"):
        assert send(pusher, push(0)) is PushOutcome.RETRY
        assert send(pusher, push(0)) is PushOutcome.RETRY
    assert len(caplog.records) == 1 and "unreachable" in caplog.records[0].getMessage()
    pusher.close()


def test_refused_token_is_reread_from_its_file(
        push_server: PushServer, token_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    pusher = Pusher(push_server.url, token_file)
    push_server.status = 401
    with caplog.at_level(logging.ERROR, logger="dcops.agent.pusher"):
        assert send(pusher, push(0)) is PushOutcome.UNAUTHORIZED
        assert send(pusher, push(0)) is PushOutcome.UNAUTHORIZED
    assert len(caplog.records) == 1 and "token" in caplog.records[0].getMessage()
    assert "dcops_agent_token_1" not in caplog.text
    token_file.write_text("fixed_token")
    push_server.status = None
    assert send(pusher, push(0)) is PushOutcome.DELIVERED
    assert push_server.received[0].headers["Authorization"] == "Bearer fixed_token"
    pusher.close()


def test_token_file_reading(tmp_path: Path) -> None:
    assert read_token(None) is None
    assert read_token(tmp_path / "missing") is None
    (tmp_path / "t").write_text("  s3cret \n")
    token = read_token(tmp_path / "t")
    assert token is not None and token.reveal() == "s3cret" and "s3cret" not in repr(token)
