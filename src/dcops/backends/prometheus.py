"""The ``prometheus`` metrics backend: a MetricsStore over a remote Prometheus-compatible store.

Writes go out as remote_write 1.0 and return once the store acknowledged them with a 2xx
(Prometheus has then written them to its WAL). Reads are PromQL over the HTTP API:

- `select` and `latest` are instant queries of a range selector ``{matchers}[Δ]`` at the
  end of the range (Prometheus's range windows are closed on both ends, so that is exactly
  [start, end]; longer spans than PromQL's durations allow are read in pieces);
- `select_rollup` computes the 5-minute buckets with ``<agg>_over_time`` in a range query
  whose steps fall on each bucket's last millisecond, so bucket b covers [b, b + 300000) as in
  the embedded store;
- `series`, `label_names` and `label_values` are /api/v1/series, /labels, /label/NAME/values.

Retention and downsampling belong to the remote store, so `compact` does nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

from dcops.backends.prometheus_http import PrometheusClient, parse_result, seconds, step_param
from dcops.core.clock import Clock, now_ms
from dcops.core.errors import Invalid
from dcops.query.result import ResultSeries
from dcops.telemetry.model import (
    LABEL_NAME_RE,
    Batch,
    Labels,
    LatestSample,
    Matcher,
    MatchOp,
    SeriesData,
    name_matcher,
)
from dcops.telemetry.remote_write import encode_write_request

log = logging.getLogger(__name__)

ROLLUP_STEP_MS = 300_000
"""The embedded store's rollup bucket, so rollups line up whichever backend answers."""
ROLLUP_FUNCTIONS = {"avg": "avg_over_time", "min": "min_over_time", "max": "max_over_time",
                    "last": "last_over_time", "count": "count_over_time"}
MAX_WINDOW_MS = 250 * 365 * 86_400_000
"""Longest range selector read at once: PromQL durations end at 2^63 ns (~292 years)."""
MAX_STEPS = 10_000
"""Rollup buckets per range query: Prometheus refuses more than 11,000 points per series."""
LATEST_AHEAD_MS = 600_000
"""`latest` reads up to this far past the clock, for senders whose clocks run ahead."""
EARLIEST_MS, LATEST_MS = 0, 253_402_300_799_999
"""Reads are clamped to 1970 .. 9999-12-31: no sample predates the epoch, and an open-ended
range must not become thousands of windows."""
STATS_TIMEOUT_S = 2.0
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
NAME_LABEL = "__dcops_name__"
"""Carries a rollup's metric name through ``<agg>_over_time``, which drops ``__name__``."""
_ANY_NAME = Matcher("__name__", MatchOp.RE, ".+")


def quote(text: str) -> str:
    """`text` as a PromQL double-quoted string literal."""
    return f'"{text.translate(_ESCAPES)}"'


def _matches_empty(matcher: Matcher) -> bool:
    if matcher.op in (MatchOp.EQ, MatchOp.NE):
        return (matcher.value == "") is (matcher.op is MatchOp.EQ)
    hit = re.fullmatch(matcher.value, "") is not None
    return hit is (matcher.op is MatchOp.RE)


def selector(matchers: Sequence[Matcher]) -> str:
    """A PromQL series selector for `matchers`: ``{__name__="x",gpu=~"0|1"}``.

    PromQL wants one matcher that does not match the empty string; where none does (or
    there are none), ``__name__=~".+"``, true of every series, is added.
    """
    chosen = list(matchers)
    if all(_matches_empty(m) for m in chosen):
        chosen.append(_ANY_NAME)
    for m in chosen:
        if not LABEL_NAME_RE.match(m.name):
            raise Invalid(f"invalid label name {m.name!r} in a selector")
    return "{" + ",".join(f"{m.name}{m.op.value}{quote(m.value)}" for m in chosen) + "}"


