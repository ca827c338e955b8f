"""Recorded signal traces as JSON Lines: one `Signal` an object a line.

Fields: ``at`` (seconds, a number), ``node`` (a non-empty string), ``kind`` (a
`SignalKind` value), and optionally ``gpu``, ``code`` (integers or null), ``value`` (a
number, default 1), ``job``, ``peer`` (strings or null), ``detail``, ``source`` (strings)
and ``truth`` (an object, the ground truth of a synthesized trace)::

    {"at": 9596.4, "node": "n885", "kind": "xid", "gpu": 4, "code": 13, "job": "j1"}

A trace written by `write_trace` starts with a header line giving its cluster and horizon,
``{"trace": {"nodes": 2048, "gpus_per_node": 8, "horizon_s": 4665600.0}}``, and every signal
carries the truth of its item (see `write_trace`). `read_signals` skips the header and the
truth; `read_trace` rebuilds the `FaultTrace` from them. A file without a header (an older
trace, or plain signals) gets its cluster from its node names, which must then be the
simulator's (``n0``, ``n1``, ...: nodes = the highest index + 1), and its horizon from its
last signal. A file without truth (plain signals, as a log shipper would record them)
reads as one benign item per burst (a node's signals, each within `BURST_GAP_S` of the
one before), not hardware, cause `UNLABELLED`: a replay of it shows what dcops would do,
and scores every drain as false; without a header its times are taken from its first
signal (which becomes 0).

Blank lines are skipped; anything else that is wrong stops the read with `Invalid` naming
the file and line, the field and what was expected.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dcops.core.errors import Invalid
from dcops.health.model import Remedy, Signal, SignalKind
from dcops.simulation.failures import Fault
from dcops.simulation.faulttrace import FaultTrace, TracedFault

FIELDS = ("at", "node", "kind", "gpu", "code", "value", "job", "peer", "detail", "source")
HEADER = "trace"
"""The key of the header line's object."""
BURST_GAP_S = 600.0
"""In a file without truth, a node's signals no more than this apart are one item."""
UNLABELLED = "unlabelled"
"""The cause of an item read from a file without truth."""
_KIND_VALUES = frozenset(kind.value for kind in SignalKind)
_KINDS = ", ".join(kind.value for kind in SignalKind)
_REMEDIES = frozenset(remedy.value for remedy in Remedy)
_NODE_NAME = re.compile(r"n(0|[1-9][0-9]*)")
_NAMES_HINT = ('replay needs simulator node names n0, n1, ... or a header line '
               '{"trace": {"nodes": N, "gpus_per_node": G, "horizon_s": H}}')

Line = tuple[str, Signal, Any]
"""Where a line is (file:line), its signal and its raw truth (None when it has none)."""


@dataclass(frozen=True, slots=True)
class _Header:
    nodes: int
    gpus_per_node: int
    horizon_s: float


def write_signals(path: str | Path, signals: Iterable[Signal]) -> int:
    """Write `signals` one a line; returns how many."""
    return _write(Path(path), ((signal, None) for signal in signals))


def write_trace(path: str | Path, trace: FaultTrace) -> int:
    """Write a synthesized trace: a header line (nodes, GPUs per node, horizon), then its
    signals in time order, each with the `truth` of its item (item index, hardware,
    remedy, node, gpu, cause, onset, repaired_at, noise and, for a fault, the injected
    `fault`: category, component, gpu, downtime_s). Returns how many signals."""
    pairs = [(signal, _truth(index, item)) for index, item in enumerate(trace.items)
             for signal in item.signals]
    pairs.sort(key=lambda pair: pair[0].at)
    header = {HEADER: {"nodes": trace.nodes, "gpus_per_node": trace.gpus_per_node,
                       "horizon_s": trace.horizon_s}}
    return _write(Path(path), pairs, header)


def read_signals(path: str | Path) -> list[Signal]:
    """The signals of a JSON Lines file, in file order (a header line is skipped)."""
    return [signal for _, signal, _ in _read(Path(path))[1]]


