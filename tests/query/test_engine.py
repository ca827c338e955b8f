"""The PromQL engine against a real Prometheus over the same hour of fleet data."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from dcops.backends.duckdb_store import DuckDBMetricsStore
from dcops.core.clock import FakeClock
from dcops.query import Engine, QueryError
from dcops.telemetry.remote_write import encode_write_request
from dcops.telemetry.store import MemoryMetricsStore, MetricsStore, Retention
from tests.fixtures.prometheus import PrometheusFactory
from tests.query.differential import (
    differences,
    engine_answer,
    load_corpus,
    prometheus_answer,
)
from tests.query.fleet_data import fleet_batches

WRITE_HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                 "X-Prometheus-Remote-Write-Version": "0.1.0"}


def _store(kind: str, directory: Path) -> MetricsStore:
    if kind == "memory":
        return MemoryMetricsStore()
    return DuckDBMetricsStore(directory / "metrics", Retention(), flush_interval_s=3600,
                              clock=FakeClock())


@pytest.mark.engines
@pytest.mark.parametrize("kind", ["memory", "duckdb"])
def test_engine_answers_like_prometheus(prometheus_factory: PrometheusFactory, kind: str,
                                        tmp_path: Path) -> None:
    """The whole corpus, over the in-memory store and over DuckDB's columnar fast path."""
    server = prometheus_factory()
    start_ms = (int(time.time()) // 60 - 62) * 60_000
    store = _store(kind, tmp_path)
    for batch in fleet_batches(start_ms):
        store.append(batch)
        reply = httpx.post(f"{server.url}/api/v1/write", content=encode_write_request(batch),
                           headers=WRITE_HEADERS, timeout=10.0)
        assert reply.status_code == 204, reply.text
    engine = Engine(store)
    # Times between samples, and times exactly 5 minutes after a sample (the lookback edge,
    # and a range edge: dc_gpu_power_watts{rack="r2",gpu="1"} has its last sample before a
    # gap at start + 1_485_007).
    at_ms = [start_ms + 20 * 60_000 + 7_250, start_ms + 38 * 60_000,
             start_ms + 59 * 60_000 + 999, start_ms + 1_785_007]
    grids = [(start_ms + 4 * 60_000 + 500, start_ms + 61 * 60_000, 37_000),
             (start_ms + 1_485_007, start_ms + 1_785_007, 15_000)]
    cases = load_corpus(at_s=f"{(start_ms + 30 * 60_000 + 3_500) / 1000:.3f}")
    assert len(cases) >= 100
    failures = []
    client = httpx.Client(base_url=server.url, timeout=10.0)
    for case in cases:
        for grid in grids if case.kind == "range" else grids[:1]:
            ours = engine_answer(engine, case, at_ms, grid)
            theirs = prometheus_answer(client, case, at_ms, grid)
            for a, b in zip(ours, theirs, strict=True):
                found = differences(a, b, ordered=case.query.startswith("sort"))
                failures += [f"{case.kind} {case.query}: {d}" for d in found]
    client.close()
    store.close()
    assert not failures, "\n".join(failures)


def test_unsupported_constructs_are_refused_not_guessed() -> None:
    engine = Engine(MemoryMetricsStore())
    for query in ("rate(foo[5m:])", "limitk(1, foo)", "mad_over_time(foo[5m])",
                  "double_exponential_smoothing(foo[5m], 0.5, 0.5)", "info(foo)",
                  "predict_linear(foo[5m] @ 100, 60)", "foo or on(a) fill(0) bar"):
        with pytest.raises(QueryError) as caught:
            engine.instant(query, 1_000_000)
        assert caught.value.kind == "bad_data"
        assert "unsupported" in caught.value.message


def test_regular_expressions_python_cannot_read_are_refused() -> None:
    store = MemoryMetricsStore()
    store.append(fleet_batches(1_700_000_000_000, chunks=1)[0])
    with pytest.raises(QueryError) as caught:  # RE2's Unicode classes: not in Python's re
        Engine(store).instant(r'dc_rack_info{owner=~"\\pL+"}', 1_700_000_600_000)
    assert caught.value.kind == "bad_data"
    assert "unsupported: regular expression" in caught.value.message


def test_too_many_samples_is_an_execution_error() -> None:
    store = MemoryMetricsStore()
    batches = fleet_batches(1_700_000_000_000, chunks=1)
    store.append(batches[0])
    engine = Engine(store, max_samples=100)
    with pytest.raises(QueryError) as caught:
        engine.range("rate(dc_requests_total[5m])", 1_700_000_000_000, 1_700_000_600_000, 15_000)
    assert caught.value.kind == "execution"


def test_parse_errors_are_bad_data() -> None:
    with pytest.raises(QueryError) as caught:
        Engine(MemoryMetricsStore()).instant("sum(", 0)
    assert caught.value.kind == "bad_data"


def test_range_result_carries_numpy_points() -> None:
    store = MemoryMetricsStore()
    store.append(fleet_batches(1_700_000_000_000, chunks=1)[0])
    result = Engine(store).range("dc_rack_info", 1_700_000_060_000, 1_700_000_120_000, 30_000)
    assert result.result_type == "matrix"
    # sorted by label set, as Prometheus sorts a matrix: owner="infra" before owner="ml"
    assert [dict(s.labels)["rack"] for s in result.series] == ["r2", "r1"]
    assert result.series[0].ts_ms.tolist() == [1_700_000_060_000, 1_700_000_090_000,
                                               1_700_000_120_000]
    assert np.array_equal(result.series[0].values, np.ones(3))


@pytest.mark.parametrize(("query", "start", "end", "step", "message"), [
    ("dc_rack_info", 0, 60_000, 0, "zero or negative query resolution step"),
    ("dc_rack_info", 60_000, 0, 1_000, "end timestamp must not be before start time"),
    ("dc_rack_info", 0, 12_000_000, 1_000, "exceeded maximum resolution"),
    ("dc_rack_info[5m]", 0, 60_000, 1_000, 'invalid expression type "range vector"'),
    ('"text"', 0, 60_000, 1_000, 'invalid expression type "string"'),
])
def test_range_queries_refuse_what_prometheus_refuses(query: str, start: int, end: int,
                                                      step: int, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        Engine(MemoryMetricsStore()).range(query, start, end, step)
    assert caught.value.kind == "bad_data"
    assert message in caught.value.message


def test_lookback_delta_decides_how_old_a_sample_may_be() -> None:
    store = MemoryMetricsStore()
    store.append(fleet_batches(1_700_000_000_000, chunks=1)[0])
    # dc_gpu_power_watts{rack="r2",gpu="1"}: last sample before its gap at +1_485_007
    at = 1_700_000_000_000 + 1_485_007 + 60_000
    query = 'dc_gpu_power_watts{rack="r2", gpu="1"}'
    assert len(Engine(store).instant(query, at).series) == 1
    assert Engine(store, lookback_delta_ms=60_000).instant(query, at).series
    assert not Engine(store, lookback_delta_ms=59_999).instant(query, at).series


def test_a_staleness_marker_ends_a_series_until_it_returns() -> None:
    start = 1_700_000_000_000
    store = MemoryMetricsStore()
    store.append(fleet_batches(start, chunks=1)[0])
    engine = Engine(store)
    marker_ms = start + 120 * 15_000 + 11  # dc_flaky_up's marker; it returns 15 samples later
    assert engine.instant("dc_flaky_up", marker_ms - 1).series
    assert not engine.instant("dc_flaky_up", marker_ms).series
    assert not engine.instant("dc_flaky_up", marker_ms + 14 * 15_000).series
    assert engine.instant("dc_flaky_up", marker_ms + 15 * 15_000).series
    # range functions skip the marker itself rather than reading it as a NaN value
    counted = engine.instant("count_over_time(dc_flaky_up[1m])", marker_ms + 30_000)
    assert counted.series[0].values.tolist() == [2.0]
