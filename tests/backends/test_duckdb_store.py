"""DuckDB metrics store specifics: reopening, crash safety under kill -9, torn WAL tails."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from dcops.backends.duckdb_store import DuckDBMetricsStore, encode_record
from dcops.backends.wal import WriteAheadLog, segment_numbers
from dcops.core import foreground
from dcops.core.clock import FakeClock
from dcops.telemetry.model import Batch, make_labels, name_matcher
from dcops.telemetry.store import Retention

NAME = "dcops_gpu_util_percent"
T0 = 1_700_000_000_000


def open_store(path: Path, *, flush_interval_s: float = 3600,
               fsync: bool = False) -> DuckDBMetricsStore:
    return DuckDBMetricsStore(path, Retention(), clock=FakeClock(), fsync=fsync,
                              flush_interval_s=flush_interval_s)


def batch_for(k: int, series: int = 20) -> Batch:
    """Batch k: one sample per series at timestamp T0 + k, value k."""
    batch = Batch()
    for s in range(series):
        batch.add(make_labels(NAME, {"node": f"n{s // 8}", "gpu": str(s % 8)}), T0 + k, float(k))
    return batch


def all_samples(store: DuckDBMetricsStore) -> dict[tuple[str, int], float]:
    out = {}
    for series in store.select([name_matcher(NAME)], 0, 2 * T0):
        key = dict(series.labels)["node"] + "/" + dict(series.labels)["gpu"]
        for ts, value in zip(series.ts_ms.tolist(), series.values.tolist(), strict=True):
            out[(key, ts)] = value
    return out


@pytest.mark.parametrize("fsync", [False, True])
def test_reopen_keeps_samples_and_series_ids(tmp_path: Path, fsync: bool) -> None:
    store = open_store(tmp_path, fsync=fsync)
    store.append(batch_for(1))
    store.close()
    store.close()  # idempotent
    again = open_store(tmp_path, fsync=fsync)
    again.append(batch_for(2))
    assert again.stats()["series"] == 20
    assert again.stats()["samples"] == 40
    assert again.stats()["wal_bytes"] > 0
    got = again.select([name_matcher(NAME)], 0, 2 * T0)
    assert all(s.ts_ms.tolist() == [T0 + 1, T0 + 2] for s in got)
    again.close()


def test_background_flush_empties_the_wal(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=0.05)
    store.append(batch_for(1))
    deadline = threading.Event()
    for _ in range(100):
        if store.stats()["wal_bytes"] == 0:
            break
        deadline.wait(0.05)
    assert store.stats()["wal_bytes"] == 0
    store.close()


def test_background_flush_waits_for_a_rule_cycle_in_progress(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=0.02)
    with foreground.busy():  # as the rules thread marks its evaluation
        store.append(batch_for(1))
        threading.Event().wait(0.3)  # many flush intervals, far below the delay limit
        assert store.stats()["wal_bytes"] > 0
        assert len(all_samples(store)) == 20  # reads still see every sample (they flush)
        store.append(batch_for(2))
        threading.Event().wait(0.3)
        assert store.stats()["wal_bytes"] > 0
    for _ in range(100):
        if store.stats()["wal_bytes"] == 0:
            break
        threading.Event().wait(0.05)
    assert store.stats()["wal_bytes"] == 0
    assert len(all_samples(store)) == 40
    store.close()


def test_concurrent_appends_and_reads(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=0.01)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for k in range(50):
                store.append(batch_for(offset + k))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i * 1000,)) for i in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        store.latest([name_matcher(NAME)], 0)
    for t in threads:
        t.join()
    assert not errors
    assert len(all_samples(store)) == 4 * 50 * 20
    store.close()


def test_torn_wal_tail_is_ignored_on_open(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    labels = make_labels(NAME, {"node": "n0", "gpu": "0"})
    wal.append(encode_record([(0, labels)], np.array([0, 0]), np.array([T0, T0 + 1]),
                             np.array([1.0, 2.0])))
    wal.append(encode_record([], np.array([0]), np.array([T0 + 2]), np.array([3.0])))
    wal.close()
    segment = tmp_path / "wal" / "0000000000000000.wal"
    segment.write_bytes(segment.read_bytes()[:-5])  # the last record was torn by a crash
    with caplog.at_level(logging.WARNING):
        store = open_store(tmp_path)
    assert "torn or corrupt record" in caplog.text
    got = store.select([name_matcher(NAME)], 0, 2 * T0)
    assert got[0].ts_ms.tolist() == [T0, T0 + 1]
    assert segment_numbers(tmp_path / "wal") == [store._wal.active]
    store.close()


def test_wal_records_of_earlier_versions_are_replayed(tmp_path: Path) -> None:
    """Earlier versions wrote a record's new series as JSON; they are still read, beside
    the marshalled ones written now."""
    wal = WriteAheadLog(tmp_path / "wal")
    old = make_labels(NAME, {"node": "n0", "gpu": "0"})
    new = make_labels(NAME, {"node": "n1", "gpu": "0"})
    series_json = json.dumps([(0, old)]).encode()
    sids, ts, values = np.array([0]), np.array([T0]), np.array([1.0])
    wal.append(struct.pack("<II", len(series_json), 1) + series_json + sids.tobytes()
               + ts.tobytes() + values.tobytes())
    wal.append(encode_record([(1, new)], np.array([1]), np.array([T0]), np.array([2.0])))
    wal.close()
    store = open_store(tmp_path)
    got = {s.labels: s.values.tolist() for s in store.select([name_matcher(NAME)], 0, 2 * T0)}
    assert got == {old: [1.0], new: [2.0]}
    store.close()


_CHILD = """
import sys
from pathlib import Path
from dcops.core.clock import FakeClock
from dcops.backends.duckdb_store import DuckDBMetricsStore
from dcops.telemetry.store import Retention
from tests.backends.test_duckdb_store import batch_for
store = DuckDBMetricsStore(Path(sys.argv[1]), Retention(), clock=FakeClock(),
                           flush_interval_s=float(sys.argv[3]))
