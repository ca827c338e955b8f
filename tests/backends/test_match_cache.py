"""The DuckDB store's cache of selector matches: a rule's selectors are matched once, and
every answer stays what matching afresh would give as series come, go stale, or are
rewritten."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dcops.backends.duckdb_store import DuckDBMetricsStore
from dcops.core.clock import FakeClock
from dcops.query.vector import STALE_NAN_BITS
from dcops.telemetry.model import Batch, Labels, Matcher, MatchOp, make_labels
from dcops.telemetry.store import Retention

T0 = 1_700_000_000_000
TEMP = "dcops_gpu_temperature_celsius"
STALE = float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBMetricsStore]:
    opened = DuckDBMetricsStore(tmp_path, Retention(), clock=FakeClock(), flush_interval_s=3600)
    yield opened
    opened.close()


def gpu(node: str, index: int, name: str = TEMP, rack: str = "r1") -> Labels:
    return make_labels(name, {"rack": rack, "node": node, "gpu": str(index)})


def write(store: DuckDBMetricsStore, ts_ms: int, samples: dict[Labels, float]) -> None:
    batch = Batch()
    for labels, value in samples.items():
        batch.add(labels, ts_ms, value)
    store.append(batch)


def newest(store: DuckDBMetricsStore, matchers: list[Matcher], at_ms: int) -> dict[Labels, float]:
    """What an instant selector at `at_ms` reads (the newest-sample path)."""
    block = store.select_steps(matchers, at_ms - 300_000, at_ms, at_ms, 300_001)
    return dict(zip(block.labels, block.values.tolist(), strict=True))


def window(store: DuckDBMetricsStore, matchers: list[Matcher], start_ms: int,
           end_ms: int) -> dict[Labels, list[float]]:
    return {s.labels: s.values.tolist() for s in store.select(matchers, start_ms, end_ms)}


RACK = [Matcher("__name__", MatchOp.EQ, TEMP), Matcher("rack", MatchOp.EQ, "r1")]
ANY_NAME = [Matcher("rack", MatchOp.EQ, "r1")]
REGEX = [Matcher("__name__", MatchOp.RE, "dcops_gpu_.*"), Matcher("gpu", MatchOp.NE, "0")]


@pytest.mark.parametrize("matchers", [RACK, ANY_NAME, REGEX])
def test_a_new_matching_series_is_seen_at_once(store: DuckDBMetricsStore,
                                               matchers: list[Matcher]) -> None:
    write(store, T0, {gpu("n1", 1): 50.0})
    assert newest(store, matchers, T0) == {gpu("n1", 1): 50.0}
    write(store, T0 + 15_000, {gpu("n1", 1): 51.0, gpu("n2", 1): 60.0})
    assert newest(store, matchers, T0 + 15_000) == {gpu("n1", 1): 51.0, gpu("n2", 1): 60.0}
    assert window(store, matchers, T0, T0 + 15_000) == {gpu("n1", 1): [50.0, 51.0],
                                                        gpu("n2", 1): [60.0]}


def test_series_of_other_names_and_racks_leave_the_answer_alone(
        store: DuckDBMetricsStore) -> None:
    write(store, T0, {gpu("n1", 1): 50.0})
    assert newest(store, RACK, T0) == {gpu("n1", 1): 50.0}
    write(store, T0 + 1, {gpu("n1", 1, name="bench:rule1"): 1.0, gpu("n9", 1, rack="r2"): 7.0})
    assert newest(store, RACK, T0 + 1) == {gpu("n1", 1): 50.0}
    assert newest(store, ANY_NAME, T0 + 1) == {gpu("n1", 1): 50.0,
                                               gpu("n1", 1, name="bench:rule1"): 1.0}


def test_answers_stay_in_label_order_as_series_come(store: DuckDBMetricsStore) -> None:
    write(store, T0, {gpu("n5", 1): 5.0})
    newest(store, RACK, T0)
    for i, node in enumerate(["n9", "n1", "n3", "n7"]):
        write(store, T0 + i + 1, {gpu(node, 1): float(i)})
        labels = list(newest(store, RACK, T0 + i + 1))
        assert labels == sorted(labels)


def test_a_series_gone_stale_or_quiet_drops_out(store: DuckDBMetricsStore) -> None:
    write(store, T0, {gpu("n1", 1): 50.0, gpu("n2", 1): 60.0})
    assert len(newest(store, RACK, T0)) == 2
    write(store, T0 + 15_000, {gpu("n1", 1): 51.0, gpu("n2", 1): STALE})
    found = newest(store, RACK, T0 + 15_000)
    assert found[gpu("n1", 1)] == 51.0
    assert np.isnan(found[gpu("n2", 1)])  # the marker itself: the engine drops it
    write(store, T0 + 400_000, {gpu("n1", 1): 52.0})
    assert newest(store, RACK, T0 + 400_000) == {gpu("n1", 1): 52.0}  # n2 is past lookback


def test_rewritten_and_out_of_order_samples_are_read_as_written(
        store: DuckDBMetricsStore) -> None:
    write(store, T0 + 30_000, {gpu("n1", 1): 3.0})
    assert window(store, RACK, T0, T0 + 30_000) == {gpu("n1", 1): [3.0]}
    write(store, T0 + 15_000, {gpu("n1", 1): 2.0})  # late
    write(store, T0 + 30_000, {gpu("n1", 1): 4.0})  # overwritten
    assert window(store, RACK, T0, T0 + 30_000) == {gpu("n1", 1): [2.0, 4.0]}
    assert newest(store, RACK, T0 + 30_000) == {gpu("n1", 1): 4.0}


def test_cached_ids_cannot_be_changed_by_a_reader(store: DuckDBMetricsStore) -> None:
    write(store, T0, {gpu("n1", 1): 50.0})
    newest(store, RACK, T0)
    with store._lock:
        ids = store._matching(RACK)
    with pytest.raises(ValueError):
        ids[0] = 99


def test_reopened_store_matches_what_it_holds(tmp_path: Path) -> None:
    first = DuckDBMetricsStore(tmp_path, Retention(), clock=FakeClock())
    write(first, T0, {gpu("n1", 1): 50.0})
    assert newest(first, RACK, T0) == {gpu("n1", 1): 50.0}
    first.close()
    again = DuckDBMetricsStore(tmp_path, Retention(), clock=FakeClock())
    try:
        write(again, T0 + 1, {gpu("n2", 1): 60.0})
        assert newest(again, RACK, T0 + 1) == {gpu("n1", 1): 50.0, gpu("n2", 1): 60.0}
    finally:
        again.close()
