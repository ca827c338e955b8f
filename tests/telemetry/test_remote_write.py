"""remote_write 1.0 codec: round trips, clear errors, and both directions with a real Prometheus."""

from __future__ import annotations

import math
import random
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cramjam
import httpx
import pytest

from dcops.core.errors import Invalid
from dcops.telemetry import prompb
from dcops.telemetry.model import Batch, Labels, labels_from_pairs, make_labels
from dcops.telemetry.remote_write import (
    _one_sample_each,
    decode_write_request,
    encode_write_request,
)
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


# --- the fast path (labels then one sample per series) against the library's own parse ---

STALE_NAN: float = struct.unpack("<d", (0x7FF0000000000002).to_bytes(8, "little"))[0]
"""Prometheus' stale marker: a NaN whose exact bits mean "series gone"."""


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, content: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(content)) + content


@dataclass
class _Series:
    """One TimeSeries as raw wire pieces, so that tests choose the field order."""

    labels: list[tuple[str, str]]
    samples: list[tuple[int, float]]
    labels_last: bool = False
    extra: bytes = b""  # unknown fields (exemplars, histograms) written between

    def wire(self) -> bytes:
        labels = b"".join(_field(1, prompb.Label(name=k, value=v).SerializeToString())
                          for k, v in self.labels)
        samples = b"".join(_field(2, prompb.Sample(value=v, timestamp=t).SerializeToString())
                           for t, v in self.samples)
        return samples + self.extra + labels if self.labels_last else labels + self.extra + samples


def _body(series: list[_Series], extra: bytes = b"") -> bytes:
    raw = b"".join(_field(1, s.wire()) for s in series) + extra
    return bytes(cramjam.snappy.compress_raw(raw))


def _reference(body: bytes) -> list[tuple[Labels, int, bytes]]:
    """Every sample in wire order, decoded the slow obvious way with the full message."""
    request = prompb.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
    return [(labels_from_pairs((label.name, label.value) for label in ts.labels),
             sample.timestamp, struct.pack("<d", sample.value))
            for ts in request.timeseries for sample in ts.samples]


def _decoded(batch: Batch) -> list[tuple[Labels, int, bytes]]:
    assert len(set(batch.labels)) == len(batch.labels)
    assert all(type(ts) is int for ts in batch.ts_ms)
    assert all(type(v) is float for v in batch.values)
    return [(labels, ts, struct.pack("<d", v)) for labels, ts, v in batch.samples()]


def _fast_path_taken(body: bytes) -> bool:
    raw = bytes(cramjam.snappy.decompress_raw(body))
    return _one_sample_each(raw, prompb.RawSeriesRequest.FromString(raw).timeseries) is not None


SPECIAL_VALUES: list[float] = [0.0, -0.0, 1.0, -2.5, math.nan, STALE_NAN, math.inf, -math.inf,
                               5e-324, 1.7976931348623157e308, 12.5]
SPECIAL_TIMES = [0, 1, -1, -T0, T0, 127, 128, 2**62, 2**63 - 1, -(2**63)]


def _prometheus_like(values: list[float], times: list[int], run: str) -> list[_Series]:
    return [_Series([("__name__", "DCGM_FI_DEV_XID_ERRORS"), ("gpu", str(n)), ("run", run)],
                    [(t, v)]) for n, (t, v) in enumerate(zip(times, values, strict=True))]


@pytest.mark.parametrize("value", SPECIAL_VALUES)
@pytest.mark.parametrize("ts", SPECIAL_TIMES)
def test_one_sample_per_series_decodes_exactly_on_the_fast_path(value: float, ts: int) -> None:
    for run in ("new", "new"):  # first unseen series, then cached ones
        series = _prometheus_like([value, 3.0, 0.0], [ts, T0, ts], f"{run}-{value}-{ts}")
        body = _body(series)
        assert _decoded(decode_write_request(body)) == _reference(body)
        assert _fast_path_taken(body)


def test_stale_marker_keeps_its_exact_bits() -> None:
    body = _body(_prometheus_like([STALE_NAN, 1.0], [T0, T0], "stale"))
    value = decode_write_request(body).values[0]
    assert struct.pack("<d", value) == (0x7FF0000000000002).to_bytes(8, "little")


