"""The prometheus metrics backend against a real Prometheus: what the contract suite
(tests/telemetry/test_store_contract.py) leaves to each store, and how it fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from dcops.backends import prometheus
from dcops.backends.prometheus import PrometheusMetricsStore, quote, selector
from dcops.backends.prometheus_http import PrometheusClient
from dcops.core.clock import FakeClock
from dcops.core.errors import Invalid, Unavailable
from dcops.telemetry.model import Batch, Labels, Matcher, MatchOp, make_labels, name_matcher
from tests.fixtures.engines import free_port
from tests.fixtures.prometheus import PrometheusFactory, PrometheusServer

T0 = 1_700_000_000_000
STEP = 300_000
TEMP = "dcops_gpu_temperature_celsius"
POWER = "dcops_gpu_power_watts"


def _store(url: str) -> PrometheusMetricsStore:
    return PrometheusMetricsStore(PrometheusClient(url, timeout_s=5), FakeClock(T0 / 1000))


@pytest.fixture
def store(prometheus_server: PrometheusServer) -> Iterator[PrometheusMetricsStore]:
    made = _store(prometheus_server.url)
    yield made
    made.close()


def _one(labels: Labels, ts: int, value: float) -> Batch:
    batch = Batch()
    batch.add(labels, ts, value)
    return batch


def test_quote_escapes_backslash_quote_and_newline() -> None:
    assert quote('a"b\\c\nd\te') == r'"a\"b\\c\nd\te"'


def test_selectors_always_have_a_matcher_that_needs_a_value() -> None:
    assert selector([]) == '{__name__=~".+"}'
    assert selector([Matcher("pool", MatchOp.EQ, "")]) == '{pool="",__name__=~".+"}'
    assert selector([Matcher("gpu", MatchOp.RE, "1|")]) == '{gpu=~"1|",__name__=~".+"}'
    assert selector([Matcher("gpu", MatchOp.NRE, "1")]) == '{gpu!~"1",__name__=~".+"}'
    assert selector([name_matcher(TEMP), Matcher("gpu", MatchOp.NE, "3")]) == (
        f'{{__name__="{TEMP}",gpu!="3"}}')
    assert selector([Matcher("pool", MatchOp.NE, "")]) == '{pool!=""}'
    with pytest.raises(Invalid):
        selector([Matcher("bad-name", MatchOp.EQ, "x")])


@pytest.mark.engines
def test_label_values_that_need_escaping_round_trip(store: PrometheusMetricsStore) -> None:
    odd = 'say "hi"\\ there\nand\tthen'
    labels = make_labels(TEMP, {"note": odd, "gpu": "10"})
    store.append(_one(labels, T0, 1.0))
    assert [s.labels for s in store.select([Matcher("note", MatchOp.EQ, odd)], T0, T0)] == [
        labels]
    by_regex = store.select([Matcher("gpu", MatchOp.RE, r"\d+"),
                             Matcher("note", MatchOp.RE, r'say "hi"\\ .*')], T0, T0)
    assert [s.labels for s in by_regex] == []  # "." does not match the newline, as in Go
    by_regex = store.select([Matcher("gpu", MatchOp.RE, r"\d+"),
                             Matcher("note", MatchOp.RE, r'say "hi"\\ (?s:.*)')], T0, T0)
    assert [s.labels for s in by_regex] == [labels]
    assert store.label_values("note") == [odd]


@pytest.mark.engines
def test_no_matchers_select_every_series(store: PrometheusMetricsStore) -> None:
    batch = Batch()
    batch.add(make_labels(TEMP, {"gpu": "0"}), T0, 40.0)
    batch.add(make_labels(POWER, {"gpu": "0"}), T0, 300.0)
    store.append(batch)
    assert [dict(s.labels)["__name__"] for s in store.select([], T0, T0)] == [POWER, TEMP]
    assert len(store.latest([], T0)) == 2
    assert len(store.series([], T0, T0)) == 2


@pytest.mark.engines
def test_ranges_are_closed_and_exact_to_the_millisecond(store: PrometheusMetricsStore) -> None:
    labels = make_labels(TEMP, {"gpu": "0"})
    batch = Batch()
    for ts in (T0 - 1, T0, T0 + 1, T0 + 2):
        batch.add(labels, ts, float(ts - T0))
    store.append(batch)
    assert store.select([name_matcher(TEMP)], T0, T0)[0].values.tolist() == [0.0]  # zero width
    assert store.select([name_matcher(TEMP)], T0, T0 + 1)[0].ts_ms.tolist() == [T0, T0 + 1]
    assert store.select([name_matcher(TEMP)], T0 + 3, T0 + 9) == []
    assert store.select([name_matcher(TEMP)], T0, T0 - 1) == []


@pytest.mark.engines
def test_long_ranges_are_read_in_pieces(store: PrometheusMetricsStore,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    labels = make_labels(TEMP, {"gpu": "0"})
    batch = Batch()
    for k in range(20):
        batch.add(labels, T0 + k * 1000, float(k))
    store.append(batch)
    whole = store.select([name_matcher(TEMP)], 0, 2 * 10**13)  # ~600 years: several windows
    assert whole[0].ts_ms.tolist() == [T0 + k * 1000 for k in range(20)]
    monkeypatch.setattr(prometheus, "MAX_WINDOW_MS", 2_500)  # pieces end inside the data
    pieces = store.select([name_matcher(TEMP)], T0, T0 + 19_000)
    assert pieces[0].ts_ms.tolist() == whole[0].ts_ms.tolist()
    assert pieces[0].values.tolist() == [float(k) for k in range(20)]
    assert store.latest([name_matcher(TEMP)], T0)[0].value == 19.0


@pytest.mark.engines
def test_rollups_keep_metric_names_apart(store: PrometheusMetricsStore,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    start = T0 - T0 % STEP
    batch = Batch()
    for m in range(60):  # an hour of minutes: 12 buckets
        batch.add(make_labels(TEMP, {"node": "n1"}), start + m * 60_000, float(m))
        batch.add(make_labels(POWER, {"node": "n1"}), start + m * 60_000, 100.0 + m)
    store.append(batch)
    whole = store.select_rollup([Matcher("node", MatchOp.EQ, "n1")], start, start + 3600_000,
                                "max")
    assert [dict(s.labels)["__name__"] for s in whole] == [POWER, TEMP]
    for agg in prometheus.ROLLUP_FUNCTIONS:  # last_over_time keeps __name__, the rest drop it
        got = store.select_rollup([Matcher("node", MatchOp.EQ, "n1")], start, start, agg)
        assert [s.labels for s in got] == [make_labels(POWER, {"node": "n1"}),
                                           make_labels(TEMP, {"node": "n1"})], agg
    assert whole[1].ts_ms.tolist() == [start + b * STEP for b in range(12)]
    assert whole[1].values.tolist() == [5.0 * b + 4 for b in range(12)]
    assert whole[0].values.tolist() == [104.0 + 5 * b for b in range(12)]
    monkeypatch.setattr(prometheus, "MAX_STEPS", 5)  # 12 buckets in three range queries
    pieces = store.select_rollup([Matcher("node", MatchOp.EQ, "n1")], start,
                                 start + 3600_000, "max")
    assert [(s.labels, s.ts_ms.tolist(), s.values.tolist()) for s in pieces] == [
        (s.labels, s.ts_ms.tolist(), s.values.tolist()) for s in whole]
    assert store.select_rollup([name_matcher("nothing")], start, start + 3600_000) == []
    assert store.select_rollup([name_matcher(TEMP)], start + 1, start + STEP - 1) == []
    with pytest.raises(Invalid):
        store.select_rollup([name_matcher(TEMP)], start, start, "median")


@pytest.mark.engines
def test_out_of_order_and_conflicting_samples_are_refused(
        store: PrometheusMetricsStore) -> None:
    labels = make_labels(TEMP, {"gpu": "0"})
    store.append(_one(labels, T0, 40.0))
    store.append(_one(labels, T0, 40.0))  # a redelivery of the same sample is fine
    with pytest.raises(Invalid) as older:
        store.append(_one(labels, T0 - 1000, 39.0))
    assert older.value.status == 400 and older.value.message == "out of order sample"
    with pytest.raises(Invalid) as conflicting:
        store.append(_one(labels, T0, 41.0))
    assert conflicting.value.message == "duplicate sample for timestamp"
    mixed = Batch()
    mixed.add(make_labels(POWER, {"gpu": "0"}), T0 + 1000, 300.0)
    mixed.add(labels, T0 - 2000, 38.0)
    with pytest.raises(Invalid):
        store.append(mixed)
    assert store.select([], 0, 2 * T0)[0].labels == labels  # nothing of `mixed` was kept
    assert store.select([], 0, 2 * T0)[0].values.tolist() == [40.0]
    assert len(store.select([], 0, 2 * T0)) == 1


@pytest.mark.engines
def test_compact_leaves_the_data_to_the_remote_store(store: PrometheusMetricsStore) -> None:
    store.append(_one(make_labels(TEMP, {"gpu": "0"}), T0, 40.0))
    store.compact(T0 + 365 * 86_400_000)
    assert store.select([name_matcher(TEMP)], T0, T0)[0].values.tolist() == [40.0]


@pytest.mark.engines
def test_stats_are_the_heads(store: PrometheusMetricsStore) -> None:
    assert store.stats() == {"series": 0, "head_chunks": 0}
    batch = Batch()
    for gpu in range(3):
        batch.add(make_labels(TEMP, {"gpu": str(gpu)}), T0, 40.0)
    store.append(batch)
    assert store.stats() == {"series": 3, "head_chunks": 3}


def test_an_unreachable_store_is_unavailable_and_stats_stay_quiet() -> None:
    store = _store(f"http://127.0.0.1:{free_port()}")
    calls: list[Callable[[], object]] = [
        lambda: store.append(_one(make_labels(TEMP, {}), T0, 1.0)),
        lambda: store.select([name_matcher(TEMP)], T0, T0),
        lambda: store.latest([name_matcher(TEMP)], T0),
        lambda: store.select_rollup([name_matcher(TEMP)], T0, T0 + STEP),
        lambda: store.series([name_matcher(TEMP)], T0, T0),
        store.label_names, lambda: store.label_values("gpu")]
    for call in calls:
        with pytest.raises(Unavailable) as caught:
            call()
        assert "is unreachable" in caught.value.message
    assert store.stats() == {}
    store.compact(T0)
    store.close()


@pytest.mark.engines
def test_a_prometheus_without_the_receiver_is_unavailable_not_invalid(
        prometheus_factory: PrometheusFactory) -> None:
    server = prometheus_factory(remote_write_receiver=False)
    store = _store(server.url)
    with pytest.raises(Unavailable) as caught:
        store.append(_one(make_labels(TEMP, {}), T0, 1.0))
    assert "404" in caught.value.message
    assert "remote write receiver needs to be enabled" in caught.value.message
    store.close()
