"""Run PromQL queries against dcops's Engine and a real Prometheus and list where they differ."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dcops.query import Engine, QueryError
from dcops.telemetry.remote_write import encode_write_request
from dcops.telemetry.store import MetricsStore
from tests.query.fleet_data import fleet_batches

CORPUS = Path(__file__).with_name("corpus.txt")


@dataclass(frozen=True)
class Case:
    """One query of the corpus, evaluated as an instant or a range query."""

    query: str
    kind: str  # "instant" or "range"


def load_corpus(at_s: str = "1700000000") -> list[Case]:
    """The corpus's cases; ``{at}`` in a query becomes `at_s`, a moment inside the data."""
    cases = []
    for line in CORPUS.read_text().replace("{at}", at_s).splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        prefix, _, rest = line.partition(" ")
        if prefix == "i":
            cases.append(Case(rest, "instant"))
        elif prefix == "r":
            cases.append(Case(rest, "range"))
        else:
            cases += [Case(line, "instant"), Case(line, "range")]
    return cases


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def prometheus_answer(client: httpx.Client, case: Case, at_ms: list[int],
                      grid: tuple[int, int, int]) -> list[dict[str, Any]]:
    """Prometheus's whole JSON reply to `case`: one per instant time, or one range reply."""
    replies = []
    if case.kind == "instant":
        for t in at_ms:
            params = {"query": case.query, "time": _seconds(t)}
            replies.append(client.get("/api/v1/query", params=params).json())
    else:
        start, end, step = grid
        replies.append(client.get("/api/v1/query_range", params={
            "query": case.query, "start": _seconds(start), "end": _seconds(end),
            "step": f"{step / 1000:g}"}).json())
    return replies


def engine_answer(engine: Engine, case: Case, at_ms: list[int],
                  grid: tuple[int, int, int]) -> list[dict[str, Any]]:
    """dcops's answers shaped like the HTTP API's replies."""
    times: list[Any] = at_ms if case.kind == "instant" else [grid]
    replies: list[dict[str, Any]] = []
    for t in times:
        try:
            result = engine.instant(case.query, t) if case.kind == "instant" \
                else engine.range(case.query, *t)
            replies.append({"status": "success", "data": result.to_prometheus_json()})
        except QueryError as exc:
            replies.append({"status": "error", "errorType": exc.kind, "error": exc.message})
    return replies


def _same_value(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if x == y:
        return a == b  # equal numbers must also be written alike
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def _points(item: dict[str, Any]) -> list[list[Any]]:
    return item["values"] if "values" in item else [item["value"]]


def differences(ours: dict[str, Any], theirs: dict[str, Any], *,
                ordered: bool = False) -> list[str]:
    """Human-readable differences between two replies; empty when they agree.

    Series order matters only when `ordered` (sort, sort_desc).
    """
    if theirs["status"] != "success" or ours["status"] != "success":
        if ours["status"] == theirs["status"] and ours["errorType"] == theirs["errorType"]:
            return []
        return [f"status: ours {ours.get('errorType', 'success')} {ours.get('error', '')!r}, "
                f"prometheus {theirs.get('errorType', 'success')} {theirs.get('error', '')!r}"]
    a, b = ours["data"], theirs["data"]
    if a["resultType"] != b["resultType"]:
        return [f"type: ours {a['resultType']}, prometheus {b['resultType']}"]
    if a["resultType"] in ("scalar", "string"):
        ok = a["result"][0] == b["result"][0] and (
            a["result"][1] == b["result"][1] if a["resultType"] == "string"
            else _same_value(a["result"][1], b["result"][1]))
        return [] if ok else [f"value: ours {a['result']}, prometheus {b['result']}"]
    if a["resultType"] == "vector" and ordered:
        mine_order = [r["value"][1] for r in a["result"]]
        real_order = [r["value"][1] for r in b["result"]]
        if mine_order != real_order:
            return [f"order: ours {mine_order}, prometheus {real_order}"]
    mine = {tuple(sorted(r["metric"].items())): _points(r) for r in a["result"]}
    real = {tuple(sorted(r["metric"].items())): _points(r) for r in b["result"]}
    out = []
    for labels in sorted(set(mine) | set(real)):
        if labels not in mine or labels not in real:
            side = "prometheus" if labels not in mine else "dcops"
            out.append(f"series {dict(labels)} only in {side}")
            continue
        p, q = mine[labels], real[labels]
        if [t for t, _ in p] != [t for t, _ in q]:
            out.append(f"series {dict(labels)}: timestamps differ ({len(p)} vs {len(q)} points,"
                       f" first {p[:2]} vs {q[:2]})")
            continue
        bad = [(t, x, y) for (t, x), (_, y) in zip(p, q, strict=True) if not _same_value(x, y)]
        if bad:
            out.append(f"series {dict(labels)}: {len(bad)} values differ, e.g. {bad[:2]}")
    return out


WRITE_HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                 "X-Prometheus-Remote-Write-Version": "0.1.0"}


@dataclass(frozen=True)
class Run:
    """A corpus run: how many answers were compared, and every difference found."""

    compared: int
    failures: list[str]


def run_corpus(engine: Engine, client: httpx.Client, start_ms: int) -> Run:
    """Every corpus case against `engine` and the Prometheus behind `client`, over the hour of
    `fleet_data` starting at `start_ms` (already loaded into both)."""
    # Times between samples, and times exactly 5 minutes after a sample (the lookback edge,
    # and a range edge: dc_gpu_power_watts{rack="r2",gpu="1"} has its last sample before a
    # gap at start + 1_485_007).
    at_ms = [start_ms + 20 * 60_000 + 7_250, start_ms + 38 * 60_000,
             start_ms + 59 * 60_000 + 999, start_ms + 1_785_007]
    grids = [(start_ms + 4 * 60_000 + 500, start_ms + 61 * 60_000, 37_000),
             (start_ms + 1_485_007, start_ms + 1_785_007, 15_000)]
    cases = load_corpus(at_s=f"{(start_ms + 30 * 60_000 + 3_500) / 1000:.3f}")
    failures = []
    compared = 0
    for case in cases:
        for grid in grids if case.kind == "range" else grids[:1]:
            ours = engine_answer(engine, case, at_ms, grid)
            theirs = prometheus_answer(client, case, at_ms, grid)
            for a, b in zip(ours, theirs, strict=True):
                compared += 1
                found = differences(a, b, ordered=case.query.startswith("sort"))
                failures += [f"{case.kind} {case.query}: {d}" for d in found]
    return Run(compared, failures)


def load_both(store: MetricsStore, prometheus_url: str, start_ms: int) -> None:
    """The differential hour of fleet data into `store` and into a Prometheus by remote_write."""
    for batch in fleet_batches(start_ms):
        store.append(batch)
        reply = httpx.post(f"{prometheus_url}/api/v1/write",
                           content=encode_write_request(batch), headers=WRITE_HEADERS,
                           timeout=10.0)
        if reply.status_code != 204:
            raise RuntimeError(f"prometheus refused the differential data: {reply.text}")
