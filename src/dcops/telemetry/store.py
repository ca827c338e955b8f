"""The metrics-store Protocol and its in-memory twin.

Every implementation passes the contract suite in ``tests/telemetry/test_store_contract.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dcops.telemetry.model import (
    Batch,
    Labels,
    LatestSample,
    Matcher,
    SeriesBlock,
    SeriesData,
)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long raw samples and 5-minute rollups are kept."""

    raw_s: float = 15 * 86400
    rollup_s: float = 90 * 86400
    rollup_step_s: int = 300


class MetricsStore(Protocol):
    """Where series live. `append` returns only once the samples are durable."""

    def append(self, batch: Batch) -> None:
        """Store every sample in `batch`; on return they survive a crash of this process."""
        ...

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        """Series matching all `matchers` with their samples in [start_ms, end_ms]."""
        ...

    def select_rollup(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, agg: str = "avg"
    ) -> list[SeriesData]:
        """Like select, over the 5-minute rollups; agg is one of avg, min, max, last, count."""
        ...

    def latest(self, matchers: Sequence[Matcher], since_ms: int) -> list[LatestSample]:
        """The newest sample at or after `since_ms` of each matching series."""
        ...

    def series(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Labels]:
        """Label sets of series matching `matchers` with a sample in the range."""
        ...

    def label_names(self) -> list[str]: ...

    def label_values(self, name: str) -> list[str]: ...

    def compact(self, now_ms: int) -> None:
        """Roll up raw samples into 5-minute buckets and drop data past retention."""
        ...

    def stats(self) -> dict[str, int]:
        """Counts for /metrics: series, samples, and anything backend-specific."""
        ...

    def close(self) -> None: ...


class BlockReader(Protocol):
    """A store that can hand over many series at once as flat columns (a fast path)."""

    def select_block(self, matchers: Sequence[Matcher], start_ms: int,
                     end_ms: int) -> SeriesBlock:
        """What `select` returns, as one SeriesBlock."""
        ...


def select_steps(store: MetricsStore, matchers: Sequence[Matcher], start_ms: int,
                 end_ms: int, first_ms: int, step_ms: int) -> SeriesBlock:
    """At least the newest sample of each series in every bucket ``(t - step_ms, t]`` for
    ``t = first_ms + k * step_ms``; stores with a fast path drop the rest of each bucket."""
    fast = getattr(store, "select_steps", None)
    if fast is not None:
        block: SeriesBlock = fast(matchers, start_ms, end_ms, first_ms, step_ms)
        return block
    return select_block(store, matchers, start_ms, end_ms)


def block_of(data: Sequence[SeriesData]) -> SeriesBlock:
    """Series (ordered by labels) joined into one SeriesBlock."""
    lengths = np.fromiter((len(sd.ts_ms) for sd in data), dtype=np.int64, count=len(data))
    offsets = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if not data:
        return SeriesBlock([], offsets, np.zeros(0, np.int64), np.zeros(0, np.float64))
    return SeriesBlock([sd.labels for sd in data], offsets,
                       np.concatenate([sd.ts_ms for sd in data]).astype(np.int64, copy=False),
                       np.concatenate([sd.values for sd in data]).astype(np.float64, copy=False))


def select_block(store: MetricsStore, matchers: Sequence[Matcher], start_ms: int,
                 end_ms: int) -> SeriesBlock:
    """`store.select` as a SeriesBlock, through the store's own fast path where it has one."""
    fast = getattr(store, "select_block", None)
    if fast is not None:
        block: SeriesBlock = fast(matchers, start_ms, end_ms)
        return block
    return block_of(store.select(matchers, start_ms, end_ms))


def _matches(labels: Labels, matchers: Sequence[Matcher]) -> bool:
    as_dict = dict(labels)
    return all(m.matches(as_dict) for m in matchers)


