"""Prometheus remote_write 1.0: the snappy-compressed protobuf body exporters push.

``decode_write_request`` turns a POSTed body into a columnar `Batch`;
``encode_write_request`` does the reverse (for tests, benchmarks and forwarding).
Decoding is the ingest hot path, so label sets are interned: the raw bytes of a
series' labels are looked up in a bounded cache and only unseen series are
validated and turned into canonical label tuples.
"""

from __future__ import annotations

import threading
from typing import cast

import cramjam
import numpy as np
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from dcops.core.errors import Invalid
from dcops.telemetry import prompb
from dcops.telemetry.model import Batch, Labels, labels_from_pairs

MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
"""Largest remote_write body accepted after decompression (Prometheus sends a few MB at most)."""

_WHERE = "remote_write body"


class _LabelCache:
    """Serialized labels of a series -> (canonical labels, series number); bounded, thread-safe.

    The series number is an int that stands for the canonical labels, so that a request
    can group repeated series with a cheap int hash instead of hashing label tuples.
    """

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self.max_entries = max_entries
        self.by_key: dict[bytes, tuple[Labels, int]] = {}
        self._by_labels: dict[Labels, int] = {}
        self._lock = threading.Lock()

    def intern(self, key: bytes) -> tuple[Labels, int]:
        """Validate and canonicalize a series seen for the first time."""
        try:
            series = prompb.LabelsOnlySeries.FromString(key)
        except DecodeError as exc:
            raise Invalid(f"unreadable labels: {exc}") from None
        labels = labels_from_pairs((label.name, label.value) for label in series.labels)
        with self._lock:
            if len(self.by_key) >= self.max_entries:
                self.by_key.clear()
                self._by_labels.clear()
            number = self._by_labels.setdefault(labels, len(self._by_labels))
            entry = (labels, number)
            self.by_key[key] = entry
        return entry

    def intern_exact(self, key: bytes) -> tuple[Labels, int] | None:
        """Like `intern`, for a key cut from a series by position: None unless `key` is
        exactly a run of whole, canonically written labels (what the cache must hold)."""
        try:
            series = prompb.LabelsOnlySeries.FromString(key)
        except DecodeError:
            return None
        series.DiscardUnknownFields()
        if series.SerializeToString() != key:
            return None
        return self.intern(key)


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
    try:
        series = prompb.RawSeriesRequest.FromString(raw).timeseries
        fast = _one_sample_each(raw, series)
        if fast is not None:
            known, ts_ms, values = fast
            counts = None
        else:
            keys, cut = _series_keys(raw, series)
            ts_ms, values, counts = _sample_columns(raw, keys, cut)
            known = _entries(keys)
    except DecodeError as exc:
        raise Invalid(f"not a prometheus.WriteRequest protobuf: {exc}", where=_WHERE) from None
    numbers = [e[1] for e in known]
    if len(set(numbers)) == len(numbers):  # the usual case: each series once
        labels = [e[0] for e in known]
        positions: list[int] = list(range(len(known)))
    else:
        first: dict[int, int] = {}
        labels, positions = [], []
        for labels_of, number in known:
            pos = first.get(number)
            if pos is None:
                pos = first[number] = len(labels)
                labels.append(labels_of)
            positions.append(pos)
    index = positions if counts is None else np.repeat(positions, counts).tolist()
    return Batch(labels=labels, series_index=index, ts_ms=ts_ms, values=values)


def _entries(keys: list[bytes]) -> list[tuple[Labels, int]]:
    """The cache entry of each series key, interning (and validating) unseen ones."""
    entries = list(map(_CACHE.by_key.get, keys))
    if None in entries:
        for n, entry in enumerate(entries):
            if entry is None:
                try:
                    entries[n] = _CACHE.intern(keys[n])
                except Invalid as exc:
                    raise Invalid(exc.message, where=f"{_WHERE}: timeseries[{n}]") from None
    return cast(list[tuple[Labels, int]], entries)


_SERIES_TAG, _SAMPLE_TAG, _VALUE_TAG, _TIMESTAMP_TAG = 0x0A, 0x12, 0x09, 0x10
_BYTE_RANGE = np.arange(10)
_VARINT_STEPS = 1 << (7 * np.arange(1, 5))  # lengths from here on take one more byte


