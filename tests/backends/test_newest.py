"""The newest-sample cache: instant selectors at the present answer from memory, exactly as
from the stored samples."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from dcops.backends.duckdb_store import DuckDBMetricsStore
from dcops.backends.newest import NONE, NewestSamples
from dcops.core.clock import FakeClock
from dcops.query import Engine
from dcops.telemetry.model import Batch, make_labels, name_matcher
from dcops.telemetry.store import MemoryMetricsStore, Retention, select_steps

T0 = 1_700_000_000_000
TEMP = "dcops_gpu_temperature_celsius"
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
QUERIES = [TEMP, f"max by (node) ({TEMP})", f"{TEMP} > 41", f"count({TEMP})",
           f"timestamp({TEMP})"]


def _fleet(points: int = 20) -> Batch:
    batch = Batch()
    for node in ("n1", "n2", "n3"):
        for k in range(points):
            labels = make_labels(TEMP, {"node": node, "gpu": "0"})
            batch.add(labels, T0 + k * 15_000, 40.0 + k % 3)
    return batch


def _both(tmp_path: Path) -> tuple[DuckDBMetricsStore, MemoryMetricsStore]:
    duck = DuckDBMetricsStore(tmp_path / "m", Retention(raw_s=3600, rollup_s=86400),
                              flush_interval_s=3600, clock=FakeClock())
    return duck, MemoryMetricsStore(Retention(raw_s=3600, rollup_s=86400))


def _append(batch: Batch, *stores: DuckDBMetricsStore | MemoryMetricsStore) -> None:
    for store in stores:
        store.append(batch)


def _answers(store: DuckDBMetricsStore | MemoryMetricsStore, at_ms: int) -> list[object]:
    engine = Engine(store)
    return [engine.instant(q, at_ms).to_prometheus_json() for q in QUERIES]


def test_cache_keeps_the_last_written_of_the_newest_timestamp() -> None:
    cache = NewestSamples()
    cache.update(np.array([0, 0, 2]), np.array([5, 9, 7]), np.array([1.0, 2.0, 3.0]))
    cache.update(np.array([0]), np.array([8]), np.array([9.0]))  # older: ignored
    cache.update(np.array([2]), np.array([7]), np.array([4.0]))  # same time: rewrite wins
    assert cache.ts[:3].tolist() == [9, NONE, 7]
    assert cache.values[[0, 2]].tolist() == [2.0, 4.0]
    found = cache.at(np.array([0, 1, 2, 99]), 6, 10)
    assert found is not None
    assert [a.tolist() for a in found] == [[0, 2], [9, 7], [2.0, 4.0]]
    assert cache.at(np.array([0]), 0, 8) is None  # a newer sample: the store must answer


def test_instant_queries_at_the_present_match_the_stored_samples(tmp_path: Path) -> None:
    duck, memory = _both(tmp_path)
    _append(_fleet(), duck, memory)
    last = T0 + 19 * 15_000
    for at in (last, last + 1, last + 299_999, last + 300_000, last + 300_001, last - 7_000):
        assert _answers(duck, at) == _answers(memory, at), at
    block = select_steps(duck, [name_matcher(TEMP)], last - 300_000, last, last, 300_001)
    assert block.ts_ms.tolist() == [last] * 3  # one sample a series: from the cache
    duck.close()


def test_rewrites_stale_markers_and_retention_are_seen(tmp_path: Path) -> None:
    duck, memory = _both(tmp_path)
    _append(_fleet(), duck, memory)
    last = T0 + 19 * 15_000
    rewrite, ended = Batch(), Batch()
    rewrite.add(make_labels(TEMP, {"node": "n1", "gpu": "0"}), last, 99.0)
    ended.add(make_labels(TEMP, {"node": "n2", "gpu": "0"}), last + 15_000, STALE)
    _append(rewrite, duck, memory)
    _append(ended, duck, memory)
    assert duck.latest([name_matcher(TEMP)], last)[0].value == 99.0
    for at in (last + 15_000, last + 60_000):
        assert _answers(duck, at) == _answers(memory, at), at
    later = Batch()
    later.add(make_labels(TEMP, {"node": "n3", "gpu": "0"}), last + 2 * 3600_000, 50.0)
    _append(later, duck, memory)
    for store in (duck, memory):
        store.compact(last + 2 * 3600_000)  # raw retention is an hour: n1 and n2 go
    at = last + 2 * 3600_000 + 1
    assert _answers(duck, at) == _answers(memory, at)
    gone = f'{TEMP}{{node="n1"}}'  # its newest sample fell to retention: no answer left
    assert Engine(duck).instant(gone, last + 1).series == []
    assert Engine(memory).instant(gone, last + 1).series == []
    assert _answers(duck, at)[3] == {"resultType": "vector", "result": [
        {"metric": {}, "value": [(at) / 1000, "1"]}]}
    duck.close()
