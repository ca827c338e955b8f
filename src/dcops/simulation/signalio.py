"""Recorded signal traces as JSON Lines: one `Signal` an object a line.

Fields: ``at`` (seconds, a number), ``node`` (a non-empty string), ``kind`` (a
`SignalKind` value), and optionally ``gpu``, ``code`` (integers or null), ``value`` (a
number, default 1), ``job``, ``peer`` (strings or null), ``detail``, ``source`` (strings)
and ``truth`` (an object, the ground truth of a synthesized trace; ignored on reading)::

    {"at": 9596.4, "node": "n885", "kind": "xid", "gpu": 4, "code": 13, "job": "j1"}

Blank lines are skipped; anything else that is wrong stops the read with `Invalid` naming
the file and line, the field and what was expected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dcops.core.errors import Invalid
from dcops.health.model import Signal, SignalKind
from dcops.simulation.faulttrace import FaultTrace, TracedFault

FIELDS = ("at", "node", "kind", "gpu", "code", "value", "job", "peer", "detail", "source")
_KIND_VALUES = frozenset(kind.value for kind in SignalKind)
_KINDS = ", ".join(kind.value for kind in SignalKind)


def write_signals(path: str | Path, signals: Iterable[Signal]) -> int:
    """Write `signals` one a line; returns how many."""
    return _write(Path(path), ((signal, None) for signal in signals))


def write_trace(path: str | Path, trace: FaultTrace) -> int:
    """Write a synthesized trace's signals in time order, each with the `truth` of its
    item (item index, hardware, remedy, node, gpu, cause, onset, repaired_at)."""
    pairs = [(signal, _truth(index, item)) for index, item in enumerate(trace.items)
             for signal in item.signals]
    pairs.sort(key=lambda pair: pair[0].at)
    return _write(Path(path), pairs)


def read_signals(path: str | Path) -> list[Signal]:
    """The signals of a JSON Lines file, in file order."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise Invalid(f"cannot read signal trace: {error.strerror}", where=str(path)) from None
    except UnicodeDecodeError:
        raise Invalid("signal trace is not UTF-8 text", where=str(path)) from None
    out: list[Signal] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            out.append(parse_signal(line, where=f"{path.name}:{number}"))
    return out


def parse_signal(line: str, *, where: str) -> Signal:
    """One line of a trace as a `Signal`."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise Invalid(f"not JSON: {error.msg} at column {error.colno}", where=where,
                      hint="one JSON object a line") from None
    if not isinstance(record, dict):
        raise Invalid(f"expected a JSON object, found {type(record).__name__}", where=where)
    unknown = sorted(set(record) - set(FIELDS) - {"truth"})
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}", where=where,
                      hint=f"fields are {', '.join(FIELDS)} and truth")
    return Signal(at=_number(record, "at", where, required=True),
                  node=_node(record, where), kind=_kind(record, where),
                  gpu=_int(record, "gpu", where), code=_int(record, "code", where),
                  value=_number(record, "value", where, default=1.0),
                  job=_text(record, "job", where), peer=_text(record, "peer", where),
                  detail=_text(record, "detail", where) or "",
                  source=_text(record, "source", where) or "")


def _write(path: Path, pairs: Iterable[tuple[Signal, dict[str, Any] | None]]) -> int:
    count = 0
    try:
        with path.open("w", encoding="utf-8") as handle:
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
    return {"item": index, "hardware": item.hardware, "remedy": item.remedy.value,
            "node": item.node, "gpu": item.gpu, "cause": item.cause, "onset": item.at,
            "repaired_at": item.repaired_at, "noise": item.fault is None}


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