def _one_sample_each(raw: bytes, series: list[bytes],
                     ) -> tuple[list[tuple[Labels, int]], list[int], list[float]] | None:
    """Entries, timestamps and values of a request whose every series is labels followed
    by one sample, as Prometheus sends; None for any other request.

    The whole request is checked to be exactly its series, each written as
    ``0x0A len bytes``. Each series' last bytes are then read, with numpy, as a guessed
    sample field in one of its four proto3 shapes: ``0x12 len`` and then, in order,
    ``0x09 <8-byte double>`` unless the value is 0 and ``0x10 <varint>`` unless the
    timestamp is 0. The bytes before the guessed sample are the series' key, which is
    accepted only if it is in the label cache or is exactly a run of canonically
    written labels (`_LabelCache.intern_exact`); every cached key is a run of whole
    fields without samples. A run of whole fields ending where a complete sample field
    starts and ends the series is how the protobuf library itself parses that series,
    so the guess is verified; any series that fails the checks sends the request to
    the general path.
    """
    count = len(series)
    if count == 0:
        return None
    series = list(series)  # each element of a protobuf container is a new bytes object
    lengths = np.fromiter(map(len, series), dtype=np.int64, count=count)
    heads = 2 + (lengths[:, None] >= _VARINT_STEPS).sum(axis=1)
    if int(heads.sum() + lengths.sum()) != len(raw) or int(lengths.max()) >= 1 << 28:
        return None  # other fields or non-minimal framing: the general path
    ends = np.cumsum(heads + lengths)
    starts = ends - lengths
    data = np.frombuffer(raw, dtype=np.uint8)
    if not (data[starts - heads] == _SERIES_TAG).all():
        return None

    def at(pos: np.ndarray) -> np.ndarray:
        found: np.ndarray = data[np.maximum(pos, 0)]
        return found

    last = at(ends - 1)
    # the timestamp varint: a last byte < 0x80 after a run of bytes >= 0x80
    stop = at(ends[:, None] - 2 - _BYTE_RANGE) < 0x80
    stop[:, -1] = True  # longer than 10 bytes: not a varint, the tag check fails
    vlen = 1 + stop.argmax(axis=1)
    tag = ends - 1 - vlen
    timed = ((last < 0x80) & (at(tag) == _TIMESTAMP_TAG)
             & ((vlen < 10) | ((vlen == 10) & (last == 1))))
    full = (timed & (at(tag - 9) == _VALUE_TAG) & (at(tag - 10) == 10 + vlen)
            & (at(tag - 11) == _SAMPLE_TAG))
    no_value = ~full & timed & (at(tag - 1) == 1 + vlen) & (at(tag - 2) == _SAMPLE_TAG)
    no_time = (~full & ~no_value & (at(ends - 9) == _VALUE_TAG) & (at(ends - 10) == 9)
               & (at(ends - 11) == _SAMPLE_TAG))
    empty = (~full & ~no_value & ~no_time & (at(ends - 1) == 0)
             & (at(ends - 2) == _SAMPLE_TAG))
    sample_at = np.select([full, no_value, no_time, empty],
                          [tag - 11, tag - 2, ends - 11, ends - 2], default=-1)
    if not (sample_at >= starts).all():
        return None
    valued = full | no_time
    values = np.zeros(count, dtype=np.float64)
    value_at = np.where(full, tag - 8, ends - 8)[valued]
    values[valued] = data[value_at[:, None] + _BYTE_RANGE[:8]].view("<f8")[:, 0]
    timestamps = np.zeros(count, dtype=np.uint64)
    varint = data[np.minimum(tag[timed, None] + 1 + _BYTE_RANGE, len(raw) - 1)].astype(np.uint64)
    varint &= 0x7F
    varint <<= (7 * _BYTE_RANGE).astype(np.uint64)
    varint[vlen[timed, None] <= _BYTE_RANGE] = 0
    timestamps[timed] = np.bitwise_or.reduce(varint, axis=1)
    keys = list(map(bytes.__getitem__, series, map(slice, (sample_at - starts).tolist())))
    entries = list(map(_CACHE.by_key.get, keys))
    if None in entries:
        for n, entry in enumerate(entries):
            if entry is None:
                try:
                    entries[n] = _CACHE.intern_exact(keys[n])
                except Invalid as exc:
                    raise Invalid(exc.message, where=f"{_WHERE}: timeseries[{n}]") from None
                if entries[n] is None:
                    return None
    return (cast(list[tuple[Labels, int]], entries), timestamps.view(np.int64).tolist(),
            values.tolist())