@pytest.mark.parametrize(
    "series",
    [
        # labels written after the sample
        [_Series([("__name__", "a")], [(T0, 1.0)], labels_last=True),
         _Series([("__name__", "b")], [(T0, 2.0)])],
        # an unknown field (an exemplar) between labels and samples
        [_Series([("__name__", "a")], [(T0, 1.0)], extra=_field(3, b"\x10\x05"))],
        # several samples, none, and one sample per series in one request
        [_Series([("__name__", "a")], [(T0, 1.0), (T0 + 1, 0.0)]),
         _Series([("__name__", "b")], []), _Series([("__name__", "c")], [(T0, 0.0)])],
        # a histogram-only series (field 4) among plain ones
        [_Series([("__name__", "h")], [], extra=_field(4, b"\x08\x01")),
         _Series([("__name__", "a")], [(0, 0.0)])],
        # the same series twice in one request, with labels in another order
        [_Series([("__name__", "a"), ("gpu", "0")], [(T0, 1.0)]),
         _Series([("gpu", "0"), ("__name__", "a")], [(T0 + 1, 2.0)]),
         _Series([("__name__", "a"), ("gpu", "0")], [(T0 + 2, 0.0)])],
        # a label value that looks like a sample field at the end of the series
        [_Series([("__name__", "a"), ("x", "\x12\x00")], [])],
        [_Series([("__name__", "a"), ("x", "\x12\x02\x10\x05")], [])],
    ],
)
def test_irregular_series_decode_exactly(series: list[_Series]) -> None:
    body = _body(series)
    assert _decoded(decode_write_request(body)) == _reference(body)
    assert _decoded(decode_write_request(body)) == _reference(body)  # now cached


def test_unknown_top_level_fields_decode_exactly() -> None:
    series = _prometheus_like([1.0, 0.0], [T0, T0], "meta")
    body = _body(series, extra=_field(3, b"\x0a\x01m"))  # WriteRequest.metadata
    assert _decoded(decode_write_request(body)) == _reference(body)
    assert not _fast_path_taken(body)


def test_duplicate_series_share_one_label_set_on_the_fast_path() -> None:
    series = _prometheus_like([1.0, 2.0], [T0, T0], "dup")
    body = _body(series + series[:1])
    decoded = decode_write_request(body)
    assert _fast_path_taken(body)
    assert decoded.series_index == [0, 1, 0] and len(decoded.labels) == 2
    assert _decoded(decoded) == _reference(body)


def test_prometheus_shaped_bodies_with_zeros_take_the_fast_path() -> None:
    batch = Batch()
    for g in range(64):
        labels = make_labels("DCGM_FI_DEV_GPU_UTIL", {"gpu": str(g), "node": "fast"})
        batch.add(labels, T0, 0.0 if g % 4 == 0 else float(g))
    body = encode_write_request(batch)
    assert _fast_path_taken(body)
    assert as_set(decode_write_request(body)) == as_set(batch)


def _random_series(rng: random.Random) -> _Series:
    labels = [("__name__", rng.choice(["up", "gpu_temp", "DCGM_FI_DEV_XID_ERRORS"]))]
    for name in rng.sample(["gpu", "node", "zz"], rng.randint(0, 3)):
        labels.append((name, rng.choice(["0", "1", "n1", "\x12\x02\x10\x05", "\x09", "é",
                                         str(rng.getrandbits(20))])))

    def value() -> float:
        if rng.random() < 0.5:
            return rng.choice(SPECIAL_VALUES)
        drawn: float = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        return drawn

    def ts() -> int:
        return rng.choice(SPECIAL_TIMES) if rng.random() < 0.5 else rng.randint(-(2**63),
                                                                                2**63 - 1)

    count = 1 if rng.random() < 0.6 else rng.randint(0, 3)
    return _Series(labels, [(ts(), value()) for _ in range(count)],
                   labels_last=rng.random() < 0.1,
                   extra=rng.choice([b""] * 8 + [_field(3, b"\x10\x05"), _field(9, b"")]))


@pytest.mark.parametrize("seed", range(8))
def test_random_requests_decode_like_the_full_message(seed: int) -> None:
    """Many random requests (with repeats, so cached and new series mix) against the
    library's own parse: every sample, bit for bit, in wire order."""
    rng = random.Random(seed)
    seen: list[_Series] = []
    for _ in range(60):
        series = [rng.choice(seen) if seen and rng.random() < 0.4 else _random_series(rng)
                  for _ in range(rng.randint(0, 10))]
        seen.extend(series)
        body = _body(series, rng.choice([b""] * 9 + [_field(3, b"")]))
        assert _decoded(decode_write_request(body)) == _reference(body)
