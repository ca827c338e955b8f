"""The agent push format: what ``dcops agent`` POSTs to ``/api/v1/push``.

A push is JSON (optionally gzip-encoded)::

    {"agent_id": "host1-3f2a", "seq": 42, "node": "host1",
     "series": [{"labels": {"__name__": "dcops_host_cpu_percent", "cpu": "total"},
                 "samples": [[1700000000000, 12.5]]}],
     "gpus": [{"index": 0, "uuid": "GPU-...", "model": "NVIDIA H100 80GB HBM3"}]}

`seq` increases by one per batch per agent, so the server can drop a batch it has
already acknowledged when an agent redelivers after a lost reply.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dcops.core.errors import Invalid
from dcops.telemetry.model import Batch, labels_from_pairs

MAX_TS_MS = 253402300799000  # year 9999


class PushSeries(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: dict[str, str]
    samples: list[tuple[int, float]]


class PushGpu(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int = Field(ge=0)
    uuid: str = ""
    model: str = ""


class PushBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(min_length=1, max_length=200)
    seq: int = Field(ge=0)
    node: str = Field(min_length=1, max_length=253)
    series: list[PushSeries]
    gpus: list[PushGpu] = Field(default_factory=list)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def parse_push(data: Any) -> tuple[PushBody, Batch]:
    """Validate a decoded JSON push; Invalid says which field is wrong."""
    try:
        body = PushBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(f"{first['msg']}", where=f"push body: {_loc(first['loc'])}") from None
    batch = Batch()
    for i, series in enumerate(body.series):
        try:
            labels = labels_from_pairs(series.labels.items())
        except Invalid as exc:
            raise Invalid(exc.message, where=f"push body: series[{i}].labels") from None
        for j, (ts, value) in enumerate(series.samples):
            if not 0 <= ts <= MAX_TS_MS:
                raise Invalid(f"timestamp {ts} out of range (milliseconds since epoch)",
                              where=f"push body: series[{i}].samples[{j}]")
            batch.add(labels, ts, value)
    return body, batch


def make_push(agent_id: str, seq: int, node: str, batch: Batch,
              gpus: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Build the JSON push for `batch` (what the agent sends)."""
    grouped: dict[int, list[list[float]]] = {}
    for i, ts, v in zip(batch.series_index, batch.ts_ms, batch.values, strict=True):
        grouped.setdefault(i, []).append([ts, v])
    series = [{"labels": dict(batch.labels[i]), "samples": s} for i, s in grouped.items()]
    return {"agent_id": agent_id, "seq": seq, "node": node, "series": series,
            "gpus": gpus or []}
