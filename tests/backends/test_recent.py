"""The in-memory rings of recent samples: reads from them equal reads of the stored samples,
whatever order samples arrive in, and they step aside where they cannot answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcops.backends.duckdb_store import DuckDBMetricsStore
from dcops.backends.recent import BLOCK_SHIFT, RecentSamples
from dcops.core.clock import FakeClock
from dcops.query import Engine
from dcops.telemetry.model import Batch, make_labels, name_matcher
from dcops.telemetry.store import MemoryMetricsStore, Retention, select_block

T0 = 1_700_000_000_000
NAME = "dcops_gpu_power_watts"


def _arrays(*rows: tuple[int, int, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sids, ts, values = zip(*rows, strict=True)
    return (np.array(sids, dtype=np.int64), np.array(ts, dtype=np.int64),
            np.array(values, dtype=np.float64))


def test_a_ring_holds_the_newest_samples_and_knows_from_when() -> None:
    rings = RecentSamples(capacity=3)
    rings.start(2, 100, *_arrays((0, 100, 1.0)))
    rings.append(*_arrays((0, 110, 2.0), (0, 120, 3.0), (1, 105, 9.0)))
    found = rings.read(np.array([0, 1]), 100, 200)
    assert found is not None
    assert [a.tolist() for a in found] == [[3, 1], [100, 110, 120, 105], [1.0, 2.0, 3.0, 9.0]]
    assert rings.read(np.array([0]), 99, 200) is None  # before what the rings were given
    rings.append(*_arrays((0, 130, 4.0)))  # wraps: sample 100 is gone
    assert rings.read(np.array([0]), 100, 200) is None
    found = rings.read(np.array([0]), 110, 125)
    assert found is not None and found[1].tolist() == [110, 120]
    rings.append(*_arrays((0, 115, 5.0)))  # late: the ring starts again after its newest
    assert rings.read(np.array([0]), 130, 200) is None
    assert rings.read(np.array([0]), 131, 200) is not None
    rings.append(*_arrays((0, 140, 6.0)))
    found = rings.read(np.array([0, 1]), 131, 200)
    assert found is not None and found[1].tolist() == [140] and found[0].tolist() == [1, 0]
    rings.forget_before(150)
    assert rings.read(np.array([1]), 140, 200) is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reads_near_the_present_match_the_stored_samples(tmp_path: Path, seed: int) -> None:
    """Random batches: in order, late, rewritten, bursts larger than a ring; then reopen."""
    rng = np.random.default_rng(seed)
    duck = DuckDBMetricsStore(tmp_path / "m", Retention(), flush_interval_s=3600,
                              clock=FakeClock(), recent_samples=8)
    memory = MemoryMetricsStore()
    labels = [make_labels(NAME, {"node": f"n{i}"}) for i in range(5)]
    now = T0
    for _ in range(40):
        batch = Batch()
        for lab in labels:
            for _ in range(int(rng.integers(0, 12))):
                late = rng.random() < 0.1
                ts = now - int(rng.integers(0, 200_000)) if late else now
                batch.add(lab, ts, float(rng.integers(0, 100)))
                now += int(rng.integers(1, 15_000))
        duck.append(batch)
        memory.append(batch)
        for _ in range(5):
            start = now - int(rng.integers(0, 400_000))
            ours = select_block(duck, [name_matcher(NAME)], start, now)
            theirs = select_block(memory, [name_matcher(NAME)], start, now)
            assert ours.labels == theirs.labels
            assert ours.offsets.tolist() == theirs.offsets.tolist()
            assert ours.ts_ms.tolist() == theirs.ts_ms.tolist()
            assert ours.values.tolist() == theirs.values.tolist()
    query = f"sum(rate({NAME}[2m])) and sum(increase({NAME}[30s]))"
    assert Engine(duck).instant(query, now).to_prometheus_json() == \
        Engine(memory).instant(query, now).to_prometheus_json()
    duck.close()
    reopened = DuckDBMetricsStore(tmp_path / "m", Retention(), flush_interval_s=3600,
                                  clock=FakeClock(), recent_samples=8)
    start = now - 300_000
    assert select_block(reopened, [name_matcher(NAME)], start, now).ts_ms.tolist() == \
        select_block(memory, [name_matcher(NAME)], start, now).ts_ms.tolist()
    reopened.close()


def test_rings_of_series_far_apart_in_id_are_read_and_wrapped_alike() -> None:
    block = 1 << BLOCK_SHIFT
    ids = [3, block - 1, block, 2 * block + 5]  # three blocks of rows
    rings = RecentSamples(capacity=2)
    rings.start(1, 100, *_arrays((0, 100, 0.0)))
    for k in range(3):  # the third sample wraps every ring
        rings.append(*_arrays(*((sid, 110 + k, float(sid + k)) for sid in ids)))
    found = rings.read(np.array(ids[::-1]), 111, 200)  # any order, across blocks
    assert found is not None
    counts, ts, values = found
    assert counts.tolist() == [2, 2, 2, 2]
    assert ts.tolist() == [111, 112] * 4
    assert values.tolist() == [v for sid in ids[::-1] for v in (sid + 1.0, sid + 2.0)]
    assert rings.read(np.array([ids[0], ids[3]]), 110, 200) is None  # 110 was overwritten
    one = rings.read(np.array([ids[2]]), 111, 111)
    assert one is not None and one[2].tolist() == [block + 1.0]
