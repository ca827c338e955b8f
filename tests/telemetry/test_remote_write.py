"""remote_write 1.0 codec: round trips, clear errors, and both directions with a real Prometheus."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cramjam
import httpx
import pytest

from dcops.core.errors import Invalid
from dcops.telemetry import prompb
from dcops.telemetry.model import Batch, Labels, make_labels
from dcops.telemetry.remote_write import decode_write_request, encode_write_request
from tests.fixtures.engines import free_port, wait_for
from tests.fixtures.prometheus import SELF_SCRAPE_CONFIG, PrometheusFactory, PrometheusServer

T0 = 1_700_000_000_000


def gpu_batch() -> Batch:
    batch = Batch()
    for node in ("n1", "n2"):
        for g in range(2):
            labels = make_labels("dcgm_gpu_temp", {"node": node, "gpu": str(g), "rack": "r1"})
            batch.add(labels, T0, 40.0 + g)
            batch.add(labels, T0 + 15_000, 41.5 + g)
    batch.add(make_labels("up", {"job": "dcgm"}), T0, 1.0)
    return batch


def as_set(batch: Batch) -> set[tuple[Labels, int, float]]:
    return set(batch.samples())


def raw_request(series: list[tuple[list[tuple[str, str]], list[tuple[int, float]]]]) -> bytes:
    request = prompb.WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, value in labels:
            ts.labels.add(name=name, value=value)
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def test_round_trip_keeps_every_sample() -> None:
    batch = gpu_batch()
    decoded = decode_write_request(encode_write_request(batch))
    assert as_set(decoded) == as_set(batch)
    assert len(decoded.labels) == 5
    assert decode_write_request(encode_write_request(Batch())).labels == []


def test_repeated_series_in_one_request_share_one_label_set() -> None:
    labels = [("__name__", "up"), ("job", "node")]
    body = raw_request([(labels, [(T0, 1.0)]), (list(reversed(labels)), [(T0 + 1, 0.0)])])
    decoded = decode_write_request(body)
    assert decoded.labels == [(("__name__", "up"), ("job", "node"))]
    assert decoded.series_index == [0, 0]
    assert decoded.ts_ms == [T0, T0 + 1] and decoded.values == [1.0, 0.0]


def test_empty_label_values_are_dropped_and_special_values_kept() -> None:
    body = raw_request([([("__name__", "x"), ("a", "")], [(T0, math.inf), (T0 + 1, math.nan)])])
    decoded = decode_write_request(body)
    assert decoded.labels == [(("__name__", "x"),)]
    assert decoded.values[0] == math.inf and math.isnan(decoded.values[1])


@pytest.mark.parametrize(
    "series",
    [
        # one sample per series (the fast path), a zero value left off the wire
        [([("__name__", "a")], [(T0, 0.0)]), ([("__name__", "b")], [(T0, 2.0)])],
        # zero timestamp and value, a series without samples, a series sent twice
        [([("__name__", "a")], [(0, 0.0), (5, 1.0)]), ([("__name__", "b")], []),
         ([("__name__", "c")], [(T0, 0.0)]), ([("__name__", "a")], [(7, 2.0)])],
        # as many samples as series, but not one each
        [([("__name__", "a")], [(1, 1.0), (2, 2.0)]), ([("__name__", "b")], [])],
    ],
)
def test_columns_are_exact_with_zeros_and_uneven_series(
    series: list[tuple[list[tuple[str, str]], list[tuple[int, float]]]],
) -> None:
    decoded = decode_write_request(raw_request(series))
    got = sorted((dict(labels)["__name__"], ts, v) for labels, ts, v in decoded.samples())
    want = sorted((dict(labels)["__name__"], ts, v) for labels, points in series
                  for ts, v in points)
    assert got == want
    assert len(set(decoded.labels)) == len(decoded.labels)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xff\xff\xff\xff\xff", "snappy"),
        (bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff")), "protobuf"),
        (raw_request([([("job", "x")], [(T0, 1.0)])]), "no __name__"),
        (raw_request([([("__name__", "x"), ("bad-name", "1")], [(T0, 1.0)])]), "label name"),
        (raw_request([([("__name__", "1bad")], [(T0, 1.0)])]), "metric name"),
    ],
)
def test_bad_bodies_raise_invalid_with_a_clear_message(body: bytes, message: str) -> None:
    with pytest.raises(Invalid, match=message) as caught:
        decode_write_request(body)
    assert caught.value.where is not None and "remote_write" in caught.value.where


def test_too_large_after_decompression_is_refused_before_inflating() -> None:
    body = bytes(cramjam.snappy.compress_raw(b"\0" * 100_000))
    with pytest.raises(Invalid, match="exceeds limit 1000"):
        decode_write_request(body, max_bytes=1000)


@pytest.mark.engines
def test_real_prometheus_accepts_what_we_encode(prometheus_server: PrometheusServer) -> None:
    now_ms = int(time.time() * 1000)
    batch = Batch()
    for g in range(4):
        batch.add(make_labels("dcops_test_gpu_power_watts", {"gpu": str(g), "node": "n1"}),
                  now_ms, 300.0 + g)
    reply = httpx.post(f"{prometheus_server.url}/api/v1/write",
                       content=encode_write_request(batch),
                       headers={"Content-Encoding": "snappy",
                                "Content-Type": "application/x-protobuf",
                                "X-Prometheus-Remote-Write-Version": "0.1.0"})
    assert reply.status_code == 204, reply.text
    result = prometheus_server.query("dcops_test_gpu_power_watts", at_s=now_ms / 1000)
    got = {r["metric"]["gpu"]: float(r["value"][1]) for r in result}
    assert got == {"0": 300.0, "1": 301.0, "2": 302.0, "3": 303.0}


class _Receiver:
    """A tiny remote_write endpoint that decodes every body it gets."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.errors: list[str] = []
        self.port = free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    receiver.batches.append(decode_write_request(body))
                except Invalid as exc:
                    receiver.errors.append(str(exc))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def names(self) -> set[str]:
        return {dict(labels)["__name__"] for b in list(self.batches) for labels in b.labels}


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    made = _Receiver()
    made.thread.start()
    yield made
    made.server.shutdown()
    made.server.server_close()


@pytest.mark.engines
def test_we_decode_what_a_real_prometheus_sends(
    receiver: _Receiver, prometheus_factory: PrometheusFactory
) -> None:
    """Prometheus scrapes itself every second and remote-writes to `receiver`.

    `receiver` comes first so that it outlives Prometheus, which flushes on shutdown.
    """
    config = SELF_SCRAPE_CONFIG + f"""
remote_write:
  - url: http://127.0.0.1:{receiver.port}/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
"""
    prometheus_factory(config)
    wait_for(lambda: {"up", "prometheus_build_info"} <= receiver.names(), timeout_s=30.0,
             what="remote_write from prometheus")
    assert receiver.errors == []
    up = [(dict(labels), ts, v) for b in receiver.batches for labels, ts, v in b.samples()
          if dict(labels)["__name__"] == "up"]
    labels, ts, value = up[0]
    assert labels["job"] == "prometheus" and labels["instance"].startswith("127.0.0.1:")
    assert value == 1.0 and abs(ts - time.time() * 1000) < 60_000
