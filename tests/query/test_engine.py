"""The PromQL engine against a real Prometheus over the same hour of fleet data."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from dcops.backends.duckdb_store import DuckDBMetricsStore
from dcops.core.clock import FakeClock
from dcops.query import Engine, QueryError
from dcops.query.result import Result
from dcops.telemetry.model import Batch, make_labels
from dcops.telemetry.store import MemoryMetricsStore, MetricsStore, Retention
from tests.fixtures.prometheus import PrometheusFactory
from tests.query.differential import load_both, run_corpus
from tests.query.fleet_data import fleet_batches


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
    load_both(store, server.url, start_ms)
    client = httpx.Client(base_url=server.url, timeout=10.0)
    run = run_corpus(Engine(store), client, start_ms)
    assert run.compared >= 400
    client.close()
    store.close()
    assert not run.failures, "\n".join(run.failures)


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


def test_one_engine_groups_alike_however_often_and_however_asked() -> None:
    store = MemoryMetricsStore()
    batch = Batch()
    for node, gpu, value in [("n1", "0", 1.0), ("n1", "1", 2.0), ("n2", "0", 4.0)]:
        batch.add(make_labels("temp", {"node": node, "gpu": gpu}), 1000, value)
    store.append(batch)
    engine = Engine(store)

    def answer(query: str) -> list[tuple[dict[str, str], float]]:
        return [(dict(s.labels), float(s.values[0]))
                for s in engine.instant(query, 1000).series]

    for _ in range(2):  # the second time from remembered group keys
        assert answer("sum by (node) (temp)") == [({"node": "n1"}, 3.0), ({"node": "n2"}, 4.0)]
        assert answer("sum by (gpu) (temp)") == [({"gpu": "0"}, 5.0), ({"gpu": "1"}, 2.0)]
        assert answer("sum without (gpu) (temp)") == [({"node": "n1"}, 3.0),
                                                      ({"node": "n2"}, 4.0)]
        assert answer("max without (node) (temp)") == [({"gpu": "0"}, 4.0), ({"gpu": "1"}, 2.0)]
    batch = Batch()
    batch.add(make_labels("temp", {"node": "n3", "gpu": "0"}), 1000, 8.0)
    store.append(batch)
    assert answer("sum by (gpu) (temp)") == [({"gpu": "0"}, 13.0), ({"gpu": "1"}, 2.0)]


@pytest.mark.parametrize("kind", ["memory", "duckdb"])
def test_instant_samples_are_the_instant_answer_as_pairs(kind: str, tmp_path: Path) -> None:
    """Every instant query of the corpus: the pairs rule evaluation reads are the series of
    `instant`, in its order (by labels, or by value for sort/sort_desc)."""
    start_ms = (int(time.time()) // 60 - 62) * 60_000
    store = _store(kind, tmp_path)
    for batch in fleet_batches(start_ms):
        store.append(batch)
    engine = Engine(store)
    at_ms = start_ms + 50 * 60_000
    corpus = Path(__file__).with_name("corpus.txt").read_text().splitlines()
    queries = [line.removeprefix("i ") for line in corpus
               if line and not line.startswith(("#", "r "))]
    vectors = 0
    for query in [*queries, "sort_desc(dc_gpu_power_watts)", "sort(dc_requests_total)"]:
        try:
            answer = engine.instant(query, at_ms)
        except QueryError as exc:
            with pytest.raises(QueryError, match=re.escape(str(exc))):
                engine.instant_samples(query, at_ms)
            continue
        pairs = engine.instant_samples(query, at_ms)
        if answer.result_type != "vector":
            assert isinstance(pairs, Result), query
            assert pairs.to_prometheus_json() == answer.to_prometheus_json(), query
            continue
        vectors += 1
        assert isinstance(pairs, list)
        expected = [(s.labels, float(s.values[0])) for s in answer.series]
        assert [p[0] for p in pairs] == [e[0] for e in expected], query
        np.testing.assert_array_equal([p[1] for p in pairs], [e[1] for e in expected])
        if query.startswith(("sort(", "sort_desc(")):  # by value, NaNs last
            values = np.array([p[1] for p in pairs])
            finite = values[~np.isnan(values)]
            assert not np.isnan(values[:len(finite)]).any(), query
            step = np.diff(finite)
            assert (step >= 0).all() if query.startswith("sort(") else (step <= 0).all()
        else:
            assert [p[0] for p in pairs] == sorted(p[0] for p in pairs), query
    assert vectors >= 100
