"""Prometheus remote_write 1.0: the snappy-compressed protobuf body exporters push.

``decode_write_request`` turns a POSTed body into a columnar `Batch`;
``encode_write_request`` does the reverse (for tests, benchmarks and forwarding).
Decoding is the ingest hot path, so label sets are interned: the raw bytes of a
series' labels are looked up in a bounded cache and only unseen series are
validated and turned into canonical label tuples.
"""

from __future__ import annotations

import threading
from typing import Any

import cramjam
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from dcops.core.errors import Invalid
from dcops.telemetry import prompb
from dcops.telemetry.model import Batch, Labels, labels_from_pairs

MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
"""Largest remote_write body accepted after decompression (Prometheus sends a few MB at most)."""

_WHERE = "remote_write body"


class _LabelCache:
    """Raw label bytes -> (canonical labels, series number), bounded, safe across threads.

    The series number is an int that stands for the canonical labels, so that a request
    can group repeated series with a cheap int hash instead of hashing label tuples.
    """

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self.max_entries = max_entries
        self._by_key: dict[bytes, tuple[Labels, int]] = {}
        self._by_labels: dict[Labels, int] = {}
        self._lock = threading.Lock()

    def get(self, key: bytes) -> tuple[Labels, int] | None:
        return self._by_key.get(key)

    def intern(self, key: bytes, raw_labels: Any) -> tuple[Labels, int]:
        pairs = []
        for raw in raw_labels:
            label = prompb.Label.FromString(raw)
            pairs.append((label.name, label.value))
        labels = labels_from_pairs(pairs)
        with self._lock:
            if len(self._by_key) >= self.max_entries:
                self._by_key.clear()
                self._by_labels.clear()
            number = self._by_labels.setdefault(labels, len(self._by_labels))
            entry = (labels, number)
            self._by_key[key] = entry
        return entry


_CACHE = _LabelCache()


def _decompress(body: bytes, max_bytes: int) -> bytes:
    try:
        size = cramjam.snappy.decompress_raw_len(body)
    except Exception as exc:
        raise Invalid(f"not snappy block format: {exc}", where=_WHERE,
                      hint="send Content-Encoding: snappy (block format, not framed)") from None
    if size > max_bytes:
        raise Invalid(f"decompressed size {size} bytes exceeds limit {max_bytes}",
                      where=_WHERE, hint="send smaller batches (max_samples_per_send)")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:
        raise Invalid(f"corrupt snappy data: {exc}", where=_WHERE) from None


def decode_write_request(body: bytes, *, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> Batch:
    """Decode a remote_write 1.0 body (snappy block + prometheus.WriteRequest) into a Batch.

    Raises Invalid for bad snappy, bad protobuf, a series without ``__name__``, bad
    metric or label names, or a body larger than `max_bytes` once decompressed.
    """
    raw = _decompress(body, max_bytes)
    request = prompb.KeyedWriteRequest()
    try:
        request.ParseFromString(raw)
    except DecodeError as exc:
        raise Invalid(f"not a prometheus.WriteRequest protobuf: {exc}", where=_WHERE) from None
    labels: list[Labels] = []
    index: list[int] = []
    ts_ms: list[int] = []
    values: list[float] = []
    positions: dict[int, int] = {}
    cache_get = _CACHE.get
    add_index, add_ts, add_value = index.append, ts_ms.append, values.append
    for n, series in enumerate(request.timeseries):
        key = b"".join(series.labels)
        entry = cache_get(key)
        if entry is None:
            try:
                entry = _CACHE.intern(key, series.labels)
            except Invalid as exc:
                raise Invalid(exc.message, where=f"{_WHERE}: timeseries[{n}]") from None
            except DecodeError:
                raise Invalid("label is not a valid protobuf Label",
                              where=f"{_WHERE}: timeseries[{n}]") from None
        pos = positions.get(entry[1])
        if pos is None:
            pos = positions[entry[1]] = len(labels)
            labels.append(entry[0])
        for sample in series.samples:
            add_index(pos)
            add_ts(sample.timestamp)
            add_value(sample.value)
    return Batch(labels=labels, series_index=index, ts_ms=ts_ms, values=values,
                 _positions={lab: i for i, lab in enumerate(labels)})


def encode_write_request(batch: Batch) -> bytes:
    """Encode `batch` as a snappy-compressed prometheus.WriteRequest (one TimeSeries per series)."""
    request = prompb.WriteRequest()
    grouped: dict[int, list[tuple[int, float]]] = {}
    for i, ts, value in zip(batch.series_index, batch.ts_ms, batch.values, strict=True):
        grouped.setdefault(i, []).append((ts, value))
    for i, points in grouped.items():
        series = request.timeseries.add()
        for name, text in batch.labels[i]:
            series.labels.add(name=name, value=text)
        for ts, value in sorted(points, key=lambda p: p[0]):
            series.samples.add(value=value, timestamp=ts)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