def read_trace(path: str | Path, *, gpus_per_node: int = 8) -> FaultTrace:
    """The `FaultTrace` of a file (see the module docstring): `write_trace`'s inverse.
    `gpus_per_node` is the cluster's when the file has no header."""
    path = Path(path)
    header, lines = _read(path)
    if header is None and not lines:
        raise Invalid("no signals and no header", where=path.name,
                      hint="a trace needs signals, or a header saying its cluster")
    with_truth = [line for line in lines if line[2] is not None]
    if with_truth and len(with_truth) < len(lines):
        where = next(line[0] for line in lines if line[2] is None)
        raise Invalid(f"no truth, but {with_truth[0][0]} has one", where=where,
                      hint="a trace has truth on every signal or on none")
    if header is None and not with_truth:
        lines = _rebased(lines)
    if header is None:
        header = _Header(_cluster_nodes(lines), gpus_per_node,
                         max(signal.at for _, signal, _ in lines))
    _check_names(lines, header)
    items = _items(lines, header) if with_truth else _bursts(lines)
    return FaultTrace.of(items, header.nodes, header.gpus_per_node, header.horizon_s)


def parse_signal(line: str, *, where: str) -> Signal:
    """One line of a trace as a `Signal` (its truth is not read)."""
    return _signal(_object(line, where), where)


def _read(path: Path) -> tuple[_Header | None, list[Line]]:
    """The header (if the first line is one) and every signal line."""
    try:
        text = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise Invalid(f"cannot read signal trace: {error.strerror}", where=str(path)) from None
    except UnicodeDecodeError:
        raise Invalid("signal trace is not UTF-8 text", where=str(path)) from None
    header: _Header | None = None
    lines: list[Line] = []
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        record = _object(line, where)
        if HEADER in record and not lines and header is None:
            header = _header(record, where)
        else:
            lines.append((where, _signal(record, where), record.get("truth")))
    return header, lines


