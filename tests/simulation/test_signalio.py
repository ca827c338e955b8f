"""`read_trace`: a written trace read back whole, older and plain files, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcops.core.errors import Invalid
from dcops.health.model import Remedy, Signal, SignalKind
from dcops.simulation.failures import FailureModel
from dcops.simulation.faulttrace import FaultTrace, synthesize
from dcops.simulation.signalio import (
    BURST_GAP_S,
    UNLABELLED,
    read_signals,
    read_trace,
    write_signals,
    write_trace,
)

TABLE = Path(__file__).parent.parent / "data" / "failures" / "llama3_interruptions.csv"
DAY_S = 86_400.0


@pytest.fixture(scope="module")
def trace() -> FaultTrace:
    return synthesize(FailureModel.from_csv(TABLE, multiplier=5.0), 64, 8, 14 * DAY_S, seed=3)


def lines(*records: dict[str, object]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def test_a_written_trace_reads_back_whole(trace: FaultTrace, tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    write_trace(path, trace)
    back = read_trace(path)
    assert (back.nodes, back.gpus_per_node, back.horizon_s) == (64, 8, 14 * DAY_S)
    assert back.items == trace.items and back.signals == trace.signals
    assert back.faults == trace.faults and any(i.fault is None for i in back.items)
    assert {i.fault.category for i in back.faults if i.fault} >= {"GPU", "Host"}
    assert back.broken(trace.faults[0].node, trace.faults[0].at) == \
        trace.broken(trace.faults[0].node, trace.faults[0].at)
    assert read_signals(path) == list(trace.signals)


def test_an_empty_trace_keeps_its_cluster(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    write_trace(path, FaultTrace.of([], 4, 2, 600.0))
    back = read_trace(path)
    assert (back.items, back.nodes, back.gpus_per_node, back.horizon_s) == ((), 4, 2, 600.0)


def test_a_trace_without_header_or_injected_fault_still_reads(
        trace: FaultTrace, tmp_path: Path) -> None:
    """A trace written before the header and the truth's `fault`: the cluster comes from
    the node names, each fault from its cause and repair time."""
    path = tmp_path / "old.jsonl"
    write_trace(path, trace)
    old = []
    for line in path.read_text().splitlines()[1:]:
        record = json.loads(line)
        record["truth"].pop("fault", None)
        old.append(json.dumps(record))
    path.write_text("\n".join(old) + "\n")
    back = read_trace(path)
    highest = max(int(s.node[1:]) for s in trace.signals)
    assert back.nodes == highest + 1 and back.gpus_per_node == 8
    assert back.horizon_s == trace.signals[-1].at
    assert [(i.node, i.at, i.hardware, i.remedy, i.repaired_at) for i in back.items] == \
        [(i.node, i.at, i.hardware, i.remedy, i.repaired_at) for i in trace.items]
    fault = back.faults[0].fault
    assert fault is not None and fault.category == fault.component == back.faults[0].cause


def test_plain_signals_read_as_one_benign_item_a_burst(tmp_path: Path) -> None:
    path = tmp_path / "plain.jsonl"
    start = 1_700_000_000.0
    write_signals(path, [
        Signal(start + 100, "n3", SignalKind.UNREACHABLE, value=30),
        Signal(start, "n1", SignalKind.XID, gpu=2, code=13, job="j1"),
        Signal(start + 100 + BURST_GAP_S, "n3", SignalKind.UNREACHABLE, value=60),
        Signal(start + 200 + 2 * BURST_GAP_S, "n3", SignalKind.UNREACHABLE, value=30),
    ])
    back = read_trace(path)
    assert (back.nodes, back.gpus_per_node) == (4, 8)
    assert back.horizon_s == 200 + 2 * BURST_GAP_S
    assert [(i.node, i.gpu, i.at, len(i.signals)) for i in back.items] == \
        [("n1", 2, 0.0, 1), ("n3", None, 100.0, 2), ("n3", None, 200 + 2 * BURST_GAP_S, 1)]
    assert all(i.fault is None and not i.hardware and i.remedy is Remedy.NONE
               and i.cause == UNLABELLED for i in back.items)


@pytest.mark.parametrize(("text", "message", "hint", "where"), [
    (lines({"at": 1, "node": "gpu-a17", "kind": "xid"}),
     "'gpu-a17' is not a simulator node name", "n0, n1", "t.jsonl:1"),
    (lines({"trace": {"nodes": 2, "gpus_per_node": 8, "horizon_s": 60}},
           {"at": 1, "node": "n2", "kind": "xid"}),
     "not in the trace's cluster of 2 nodes", "header line", "t.jsonl:2"),
    (lines({"at": 1, "node": "n0", "kind": "xid", "gpu": 8}),
     "GPU 8 on a node of 8 GPUs", "--gpus-per-node", "t.jsonl:1"),
    (lines({"trace": {"nodes": 0, "gpus_per_node": 8, "horizon_s": 60}}),
     "bad header", "1 or more", "t.jsonl:1"),
    (lines({"trace": {"nodes": 2}}), "bad header", "horizon_s", "t.jsonl:1"),
    (lines({"at": 1, "node": "n0", "kind": "xid"},
           {"trace": {"nodes": 2, "gpus_per_node": 8, "horizon_s": 60}}),
     "unknown field 'trace'", "header line comes first", "t.jsonl:2"),
    (lines({"at": 1, "node": "n0", "kind": "xid", "truth": {"item": 0}},
           {"at": 2, "node": "n0", "kind": "xid"}),
     "no truth, but t.jsonl:1 has one", "every signal or on none", "t.jsonl:2"),
    (lines({"at": 1, "node": "n0", "kind": "xid", "truth": {"item": "x"}}),
     "truth is", "item", "t.jsonl:1"),
    (lines({"at": 1, "node": "n0", "kind": "xid", "truth": {"item": 0, "remedy": "pray"}}),
     "truth field 'remedy' is 'pray'", "reset_gpu", "t.jsonl:1"),
    (lines({"at": 1, "node": "n0", "kind": "xid", "truth": {"item": 0, "noise": True}},
           {"at": 2, "node": "n0", "kind": "xid", "truth": {"item": 0, "noise": False}}),
     "truth of item 0 differs from t.jsonl:1's", "same truth", "t.jsonl:2"),
    ("\n", "no signals and no header", "header", "t.jsonl"),
])
def test_bad_traces_say_where_and_what(tmp_path: Path, text: str, message: str, hint: str,
                                       where: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(text)
    with pytest.raises(Invalid, match=message) as raised:
        read_trace(path)
    assert raised.value.where == where
    assert hint in (raised.value.hint or "")