def _series_keys(raw: bytes, series: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """A key per series that holds its labels, and each series' samples re-serialized.

    Senders write a series' labels before its samples, so the usual key is the series'
    own bytes less the trailing samples, found in C: each series' samples-only form is
    cut from the request and checked to end the series' bytes. A series whose bytes do
    not end that way has its labels parsed, stripped and re-cut in C instead.
    """
    samples_only = prompb.SamplesOnlyRequest.FromString(raw)
    samples_only.DiscardUnknownFields()
    cut: list[bytes] = list(
        prompb.RawSeriesRequest.FromString(samples_only.SerializeToString()).timeseries)
    if len(cut) == len(series) and all(map(bytes.endswith, series, cut)):
        return [whole[: len(whole) - len(tail)] for whole, tail in zip(series, cut,
                                                                          strict=True)], cut
    labels_only = prompb.LabelKeysRequest.FromString(raw)
    labels_only.DiscardUnknownFields()
    keys: list[bytes] = list(
        prompb.RawSeriesRequest.FromString(labels_only.SerializeToString()).timeseries)
    return keys, cut


def _sample_columns(raw: bytes, keys: list[bytes], cut: list[bytes],
                    ) -> tuple[list[int], list[float], list[int] | None]:
    """All timestamps and values in wire order, and samples per series (None: one each).

    Exemplar- or histogram-only series (remote_write sends those separately) have an
    empty samples-only form, so they count as series without samples.
    """
    counts: list[int] | None = None
    samples = prompb.MergedSamplesRequest.FromString(raw).timeseries.samples
    total = len(samples)
    if total != len(keys) or b"" in cut:
        counts = [len(s.samples) for s in prompb.SamplesOnlyRequest.FromString(raw).timeseries]
    columns = prompb.SampleColumnsRequest.FromString(raw).timeseries.samples
    # proto3 leaves zeros off the wire, so a column shorter than `total` hides zeros:
    # then read that column sample by sample.
    if len(columns.timestamp) == total:
        ts_ms: list[int] = np.array(columns.timestamp, dtype=np.int64).tolist()
    else:
        ts_ms = [s.timestamp for s in samples]
    if len(columns.value) == total:
        values: list[float] = np.array(columns.value, dtype=np.float64).tolist()
    else:
        values = [s.value for s in samples]
    return ts_ms, values, counts


_ENCODED_LABELS: dict[Labels, list[bytes]] = {}


def _encoded_labels(labels: Labels) -> list[bytes]:
    """Each label of `labels` as a serialized prometheus.Label, cached (bounded)."""
    found = _ENCODED_LABELS.get(labels)
    if found is None:
        if len(_ENCODED_LABELS) >= 100_000:
            _ENCODED_LABELS.clear()
        found = [prompb.Label(name=k, value=v).SerializeToString() for k, v in labels]
        _ENCODED_LABELS[labels] = found
    return found


def encode_write_request(batch: Batch) -> bytes:
    """Encode `batch` as a snappy-compressed prometheus.WriteRequest (one TimeSeries per series)."""
    grouped: dict[int, list[tuple[int, float]]] = {}
    for i, ts, value in zip(batch.series_index, batch.ts_ms, batch.values, strict=True):
        grouped.setdefault(i, []).append((ts, value))
    request = prompb.EncodeRequest()
    add, sample = request.timeseries.add, prompb.Sample
    for i, points in grouped.items():
        points.sort(key=lambda p: p[0])  # stable: equal timestamps keep write order
        add(labels=_encoded_labels(batch.labels[i]),
            samples=[sample(value=v, timestamp=t) for t, v in points])
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