def _object(line: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise Invalid(f"not JSON: {error.msg} at column {error.colno}", where=where,
                      hint="one JSON object a line") from None
    if not isinstance(record, dict):
        raise Invalid(f"expected a JSON object, found {type(record).__name__}", where=where)
    return record


def _signal(record: Mapping[str, Any], where: str) -> Signal:
    unknown = sorted(set(record) - set(FIELDS) - {"truth"})
    if unknown:
        hint = (f"fields are {', '.join(FIELDS)} and truth" if unknown[0] != HEADER
                else "the header line comes first")
        raise Invalid(f"unknown field {unknown[0]!r}", where=where, hint=hint)
    return Signal(at=_number(record, "at", where, required=True),
                  node=_node(record, where), kind=_kind(record, where),
                  gpu=_int(record, "gpu", where), code=_int(record, "code", where),
                  value=_number(record, "value", where, default=1.0),
                  job=_text(record, "job", where), peer=_text(record, "peer", where),
                  detail=_text(record, "detail", where) or "",
                  source=_text(record, "source", where) or "")


def _header(record: Mapping[str, Any], where: str) -> _Header:
    raw = record[HEADER]
    hint = "the header is {\"trace\": {\"nodes\": N, \"gpus_per_node\": G, \"horizon_s\": H}}"
    if len(record) != 1 or not isinstance(raw, dict) or \
            set(raw) != {"nodes", "gpus_per_node", "horizon_s"}:
        raise Invalid(f"bad header {json.dumps(record)}", where=where, hint=hint)
    nodes, gpus = _int(raw, "nodes", where), _int(raw, "gpus_per_node", where)
    horizon = _number(raw, "horizon_s", where, required=True)
    if not nodes or nodes < 1 or not gpus or gpus < 1 or horizon < 0:
        raise Invalid(f"bad header {json.dumps(record)}", where=where,
                      hint="nodes and GPUs per node 1 or more, the horizon 0 s or more")
    return _Header(nodes, gpus, horizon)


def _rebased(lines: list[Line]) -> list[Line]:
    start = min(signal.at for _, signal, _ in lines)
    return [(where, replace(signal, at=signal.at - start), truth)
            for where, signal, truth in lines]


def _index(name: str) -> int | None:
    """The index of a simulator node name (n0, n1, ...), else None."""
    match = _NODE_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def _cluster_nodes(lines: list[Line]) -> int:
    """Nodes = the highest simulator node index named + 1."""
    highest = -1
    for where, signal, _ in lines:
        index = _index(signal.node)
        if index is None:
            raise Invalid(f"node {signal.node!r} is not a simulator node name", where=where,
                          hint=_NAMES_HINT)
        highest = max(highest, index)
    return highest + 1


def _check_names(lines: list[Line], header: _Header) -> None:
    for where, signal, _ in lines:
        index = _index(signal.node)
        if index is None or index >= header.nodes:
            raise Invalid(f"node {signal.node!r} is not in the trace's cluster of "
                          f"{header.nodes} nodes (n0 to n{header.nodes - 1})", where=where,
                          hint=_NAMES_HINT)
        if signal.gpu is not None and not 0 <= signal.gpu < header.gpus_per_node:
            raise Invalid(f"GPU {signal.gpu} on a node of {header.gpus_per_node} GPUs",
                          where=where, hint="GPUs are numbered from 0; give the cluster's "
                          "GPUs per node (--gpus-per-node) or a header line")


def _items(lines: list[Line], header: _Header) -> list[TracedFault]:
    """The items of a file with truth: each line's signal joins its item."""
    found: dict[int, tuple[str, Any, list[Signal]]] = {}
    for where, signal, truth in lines:
        index = truth.get("item") if isinstance(truth, dict) else None
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise Invalid(f"truth is {truth!r}", where=where,
                          hint="an object naming its item (an index, 0 or more)")
        first = found.setdefault(index, (where, truth, []))
        if first[1] != truth:
            raise Invalid(f"truth of item {index} differs from {first[0]}'s", where=where,
                          hint="every signal of an item carries the same truth")
        first[2].append(signal)
    return [_item(where, truth, signals) for where, truth, signals in
            (found[index] for index in sorted(found))]


def _item(where: str, truth: Mapping[str, Any], signals: list[Signal]) -> TracedFault:
    remedy = truth.get("remedy")
    if remedy not in _REMEDIES:
        raise Invalid(f"truth field 'remedy' is {remedy!r}", where=where,
                      hint=f"expected one of {', '.join(sorted(_REMEDIES))}")
    node, cause = _text(truth, "node", where), _text(truth, "cause", where) or ""
    index = _index(node or "")
    if node is None or index is None:
        raise Invalid(f"truth field 'node' is {node!r}", where=where, hint=_NAMES_HINT)
    onset = _number(truth, "onset", where, required=True)
    repaired = _number(truth, "repaired_at", where, required=True)
    gpu = _int(truth, "gpu", where)
    fault = None if _bool(truth, "noise", where) else _fault(
        truth, where, onset, index, gpu, repaired - onset, cause)
    return TracedFault(fault, tuple(signals), _bool(truth, "hardware", where), node, gpu,
                       onset, Remedy(remedy), repaired, cause)


def _fault(truth: Mapping[str, Any], where: str, onset: float, node: int, gpu: int | None,
           downtime_s: float, cause: str) -> Fault:
    """The injected fault; a trace written before the truth carried it gets its cause as
    component and category, and its time to repair as downtime."""
    raw = truth.get("fault")
    if raw is None:
        return Fault(onset, node, gpu, cause, max(0.0, downtime_s), cause)
    if not isinstance(raw, dict):
        raise Invalid(f"truth field 'fault' is {raw!r}", where=where,
                      hint="an object: category, component, gpu, downtime_s")
    return Fault(onset, node, _int(raw, "gpu", where), _text(raw, "category", where) or "",
                 _number(raw, "downtime_s", where, required=True),
                 _text(raw, "component", where) or "")


def _bursts(lines: list[Line]) -> list[TracedFault]:
    """The items of a file without truth: a node's signals, `BURST_GAP_S` apart at most."""
    by_node: dict[str, list[Signal]] = {}
    for _, signal, _ in lines:
        by_node.setdefault(signal.node, []).append(signal)
    groups: list[list[Signal]] = []
    for signals in by_node.values():
        signals.sort(key=lambda signal: signal.at)
        groups.append([signals[0]])
        for signal in signals[1:]:
            if signal.at - groups[-1][-1].at <= BURST_GAP_S:
                groups[-1].append(signal)
            else:
                groups.append([signal])
    return [TracedFault(None, tuple(group), False, group[0].node, group[0].gpu,
                        group[0].at, Remedy.NONE, group[0].at, UNLABELLED)
            for group in groups]


def _write(path: Path, pairs: Iterable[tuple[Signal, dict[str, Any] | None]],
           header: dict[str, Any] | None = None) -> int:
    count = 0
    try:
        with path.open("w", encoding="utf-8") as handle:
            if header is not None:
                handle.write(json.dumps(header, separators=(",", ":")) + "\n")
            for signal, truth in pairs:
                record = _record(signal)
                if truth is not None:
                    record["truth"] = truth
                handle.write(json.dumps(record, separators=(",", ":")) + "\n")
                count += 1
    except OSError as error:
        raise Invalid(f"cannot write signal trace: {error.strerror}", where=str(path)) from None
    return count


def _record(signal: Signal) -> dict[str, Any]:
    """The signal's fields, leaving out those at their default."""
    record: dict[str, Any] = {"at": signal.at, "node": signal.node, "kind": signal.kind.value}
    for name in ("gpu", "code", "job", "peer"):
        if getattr(signal, name) is not None:
            record[name] = getattr(signal, name)
    if signal.value != 1.0:
        record["value"] = signal.value
    for name in ("detail", "source"):
        if getattr(signal, name):
            record[name] = getattr(signal, name)
    return record


def _truth(index: int, item: TracedFault) -> dict[str, Any]:
    truth: dict[str, Any] = {
        "item": index, "hardware": item.hardware, "remedy": item.remedy.value,
        "node": item.node, "gpu": item.gpu, "cause": item.cause, "onset": item.at,
        "repaired_at": item.repaired_at, "noise": item.fault is None}
    if item.fault is not None:
        truth["fault"] = {"category": item.fault.category,
                          "component": item.fault.component, "gpu": item.fault.gpu_index,
                          "downtime_s": item.fault.downtime_s}
    return truth


def _bool(record: Mapping[str, Any], name: str, where: str) -> bool:
    raw = record.get(name)
    if not isinstance(raw, bool):
        raise Invalid(f"truth field {name!r} is {raw!r}", where=where,
                      hint="expected true or false")
    return raw


def _number(record: Mapping[str, Any], name: str, where: str, *, required: bool = False,
            default: float = 0.0) -> float:
    if name not in record:
        if required:
            raise Invalid(f"missing field {name!r}", where=where, hint="seconds, a number")
        return default
    raw = record[name]
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise Invalid(f"field {name!r} is {raw!r}", where=where,
                      hint="expected a finite number")
    return float(raw)


def _node(record: Mapping[str, Any], where: str) -> str:
    raw = record.get("node")
    if not isinstance(raw, str) or not raw:
        found = "missing" if "node" not in record else f"{raw!r}"
        raise Invalid(f"field 'node' is {found}", where=where,
                      hint="expected the node's name, a non-empty string")
    return raw


def _kind(record: Mapping[str, Any], where: str) -> SignalKind:
    raw = record.get("kind")
    if isinstance(raw, str) and raw in _KIND_VALUES:
        return SignalKind(raw)
    found = "missing" if "kind" not in record else f"{raw!r}"
    raise Invalid(f"field 'kind' is {found}", where=where, hint=f"expected one of {_KINDS}")


def _int(record: Mapping[str, Any], name: str, where: str) -> int | None:
    raw = record.get(name)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise Invalid(f"field {name!r} is {raw!r}", where=where,
                      hint="expected an integer or null")
    return raw


def _text(record: Mapping[str, Any], name: str, where: str) -> str | None:
    raw = record.get(name)
    if raw is not None and not isinstance(raw, str):
        raise Invalid(f"field {name!r} is {raw!r}", where=where,
                      hint="expected a string or null")
    return raw