class MemoryMetricsStore:
    """A MetricsStore held in process memory: for tests and short-lived tools."""

    def __init__(self, retention: Retention | None = None) -> None:
        self.retention = retention or Retention()
        self._data: dict[Labels, list[tuple[int, float]]] = {}
        self._rollups: dict[Labels, dict[int, list[float]]] = {}
        self._lock = threading.Lock()

    def append(self, batch: Batch) -> None:
        with self._lock:
            for labels, ts, value in batch.samples():
                self._data.setdefault(labels, []).append((ts, value))

    def _select_raw(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[SeriesData]:
        out = []
        with self._lock:
            for labels, points in self._data.items():
                if not _matches(labels, matchers):
                    continue
                chosen = sorted({t: v for t, v in points if start_ms <= t <= end_ms}.items())
                if chosen:
                    ts = np.array([t for t, _ in chosen], dtype=np.int64)
                    vs = np.array([v for _, v in chosen], dtype=np.float64)
                    out.append(SeriesData(labels, ts, vs))
        return sorted(out, key=lambda s: s.labels)

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        return self._select_raw(matchers, start_ms, end_ms)

    def select_rollup(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, agg: str = "avg"
    ) -> list[SeriesData]:
        step = self.retention.rollup_step_s * 1000
        out = []
        with self._lock:
            items = list(self._rollups.items())
        for labels, buckets in items:
            if not _matches(labels, matchers):
                continue
            keys = sorted(b for b in buckets if start_ms <= b <= end_ms)
            if not keys:
                continue
            vals = [_agg(buckets[b], agg) for b in keys]
            out.append(
                SeriesData(labels, np.array(keys, dtype=np.int64), np.array(vals, dtype=np.float64))
            )
        del step
        return sorted(out, key=lambda s: s.labels)

    def latest(self, matchers: Sequence[Matcher], since_ms: int) -> list[LatestSample]:
        out = []
        with self._lock:
            for labels, points in self._data.items():
                if points and _matches(labels, matchers):
                    ts, value = max(dict(points).items())
                    if ts >= since_ms:
                        out.append(LatestSample(labels, ts, value))
        return sorted(out, key=lambda s: s.labels)

    def series(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Labels]:
        return [s.labels for s in self._select_raw(matchers, start_ms, end_ms)]

    def label_names(self) -> list[str]:
        with self._lock:
            return sorted({k for labels in self._data for k, _ in labels})

    def label_values(self, name: str) -> list[str]:
        with self._lock:
            return sorted({v for labels in self._data for k, v in labels if k == name})

    def compact(self, now_ms: int) -> None:
        step = self.retention.rollup_step_s * 1000
        raw_cut = now_ms - int(self.retention.raw_s * 1000)
        rollup_cut = now_ms - int(self.retention.rollup_s * 1000)
        with self._lock:
            for labels, points in self._data.items():
                buckets: dict[int, list[float]] = {}
                for ts, v in sorted(dict(points).items()):
                    buckets.setdefault(ts - ts % step, []).append(v)
                self._rollups[labels] = {
                    b: vs for b, vs in buckets.items() if b >= rollup_cut
                } | {b: vs for b, vs in self._rollups.get(labels, {}).items()
                     if b >= rollup_cut and b not in buckets}
                points[:] = [(t, v) for t, v in points if t >= raw_cut]
            self._data = {k: v for k, v in self._data.items() if v}
            for labels, rollups in list(self._rollups.items()):
                kept = {b: vs for b, vs in rollups.items() if b >= rollup_cut}
                if kept:
                    self._rollups[labels] = kept
                else:
                    del self._rollups[labels]

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"series": len(self._data), "samples": sum(map(len, self._data.values()))}

    def close(self) -> None:
        pass


def _agg(values: list[float], agg: str) -> float:
    if agg == "avg":
        return sum(values) / len(values)
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    if agg == "last":
        return values[-1]
    if agg == "count":
        return float(len(values))
    raise ValueError(f"unknown rollup aggregate {agg!r}")
