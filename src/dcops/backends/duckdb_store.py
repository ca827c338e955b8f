"""The embedded metrics store: a write-ahead log in front of a DuckDB file.

``append`` assigns series ids, writes one WAL record and returns: the samples then
survive ``kill -9`` (and power loss with ``fsync=True``). A background thread moves
buffered samples into DuckDB in columnar batches every ``flush_interval_s`` (waiting, a few
seconds at most, for a rule cycle in progress to end: `dcops.core.foreground`), records
the last flushed WAL segment in the same transaction and deletes those segments, so
replay after a crash at any point neither loses nor duplicates samples. Samples of
one series with one timestamp are deduplicated, last write wins. Reads flush first,
so they see every acknowledged sample. Series matching runs on an in-memory label
index; samples are read from DuckDB as numpy arrays.
"""

from __future__ import annotations

import json
import logging
import marshal
import operator
import struct
import threading
from collections.abc import Sequence
from itertools import compress, repeat
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from dcops.backends.label_index import LabelIndex
from dcops.backends.label_order import LabelOrder
from dcops.backends.newest import NewestSamples
from dcops.backends.recent import RecentSamples
from dcops.backends.wal import WriteAheadLog
from dcops.core import foreground
from dcops.core.clock import Clock
from dcops.core.errors import Invalid
from dcops.telemetry.model import (
    Batch,
    Labels,
    LatestSample,
    Matcher,
    SeriesBlock,
    SeriesData,
)
from dcops.telemetry.store import Retention

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_RECORD = struct.Struct("<II")
RECENT_SAMPLES = 40
"""Newest samples of each series kept in memory: ten minutes at a 15 s interval."""
RECENT_HORIZON_MS = 15 * 60_000
"""How far back the rings are filled from DuckDB when the store opens."""
FLUSH_DELAY_LIMIT_S = 5.0
"""How long a background flush waits for foreground work (a rule cycle) to end."""
_MAX_SERIES = 2**24
"""Series one query may read before its sort key falls back to two columns."""
_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)
_MARSHALLED = b"M"
_labels_json = json.JSONEncoder(check_circular=False, separators=(",", ":")).encode
"""A series' labels as stored in DuckDB: a JSON array of [name, value] pairs (one encoder
made once: ~30% less time holding the GIL than `json.dumps` per series, when a burst of
new series is flushed while rules are evaluated)."""
_MISS = (object(), -1)
"""What an identity lookup finds for a tuple it has not seen: matches no label set."""
_ROLLUP_AGGS = {"avg": "sum / count", "min": "min", "max": "max", "last": "last",
                "count": "CAST(count AS DOUBLE)"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (id BIGINT PRIMARY KEY, labels VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS samples (series_id BIGINT NOT NULL, ts BIGINT NOT NULL,
                                    value DOUBLE);
CREATE TABLE IF NOT EXISTS rollups (series_id BIGINT NOT NULL, bucket BIGINT NOT NULL,
    min DOUBLE, max DOUBLE, sum DOUBLE, count BIGINT, last DOUBLE);
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value BIGINT NOT NULL);
"""


def encode_record(new_series: list[tuple[int, Labels]], sids: I64, ts: I64, values: F64) -> bytes:
    """One WAL payload: new series definitions, then three sample columns.

    The definitions are marshalled (``M`` then `marshal` data: three times as fast as JSON
    when ~30,000 alerts start firing at once and each brings a new ALERTS series). The WAL
    is local, CRC-checked and replayed by the same installation, which is what marshal is
    for; records written as JSON by earlier versions are still read."""
    series = b"[]"
    if new_series:
        try:
            series = _MARSHALLED + marshal.dumps(new_series)
        except ValueError:  # a label that is no plain str: JSON takes it as its str
            series = json.dumps(new_series, check_circular=False).encode()
    return b"".join((_RECORD.pack(len(series), len(sids)), series,
                     sids.tobytes(), ts.tobytes(), values.tobytes()))


def decode_record(payload: bytes) -> tuple[list[tuple[int, Labels]], I64, I64, F64]:
    series_len, n = _RECORD.unpack_from(payload)
    pos = _RECORD.size
    blob = payload[pos : pos + series_len]
    if blob.startswith(_MARSHALLED):
        series: list[tuple[int, Labels]] = marshal.loads(blob[1:])
    else:  # JSON, as earlier versions wrote it
        series = [(int(sid), tuple((k, v) for k, v in pairs)) for sid, pairs in json.loads(blob)]
    pos += series_len
    sids = np.frombuffer(payload, dtype=np.int64, count=n, offset=pos)
    ts = np.frombuffer(payload, dtype=np.int64, count=n, offset=pos + 8 * n)
    values = np.frombuffer(payload, dtype=np.float64, count=n, offset=pos + 16 * n)
    return series, sids, ts, values


def _last_write_wins(sids: I64, ts: I64, values: F64) -> tuple[I64, I64, F64]:
    """Sort by (series, ts) and keep the last-written sample of each duplicate pair."""
    order = np.lexsort((ts, sids))  # stable: equal keys keep write order
    sids, ts, values = sids[order], ts[order], values[order]
    keep = np.ones(len(sids), dtype=bool)
    keep[:-1] = (sids[1:] != sids[:-1]) | (ts[1:] != ts[:-1])
    return sids[keep], ts[keep], values[keep]


class DuckDBMetricsStore:
    """A MetricsStore in ``data_dir/metrics.duckdb`` with its WAL in ``data_dir/wal``."""

    def __init__(self, data_dir: Path, retention: Retention, *, fsync: bool = False,
                 flush_interval_s: float = 1.0, clock: Clock,
                 recent_samples: int = RECENT_SAMPLES) -> None:
        self.data_dir = data_dir
        self.retention = retention
        self.clock = clock
        self.flush_interval_s = flush_interval_s
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # series ids, WAL writer, pending buffers
        self._db_lock = threading.RLock()  # DuckDB and flushing
        self._db = duckdb.connect(str(data_dir / "metrics.duckdb"))
        self._db.execute(_SCHEMA)
        self._ids: dict[Labels, int] = {}
        self._by_identity: dict[int, tuple[Labels, int]] = {}
        self._index = LabelIndex()
        self._order = LabelOrder()
        self._pending: list[tuple[I64, I64, F64]] = []
        self._pending_series: list[tuple[int, Labels]] = []
        self._pending_samples = 0
        self._newest = NewestSamples()
        self._recent = RecentSamples(recent_samples)
        flushed = self._meta("wal_segment", -1)
        self._wal = WriteAheadLog(data_dir / "wal", fsync=fsync, first_segment=flushed + 1)
        self._replay(flushed)
        self._load_series()
        self._live = self._live_series(newest=True)
        self._load_recent()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="dcops-metrics-flush",
                                         daemon=True)
        self._flusher.start()

    # ---- opening -------------------------------------------------------------------

    def _meta(self, key: str, default: int) -> int:
        rows = self._db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        return int(rows[0][0]) if rows else default

    def _replay(self, flushed: int) -> None:
        series: list[tuple[int, Labels]] = []
        chunks: list[tuple[I64, I64, F64]] = []
        last = flushed
        for record in self._wal.replay(flushed):
            new, sids, ts, values = decode_record(record.payload)
            series.extend(new)
            chunks.append((sids, ts, values))
            last = record.segment
        if last > flushed:
            n = sum(len(c[0]) for c in chunks)
            log.info("replaying %d samples and %d new series from WAL segments %d..%d",
                     n, len(series), flushed + 1, last)
            self._write(series, chunks, last)
        self._wal.remove_through(self._wal.active - 1)

    def _load_series(self) -> None:
        rows = self._db.execute("SELECT id, labels FROM series ORDER BY id").fetchall()
        for sid, text in rows:
            labels: Labels = tuple((k, v) for k, v in json.loads(text))
            self._ids[labels] = int(sid)
            self._index.add(int(sid), labels)
        self._next_id = (int(rows[-1][0]) + 1) if rows else 0

    def _live_series(self, *, newest: bool = False) -> set[int]:
        """Series that have samples; with `newest`, fill the newest-sample cache from the
        same scan (when the store opens)."""
        rows = self._db.sql("SELECT series_id, max(ts) AS ts, arg_max(value, ts) AS value "
                            "FROM samples GROUP BY series_id").to_arrow_table()
        sids = rows.column("series_id").to_numpy()
        if newest:
            self._newest.reset(sids, rows.column("ts").to_numpy(),
                               rows.column("value").to_numpy())
        return set(sids.tolist())

    def _load_recent(self) -> None:
        """Fill the in-memory rings with the stored samples of the last minutes."""
        ((newest,),) = self._db.execute("SELECT max(ts) FROM samples").fetchall()
        since = (int(newest) if newest is not None else 0) - RECENT_HORIZON_MS
        rows = self._db.sql("SELECT series_id, ts, value FROM samples WHERE ts >= ? "
                            "ORDER BY series_id, ts", params=[since]).to_arrow_table()
        self._recent.start(self._next_id, since, rows.column("series_id").to_numpy(),
                           rows.column("ts").to_numpy(), rows.column("value").to_numpy())

    # ---- writing -------------------------------------------------------------------

    def append(self, batch: Batch) -> None:
        if not len(batch):
            return
        with self._lock:
            local, new = self._series_ids(batch.labels)
            sids = local[np.asarray(batch.series_index, dtype=np.intp)]
            ts = np.asarray(batch.ts_ms, dtype=np.int64)
            values = np.asarray(batch.values, dtype=np.float64)
            try:
                self._wal.append(encode_record(new, sids, ts, values))
            except BaseException:
                self._forget(new)
                raise
            self._index.add_many(new)
            # the in-memory caches see acknowledged samples at once, before DuckDB does
            ordered = _last_write_wins(sids, ts, values)
            self._newest.update(*ordered)
            self._recent.append(*ordered)
            self._pending.append((sids, ts, values))
            self._pending_series.extend(new)
            self._pending_samples += len(sids)
            if len(self._live) < self._next_id:  # some series were dropped by retention
                self._live.update(local.tolist())

    def _series_ids(self, labels: list[Labels]) -> tuple[I64, list[tuple[int, Labels]]]:
        """Ids of `labels`, allocating new ones; returns (ids, new (id, labels) pairs).

        Decoders hand over the same interned label tuples again and again, so ids are
        looked up by object identity first (an int hash, all in C); equal but distinct
        tuples fall back to hashing the labels.
        """
        found: list[Any] = list(map(self._by_identity.get, map(id, labels),
                                    repeat(_MISS, len(labels))))
        known = list(map(operator.is_, map(_FIRST, found), labels))
        if all(known):
            return np.fromiter(map(_SECOND, found), dtype=np.int64, count=len(found)), []
        if len(self._by_identity) > max(100_000, 4 * len(self._ids)):
            self._by_identity.clear()  # tuples that callers have since dropped
            known = [False] * len(labels)
        out = np.fromiter(map(_SECOND, found), dtype=np.int64, count=len(found))
        ids, by_identity = self._ids, self._by_identity
        new: list[tuple[int, Labels]] = []
        for i in compress(range(len(labels)), map(operator.not_, known)):  # the misses only
            one = labels[i]
            sid = ids.get(one)
            if sid is None:
                sid = ids[one] = self._next_id
                self._next_id += 1
                new.append((sid, one))
            by_identity[id(one)] = (one, sid)  # holds `one`, so its id stays unique
            out[i] = sid
        return out, new

    def _forget(self, new: list[tuple[int, Labels]]) -> None:
        for _, labels in new:
            del self._ids[labels]
            self._by_identity.pop(id(labels), None)

    def flush(self) -> None:
        """Move everything appended so far into DuckDB and drop the WAL segments it came from."""
        with self._db_lock:
            with self._lock:
                if not self._pending and not self._pending_series:
                    return
                segment = self._wal.rotate()
                chunks, series = self._pending, self._pending_series
                self._pending, self._pending_series, self._pending_samples = [], [], 0
            try:
                self._write(series, chunks, segment)
            except BaseException:
                with self._lock:
                    self._pending[:0] = chunks
                    self._pending_series[:0] = series
                    self._pending_samples += sum(len(c[0]) for c in chunks)
                raise
            self._wal.remove_through(segment)

    def _write(self, series: list[tuple[int, Labels]], chunks: list[tuple[I64, I64, F64]],
               segment: int) -> None:
        """One DuckDB transaction: new series, deduplicated samples, and the WAL position."""
        db = self._db
        db.execute("BEGIN TRANSACTION")
        try:
            if series:
                rows = pa.table({"id": [s for s, _ in series],
                                 "labels": list(map(_labels_json, (lab for _, lab in series)))})
                db.register("new_series", rows)
                db.execute("INSERT INTO series SELECT id, labels FROM new_series "
                           "ON CONFLICT DO NOTHING")
                db.unregister("new_series")
            if chunks:
                sids, ts, values = _last_write_wins(*(np.concatenate(c) for c in zip(*chunks,
                                                                                     strict=True)))
                db.register("incoming", pa.table({"series_id": sids, "ts": ts, "value": values}))
                db.execute("DELETE FROM samples USING incoming WHERE samples.ts BETWEEN ? AND ? "
                           "AND samples.series_id = incoming.series_id "
                           "AND samples.ts = incoming.ts", [int(ts.min()), int(ts.max())])
                db.execute("INSERT INTO samples SELECT series_id, ts, value FROM incoming")
                db.unregister("incoming")
                dirty = min(self._meta("rollup_dirty_ms", int(ts.min())), int(ts.min()))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('rollup_dirty_ms', ?)", [dirty])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('wal_segment', ?)", [segment])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            # not while a rule cycle runs: it would compete for the interpreter and cores
            foreground.wait_quiet(FLUSH_DELAY_LIMIT_S, self._stop)
            try:
                self.flush()
            except Exception:
                log.exception("flushing metrics WAL into DuckDB failed; will retry")

    # ---- reading -------------------------------------------------------------------

    def _query(self, matchers: Sequence[Matcher], sql: str,
               params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        """Run `sql` after flushing; numpy columns.

        `sql` joins table ``wanted(series_id, pos)``: the matching series, `pos` being each
        one's place in label order, so ``ORDER BY pos`` sorts the answer by labels.
        """
        with self._db_lock:
            self.flush()
            with self._lock:
                ids = self._matching(matchers)
            self._db.register("wanted", pa.table({"series_id": ids,
                                                  "pos": np.arange(len(ids), dtype=np.int64)}))
            try:
                table = self._db.sql(sql, params=params).to_arrow_table()
            finally:
                self._db.unregister("wanted")
        cols: dict[str, Any] = {name: table.column(name).to_numpy()
                                for name in table.column_names}
        cols["wanted"] = ids
        return cols

    def _matching(self, matchers: Sequence[Matcher]) -> I64:
        """Ids of the series matching `matchers`, in label order (read-only: the same
        array may answer the next query too); call with the lock held."""
        ids = self._index.cached(matchers)
        if ids is None:
            ids = self._order.sort(self._index.match(matchers), self._index.labels,
                                   self._next_id)
            self._index.remember(matchers, ids)
        return ids

    def _block(self, cols: dict[str, Any], ts_col: str) -> SeriesBlock:
        """A SeriesBlock from columns ordered by (pos, time)."""
        wanted: I64 = cols["wanted"]
        counts = np.bincount(np.asarray(cols["pos"], dtype=np.int64), minlength=len(wanted))
        return self._counted(wanted, counts, np.asarray(cols[ts_col], dtype=np.int64),
                             np.asarray(cols["value"], dtype=np.float64))

    def _counted(self, ids: I64, counts: I64, ts: I64, values: F64) -> SeriesBlock:
        """A SeriesBlock of the series `ids` with `counts` samples each (those with none
        left out), their samples series after series in `ts` and `values`."""
        found = counts > 0
        offsets = np.zeros(int(found.sum()) + 1, dtype=np.int64)
        np.cumsum(counts[found], out=offsets[1:])
        labels = self._index.labels
        return SeriesBlock([labels[sid] for sid in ids[found].tolist()], offsets, ts, values)

    def _recent_block(self, matchers: Sequence[Matcher], start_ms: int,
                      end_ms: int) -> SeriesBlock | None:
        """The samples in [start_ms, end_ms] from the in-memory rings, where they hold all."""
        with self._lock:  # appends update the rings under this lock: no flush needed
            ids = self._matching(matchers)
            found = self._recent.read(ids, start_ms, end_ms)
        if found is None:
            return None
        counts, ts, values = found
        return self._counted(ids, counts, ts, values)

    def select_block(self, matchers: Sequence[Matcher], start_ms: int,
                     end_ms: int) -> SeriesBlock:
        recent = self._recent_block(matchers, start_ms, end_ms)
        if recent is not None:
            return recent
        # One int64 sort key sorts faster than (pos, ts); where it could overflow, use both.
        width = end_ms - start_ms + 1
        order = "pos * $width + (ts - $start)" if width < 2**62 // _MAX_SERIES else "pos, ts"
        cols = self._query(matchers, "SELECT pos, ts, value FROM samples JOIN wanted "
                           f"USING (series_id) WHERE ts BETWEEN $start AND $end ORDER BY {order}",
                           {"start": start_ms, "end": end_ms, "width": width}
                           if "width" in order else {"start": start_ms, "end": end_ms})
        return self._block(cols, "ts")

    def select_steps(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int,
                     first_ms: int, step_ms: int) -> SeriesBlock:
        """Like select_block, keeping per series only the newest sample in each step bucket
        ``(first + (k - 1) step, first + k step]``: all that selectors at those steps see."""
        width = end_ms - start_ms + 1
        if step_ms >= width and first_ms >= end_ms:  # one step at the end: newest samples
            newest = self._newest_block(matchers, start_ms, end_ms)
            if newest is not None:
                return newest
        recent = self._recent_block(matchers, start_ms, end_ms)
        if recent is not None:
            return recent
        if width >= 2**62 // _MAX_SERIES or step_ms <= 0:
            return self.select_block(matchers, start_ms, end_ms)
        shift = step_ms - 1 + (max(first_ms - start_ms, 0) // step_ms + 1) * step_ms
        cols = self._query(matchers, "SELECT pos, max(ts) AS ts, arg_max(value, ts) AS value "
                           "FROM samples JOIN wanted USING (series_id) "
                           "WHERE ts BETWEEN $start AND $end "
                           "GROUP BY pos, (ts - $first + $shift) // $step "
                           "ORDER BY pos * $width + (max(ts) - $start)",
                           {"start": start_ms, "end": end_ms, "first": first_ms,
                            "shift": shift, "step": step_ms, "width": width})
        return self._block(cols, "ts")

    def _newest_block(self, matchers: Sequence[Matcher], start_ms: int,
                      end_ms: int) -> SeriesBlock | None:
        """Each matching series' newest sample if none is newer than `end_ms`, from memory."""
        with self._lock:  # appends update the cache under this lock: no flush needed
            found = self._newest.at(self._matching(matchers), start_ms, end_ms)
        if found is None:
            return None
        sids, ts, values = found
        labels = self._index.labels
        return SeriesBlock([labels[s] for s in sids.tolist()],
                           np.arange(len(sids) + 1, dtype=np.int64), ts, values)

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        return self.select_block(matchers, start_ms, end_ms).series()

    def select_rollup(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int,
                      agg: str = "avg") -> list[SeriesData]:
        expr = _ROLLUP_AGGS.get(agg)
        if expr is None:
            raise Invalid(f"unknown rollup aggregate {agg!r}", hint=f"use one of {_ROLLUP_AGGS}")
        cols = self._query(matchers, f"SELECT pos, bucket, {expr} AS value FROM rollups "
                           "JOIN wanted USING (series_id) WHERE bucket BETWEEN ? AND ? "
                           "ORDER BY pos, bucket", [start_ms, end_ms])
        return self._block(cols, "bucket").series()

    def latest(self, matchers: Sequence[Matcher], since_ms: int) -> list[LatestSample]:
        cols = self._query(matchers, "SELECT pos, max(ts) AS ts, arg_max(value, ts) AS value "
                           "FROM samples JOIN wanted USING (series_id) WHERE ts >= ? "
                           "GROUP BY pos ORDER BY pos", [since_ms])
        labels = self._index.labels
        sids = cols["wanted"][np.asarray(cols["pos"], dtype=np.int64)].tolist()
        return [LatestSample(labels[s], t, v) for s, t, v in
                zip(sids, cols["ts"].tolist(), cols["value"].tolist(), strict=True)]

    def series(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Labels]:
        cols = self._query(matchers, "SELECT DISTINCT pos FROM samples JOIN wanted "
                           "USING (series_id) WHERE ts BETWEEN ? AND ? ORDER BY pos",
                           [start_ms, end_ms])
        labels = self._index.labels
        return [labels[s] for s in cols["wanted"][np.asarray(cols["pos"], np.int64)].tolist()]

    def label_names(self) -> list[str]:
        with self._lock:
            return sorted({k for s in self._live for k, _ in self._index.labels[s]})

    def label_values(self, name: str) -> list[str]:
        with self._lock:
            values = self._index.postings.get(name, {})
            return sorted(v for v, ids in values.items() if not self._live.isdisjoint(ids))

    # ---- upkeep --------------------------------------------------------------------

    def compact(self, now_ms: int) -> None:
        """Recompute 5-minute rollups for buckets touched since last time, then apply retention."""
        step = self.retention.rollup_step_s * 1000
        raw_cut = now_ms - int(self.retention.raw_s * 1000)
        rollup_cut = now_ms - int(self.retention.rollup_s * 1000)
        with self._db_lock:
            self.flush()
            db = self._db
            db.execute("BEGIN TRANSACTION")
            try:
                dirty = self._meta("rollup_dirty_ms", now_ms)
                start = dirty - dirty % step
                db.execute("DELETE FROM rollups WHERE bucket >= ?", [start])
                db.execute(
                    "INSERT INTO rollups SELECT series_id, ts - ts % $step AS bucket, min(value), "
                    "max(value), sum(value), count(*), arg_max(value, ts) FROM samples "
                    "WHERE ts >= $start GROUP BY series_id, bucket", {"step": step, "start": start})
                db.execute("DELETE FROM samples WHERE ts < ?", [raw_cut])
                db.execute("DELETE FROM rollups WHERE bucket < ?", [rollup_cut])
                done = now_ms - now_ms % step
                db.execute("INSERT OR REPLACE INTO meta VALUES ('rollup_dirty_ms', ?)", [done])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            live = self._live_series()
            with self._lock:
                self._newest.forget_before(raw_cut)
                self._recent.forget_before(raw_cut)
                self._live = live | {int(s) for c in self._pending for s in np.unique(c[0])}
            db.execute("CHECKPOINT").fetchall()

    def stats(self) -> dict[str, int]:
        with self._db_lock:
            ((samples, rollups),) = self._db.execute(
                "SELECT (SELECT count(*) FROM samples), (SELECT count(*) FROM rollups)").fetchall()
        with self._lock:
            return {"series": len(self._live),
                    "samples": int(samples) + self._pending_samples,
                    "rollups": int(rollups),
                    "wal_bytes": self._wal.size_bytes}

    def close(self) -> None:
        """Stop the flusher, flush what is buffered, and close files. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._flusher.join()
        with self._db_lock:
            self.flush()
            self._db.close()
        with self._lock:
            self._wal.close()