def _windows(start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """[start, end] cut into closed pieces no longer than MAX_WINDOW_MS, oldest first."""
    out = []
    lo = max(start_ms, EARLIEST_MS)
    end_ms = min(end_ms, LATEST_MS)
    while lo <= end_ms:
        hi = min(end_ms, lo + MAX_WINDOW_MS)
        out.append((lo, hi))
        lo = hi + 1
    return out


def _join(parts: dict[Labels, list[ResultSeries]], shift_ms: int = 0) -> list[SeriesData]:
    out = []
    for labels, pieces in sorted(parts.items()):
        ts = np.concatenate([p.ts_ms for p in pieces]) - shift_ms
        out.append(SeriesData(labels, ts, np.concatenate([p.values for p in pieces])))
    return out


class PrometheusMetricsStore:
    """A MetricsStore whose samples live in a remote Prometheus-compatible store.

    `clock` says where "now" is for `latest`, which cannot ask the store for its newest
    sample without a time to evaluate at.
    """

    def __init__(self, client: PrometheusClient, clock: Clock) -> None:
        self.client = client
        self.clock = clock

    def __repr__(self) -> str:
        return f"PrometheusMetricsStore({self.client.url!r})"

    def append(self, batch: Batch) -> None:
        """remote_write `batch`; a refused batch is Invalid, an unreachable store Unavailable."""
        if len(batch):
            self.client.write(encode_write_request(batch))

    def _raw(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        sel = selector(matchers)
        parts: dict[Labels, list[ResultSeries]] = {}
        for lo, hi in _windows(start_ms, end_ms):
            # [0ms] is not PromQL: read [1ms] and drop the sample before `lo` it may bring
            data = self.client.api("/api/v1/query", {"query": f"{sel}[{max(hi - lo, 1)}ms]",
                                                     "time": seconds(hi)}, post=True)
            for series in parse_result(data).series:
                keep = series.ts_ms >= lo
                if keep.any():
                    parts.setdefault(series.labels, []).append(
                        ResultSeries(series.labels, series.ts_ms[keep], series.values[keep]))
        return _join(parts)

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesData]:
        return self._raw(matchers, start_ms, end_ms)

    def latest(self, matchers: Sequence[Matcher], since_ms: int) -> list[LatestSample]:
        """The newest sample since `since_ms` of each series, up to LATEST_AHEAD_MS past now."""
        found = self._raw(matchers, since_ms, now_ms(self.clock) + LATEST_AHEAD_MS)
        return [LatestSample(s.labels, int(s.ts_ms[-1]), float(s.values[-1])) for s in found]

    def select_rollup(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, agg: str = "avg"
    ) -> list[SeriesData]:
        """Buckets b with start <= b <= end, each ``<agg>_over_time`` of [b, b + 5 min)."""
        function = ROLLUP_FUNCTIONS.get(agg)
        if function is None:
            raise Invalid(f"unknown rollup aggregate {agg!r}",
                          hint=f"use one of {', '.join(ROLLUP_FUNCTIONS)}")
        first = -(-start_ms // ROLLUP_STEP_MS) * ROLLUP_STEP_MS
        last = end_ms - end_ms % ROLLUP_STEP_MS
        if first > last:
            return []
        names = self.client.api("/api/v1/label/__name__/values", [
            ("match[]", selector(matchers)), ("start", seconds(first)),
            ("end", seconds(last + ROLLUP_STEP_MS - 1))])
        if not names:
            return []
        # *_over_time drops __name__ and `or` matches without it: tag each metric's series
        query = " or ".join(
            f"label_replace({function}({selector([*matchers, name_matcher(name)])}"
            f"[{ROLLUP_STEP_MS - 1}ms]), {quote(NAME_LABEL)}, {quote(name)}, \"\", \"\")"
            for name in names)
        parts: dict[Labels, list[ResultSeries]] = {}
        for lo in range(first, last + 1, MAX_STEPS * ROLLUP_STEP_MS):
            hi = min(last, lo + (MAX_STEPS - 1) * ROLLUP_STEP_MS)
            data = self.client.api("/api/v1/query_range", {
                "query": query, "start": seconds(lo + ROLLUP_STEP_MS - 1),
                "end": seconds(hi + ROLLUP_STEP_MS - 1), "step": step_param(ROLLUP_STEP_MS)},
                post=True)
            for series in parse_result(data).series:
                found = dict(series.labels)  # last_over_time keeps __name__, the rest drop it
                found["__name__"] = found.pop(NAME_LABEL)
                parts.setdefault(tuple(sorted(found.items())), []).append(series)
        return _join(parts, shift_ms=ROLLUP_STEP_MS - 1)

    def series(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Labels]:
        start_ms, end_ms = max(start_ms, EARLIEST_MS), min(end_ms, LATEST_MS)
        if end_ms < start_ms:
            return []
        found = self.client.api("/api/v1/series", [
            ("match[]", selector(matchers)), ("start", seconds(start_ms)),
            ("end", seconds(end_ms))], post=True)
        return sorted(tuple(sorted(item.items())) for item in found)

    def label_names(self) -> list[str]:
        return sorted(self.client.api("/api/v1/labels"))

    def label_values(self, name: str) -> list[str]:
        if not LABEL_NAME_RE.match(name):
            raise Invalid(f"invalid label name {name!r}")
        return sorted(self.client.api(f"/api/v1/label/{name}/values"))

    def compact(self, now_ms: int) -> None:
        """Nothing to do: retention and downsampling are the remote store's."""

    def stats(self) -> dict[str, int]:
        """Head series and chunks from /api/v1/status/tsdb; {} when that cannot be read."""
        try:
            head = self.client.api("/api/v1/status/tsdb", timeout_s=STATS_TIMEOUT_S)[
                "headStats"]
            return {"series": int(head["numSeries"]), "head_chunks": int(head["chunkCount"])}
        except Exception as exc:  # /metrics must answer whatever the remote store does
            log.debug("no TSDB stats from %s: %s", self.client.url, exc)
            return {}

    def close(self) -> None:
        self.client.close()