if sys.argv[4] == "keep-wal":
    store._wal.remove_through = lambda number: None  # crash between commit and WAL delete
k = int(sys.argv[2])
while True:
    store.append(batch_for(k))
    sys.stdout.write(f"ack {k}\\n")
    sys.stdout.flush()
    k += 1
    if sys.argv[4] == "keep-wal" and k % 5 == 0:
        store.flush()
"""


def _run_child(data_dir: Path, start: int, flush_s: float, mode: str,
               acks_before_kill: int) -> list[int]:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(data_dir), str(start),
                             str(flush_s), mode], stdout=subprocess.PIPE, cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)}, text=True)
    assert proc.stdout is not None
    acked = []
    try:
        for line in proc.stdout:
            acked.append(int(line.split()[1]))
            if len(acked) >= acks_before_kill:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return acked


@pytest.mark.slow
def test_every_acked_sample_survives_kill_9(tmp_path: Path) -> None:
    rng = random.Random(7)
    acked: list[int] = []
    start = 0
    for _ in range(4):
        acked += _run_child(tmp_path, start, rng.choice([0.001, 0.02, 0.2]), "normal",
                            rng.randint(1, 400))
        start = acked[-1] + 1 if acked else start
        store = open_store(tmp_path)
        got = all_samples(store)
        store.close()
        missing = [k for k in acked if ("n0/0", T0 + k) not in got]
        assert missing == []
        want = {(f"n{s // 8}/{s % 8}", T0 + k): float(k) for k in acked for s in range(20)}
        assert {key: got.get(key) for key in want} == want


def test_replay_after_crash_between_commit_and_wal_delete_does_not_duplicate(
    tmp_path: Path,
) -> None:
    acked = _run_child(tmp_path, 0, 3600, "keep-wal", 23)
    assert len(segment_numbers(tmp_path / "wal")) > 1  # flushed segments were left behind
    store = open_store(tmp_path)
    stored = store.select([name_matcher(NAME)], 0, 2 * T0)
    assert all(len(np.unique(s.ts_ms)) == len(s.ts_ms) for s in stored)  # no duplicates
    assert store.stats()["samples"] == sum(len(s.ts_ms) for s in stored)
    assert set(all_samples(store)) >= {(f"n{s // 8}/{s % 8}", T0 + k)
                                       for k in acked for s in range(20)}
    store.close()
