"""The MetricsStore contract, run over every implementation.

The first part holds for every store: in memory, DuckDB, and a real Prometheus behind the
``prometheus`` backend. The second is the embedded stores' own (memory and DuckDB): what
they do with duplicates (last write wins), compaction and retention, and their counts; a
remote store owns those itself (see tests/backends/test_prometheus.py for what it does).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from dcops.backends.duckdb_store import DuckDBMetricsStore
from dcops.backends.prometheus import PrometheusMetricsStore
from dcops.backends.prometheus_http import PrometheusClient
from dcops.core.clock import FakeClock
from dcops.telemetry.model import (
    Batch,
    LatestSample,
    Matcher,
    MatchOp,
    SeriesData,
    make_labels,
    name_matcher,
)
from dcops.telemetry.store import MemoryMetricsStore, MetricsStore, Retention
from tests.fixtures.prometheus import PrometheusServer

T0 = 1_700_000_000_000
STEP = 300_000
TEMP = "dcops_gpu_temperature_celsius"
POWER = "dcops_gpu_power_watts"


def _store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetricsStore]:
    retention = Retention(raw_s=3600, rollup_s=86400)
    made: MetricsStore
    if request.param == "memory":
        made = MemoryMetricsStore(retention)
    elif request.param == "duckdb":
        made = DuckDBMetricsStore(tmp_path / "metrics", retention, flush_interval_s=3600,
                                  clock=FakeClock())
    else:  # an empty Prometheus for each test: it refuses samples older than what it holds
        server: PrometheusServer = request.getfixturevalue("prometheus_server")
        made = PrometheusMetricsStore(PrometheusClient(server.url),
                                      FakeClock(T0 / 1000 + 3600))
    yield made
    made.close()


@pytest.fixture(params=["memory", "duckdb",
                        pytest.param("prometheus", marks=pytest.mark.engines)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetricsStore]:
    """An empty store of every kind."""
    yield from _store(request, tmp_path)


@pytest.fixture(params=["memory", "duckdb"])
def embedded_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetricsStore]:
    """An empty store of each embedded kind (one hour raw retention, one day of rollups)."""
    yield from _store(request, tmp_path)


def gpu(name: str, node: str, gpu_index: int, **extra: str) -> tuple[tuple[str, str], ...]:
    return make_labels(name, {"node": node, "gpu": str(gpu_index), **extra})


def fleet_batch(t0: int = T0, points: int = 3) -> Batch:
    """Two nodes x two GPUs, temperature and power, `points` samples 15 s apart."""
    batch = Batch()
    for node in ("n1", "n2"):
        for g in (0, 1):
            for k in range(points):
                ts = t0 + k * 15_000
                batch.add(gpu(TEMP, node, g), ts, 40.0 + g + k)
                batch.add(gpu(POWER, node, g), ts, 300.0 + g * 10 + k)
    return batch


def names_of(result: Sequence[SeriesData | LatestSample]) -> list[str]:
    out = []
    for item in result:
        labels = dict(item.labels)
        out.append(f"{labels['__name__']}/{labels.get('node')}/{labels.get('gpu')}")
    return out


def test_append_then_select_by_name(store: MetricsStore) -> None:
    store.append(fleet_batch())
    got = store.select([name_matcher(TEMP)], T0, T0 + 60_000)
    # ordered by label set: gpu sorts before node
    assert names_of(got) == [f"{TEMP}/n1/0", f"{TEMP}/n2/0", f"{TEMP}/n1/1", f"{TEMP}/n2/1"]
    first = got[0]
    assert first.ts_ms.tolist() == [T0, T0 + 15_000, T0 + 30_000]
    assert first.values.tolist() == [40.0, 41.0, 42.0]
    assert first.ts_ms.dtype == np.int64 and first.values.dtype == np.float64


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        (Matcher("node", MatchOp.EQ, "n2"), ["n2/0", "n2/1"]),
        (Matcher("node", MatchOp.NE, "n2"), ["n1/0", "n1/1"]),
        (Matcher("gpu", MatchOp.RE, "1|7"), ["n1/1", "n2/1"]),
        (Matcher("gpu", MatchOp.NRE, "1|7"), ["n1/0", "n2/0"]),
        (Matcher("gpu", MatchOp.RE, "1"), ["n1/1", "n2/1"]),  # anchored: "1" does not hit "10"
    ],
)
def test_matcher_ops(store: MetricsStore, matcher: Matcher, expected: list[str]) -> None:
    store.append(fleet_batch())
    got = store.select([name_matcher(TEMP), matcher], T0, T0 + 60_000)
    assert [n.split("/", 1)[1] for n in names_of(got)] == expected


def test_matchers_on_missing_label(store: MetricsStore) -> None:
    batch = fleet_batch(points=1)
    batch.add(gpu(TEMP, "n3", 0, pool="spare"), T0, 50.0)
    store.append(batch)
    absent = store.select([name_matcher(TEMP), Matcher("pool", MatchOp.EQ, "")], T0, T0)
    assert len(absent) == 4
    present = store.select([Matcher("pool", MatchOp.NE, "")], T0, T0)
    assert names_of(present) == [f"{TEMP}/n3/0"]
    regex_empty = store.select([name_matcher(TEMP), Matcher("pool", MatchOp.RE, "spare|")],
                               T0, T0)
    assert len(regex_empty) == 5


def test_time_range_is_inclusive(store: MetricsStore) -> None:
    store.append(fleet_batch())
    got = store.select([name_matcher(POWER), Matcher("node", MatchOp.EQ, "n1"),
                        Matcher("gpu", MatchOp.EQ, "0")], T0 + 15_000, T0 + 30_000)
    assert got[0].ts_ms.tolist() == [T0 + 15_000, T0 + 30_000]
    assert store.select([name_matcher(POWER)], T0 + 31_000, T0 + 99_000) == []


def test_no_match_is_empty(store: MetricsStore) -> None:
    store.append(fleet_batch())
    assert store.select([name_matcher("nope")], T0, T0 + 60_000) == []
    assert store.latest([name_matcher("nope")], T0) == []
    assert store.series([name_matcher("nope")], T0, T0 + 60_000) == []


def test_latest(store: MetricsStore) -> None:
    store.append(fleet_batch())
    got = store.latest([name_matcher(TEMP), Matcher("node", MatchOp.EQ, "n2")], T0)
    assert [(dict(s.labels)["gpu"], s.ts_ms, s.value) for s in got] == [
        ("0", T0 + 30_000, 42.0), ("1", T0 + 30_000, 43.0)]
    assert store.latest([name_matcher(TEMP)], T0 + 31_000) == []


def test_series_in_range(store: MetricsStore) -> None:
    store.append(fleet_batch(points=1))
    store.append(fleet_batch(t0=T0 + 600_000, points=1))
    late = Batch()
    late.add(gpu(TEMP, "n9", 0), T0 + 600_000, 1.0)
    store.append(late)
    assert len(store.series([name_matcher(TEMP)], T0, T0)) == 4
    assert len(store.series([name_matcher(TEMP)], T0, T0 + 600_000)) == 5
    assert store.series([name_matcher(TEMP), Matcher("node", MatchOp.EQ, "n9")], T0, T0) == []


def test_label_names_and_values(store: MetricsStore) -> None:
    store.append(fleet_batch(points=1))
    assert store.label_names() == ["__name__", "gpu", "node"]
    assert store.label_values("node") == ["n1", "n2"]
    assert store.label_values("__name__") == [POWER, TEMP]
    assert store.label_values("missing") == []


def _minute_batch(labels: tuple[tuple[str, str], ...], start: int, minutes: int) -> Batch:
    batch = Batch()
    for m in range(minutes):
        batch.add(labels, start + m * 60_000, float(m))
    return batch


def test_compact_writes_rollups(store: MetricsStore) -> None:
    labels = gpu(TEMP, "n1", 0)
    start = T0 - T0 % STEP
    store.append(_minute_batch(labels, start, 10))  # two 5-minute buckets: 0..4, 5..9
    store.compact(start + 10 * 60_000)
    want = {"avg": [2.0, 7.0], "min": [0.0, 5.0], "max": [4.0, 9.0], "last": [4.0, 9.0],
            "count": [5.0, 5.0]}
    for agg, values in want.items():
        got = store.select_rollup([name_matcher(TEMP)], start, start + 3600_000, agg)
        assert got[0].labels == labels
        assert got[0].ts_ms.tolist() == [start, start + STEP], agg
        assert got[0].values.tolist() == values, agg
    partial = store.select_rollup([name_matcher(TEMP)], start + 1, start + 3600_000, "avg")
    assert partial[0].ts_ms.tolist() == [start + STEP]


def test_empty_batch_is_fine(store: MetricsStore) -> None:
    store.append(Batch())
    assert store.label_names() == []
    assert store.select([name_matcher(TEMP)], 0, T0) == []


# What only the embedded stores promise: last write wins, compaction, retention, counts.


def test_same_series_and_timestamp_last_write_wins(embedded_store: MetricsStore) -> None:
    labels = gpu(TEMP, "n1", 0)
    first, again = Batch(), Batch()
    first.add(labels, T0, 1.0)
    first.add(labels, T0, 2.0)  # duplicate inside one batch
    first.add(labels, T0 + 1, 5.0)
    embedded_store.append(first)
    embedded_store.select([name_matcher(TEMP)], T0, T0)  # forces earlier data to be stored
    again.add(labels, T0, 3.0)  # redelivery after the first was stored
    embedded_store.append(again)
    got = embedded_store.select([name_matcher(TEMP)], T0, T0 + 1)
    assert got[0].ts_ms.tolist() == [T0, T0 + 1]
    assert got[0].values.tolist() == [3.0, 5.0]
    assert embedded_store.latest([name_matcher(TEMP)], T0) == [LatestSample(labels, T0 + 1, 5.0)]
    newest = Batch()
    newest.add(labels, T0 + 1, 9.0)
    newest.add(labels, T0 + 1, 6.0)
    embedded_store.append(newest)
    assert [s.value for s in embedded_store.latest([name_matcher(TEMP)], T0)] == [6.0]
    embedded_store.append(first)
    embedded_store.append(first)
    assert embedded_store.stats()["series"] == 1
    assert embedded_store.select([name_matcher(TEMP)], T0, T0)[0].values.tolist() == [2.0]
    embedded_store.compact(T0 + 60_000)
    count = embedded_store.select_rollup([name_matcher(TEMP)], 0, T0 + 60_000, "count")
    assert count[0].values.tolist() == [2.0]  # T0 and T0 + 1 once each
    last = embedded_store.select_rollup([name_matcher(TEMP)], 0, T0 + 60_000, "last")
    assert last[0].values.tolist() == [5.0]


def test_stats_counts(embedded_store: MetricsStore) -> None:
    embedded_store.append(fleet_batch())
    stats = embedded_store.stats()
    assert stats["series"] == 8
    assert stats["samples"] == 24


def test_compact_again_after_late_samples(embedded_store: MetricsStore) -> None:
    labels = gpu(TEMP, "n1", 0)
    start = T0 - T0 % STEP
    embedded_store.append(_minute_batch(labels, start, 5))
    embedded_store.compact(start + 20 * 60_000)
    late = Batch()
    late.add(labels, start + 30_000, 100.0)  # lands in the first bucket, already rolled up
    embedded_store.append(late)
    embedded_store.compact(start + 21 * 60_000)
    got = embedded_store.select_rollup([name_matcher(TEMP)], start, start, "count")
    assert got[0].values.tolist() == [6.0]
    highest = embedded_store.select_rollup([name_matcher(TEMP)], start, start, "max")
    assert highest[0].values.tolist() == [100.0]


def test_retention_drops_raw_then_rollups(embedded_store: MetricsStore) -> None:
    old, new = gpu(TEMP, "old", 0), gpu(TEMP, "new", 0)
    start = T0 - T0 % STEP
    embedded_store.append(_minute_batch(old, start, 5))
    embedded_store.append(_minute_batch(new, start + 2 * 3600_000, 5))
    embedded_store.compact(start + 2 * 3600_000 + 5 * 60_000)  # raw_s is one hour
    raw = embedded_store.select([name_matcher(TEMP)], 0, start + 10 * 3600_000)
    assert names_of(raw) == [f"{TEMP}/new/0"]
    assert embedded_store.label_values("node") == ["new"]
    assert embedded_store.stats()["samples"] == 5
    rolled = embedded_store.select_rollup([name_matcher(TEMP)], 0, start + 10 * 3600_000, "count")
    assert sorted(names_of(rolled)) == [f"{TEMP}/new/0", f"{TEMP}/old/0"]
    embedded_store.compact(start + 25 * 3600_000)  # rollup_s is one day
    rolled = embedded_store.select_rollup([name_matcher(TEMP)], 0, start + 30 * 3600_000, "count")
    assert names_of(rolled) == [f"{TEMP}/new/0"]
    embedded_store.compact(start + 27 * 3600_000)
    assert embedded_store.select_rollup([name_matcher(TEMP)], 0, start + 30 * 3600_000) == []


def test_empty_batch_stores_nothing(embedded_store: MetricsStore) -> None:
    embedded_store.append(Batch())
    assert embedded_store.stats()["samples"] == 0
