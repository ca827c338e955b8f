"""What every detector shares: causal scores in [0, 1], an explanation, and saved state.

A detector in a datacenter runs for months on a series that never ends. So each one is a
streaming object: `score` takes the next rows in time order and continues from the state the
earlier calls left, the score of row t uses rows up to t only, and `state()` / `restore()` let
a restarted control plane carry on where it stopped instead of learning again.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self

import numpy as np
from numpy.typing import NDArray

from dcops.core.errors import Invalid

FloatArray = NDArray[np.float64]
StateValue = FloatArray | float | int | str
State = dict[str, StateValue]

Progress = Callable[[str, int, int], None]
"""Told (what, done, total) as long work advances; the CLI draws it as a progress bar."""


@dataclass(frozen=True)
class Explanation:
    """Which metrics drove a score: (metric, share of the score) with the largest first.

    Shares are non-negative and sum to 1 when any metric contributed."""

    contributions: tuple[tuple[str, float], ...] = ()

    def top(self, n: int = 3) -> tuple[tuple[str, float], ...]:
        return self.contributions[:n]

    @classmethod
    def from_weights(cls, names: list[str] | tuple[str, ...], weights: FloatArray) -> Explanation:
        w = np.where(np.isfinite(weights), np.maximum(weights, 0.0), 0.0)
        total = float(w.sum())
        if total <= 0.0:
            return cls()
        order = np.argsort(-w, kind="stable")
        return cls(tuple((names[i], float(w[i] / total)) for i in order if w[i] > 0.0))


class Detector(Protocol):
    """A causal streaming anomaly detector for one series or one machine.

    `score(values)` takes rows in time order: shape (T,) for a univariate detector, (T, D)
    for one of D metrics. It returns T scores in [0, 1], continuing from the state left by
    earlier calls, so scoring a series in one call or in many gives the same scores. A NaN
    value is a missing sample: it scores 0 and does not move the state."""

    name: str

    def score(self, values: FloatArray) -> FloatArray: ...

    def explain(self) -> Explanation: ...

    def state(self) -> State: ...

    @classmethod
    def restore(cls, state: Mapping[str, StateValue]) -> Self: ...


def save_state(state: Mapping[str, StateValue], path: Path) -> None:
    """Writes a detector's state atomically: arrays in an .npz, scalars in its JSON header."""
    arrays: dict[str, NDArray[np.generic]] = {
        k: np.asarray(v) for k, v in state.items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    arrays["__scalars__"] = np.frombuffer(json.dumps(scalars).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def load_state(path: Path) -> State:
    """Reads what `save_state` wrote; a damaged file is an error that names it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            out: State = {k: np.array(data[k]) for k in data.files if k != "__scalars__"}
            scalars = json.loads(bytes(data["__scalars__"]).decode())
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise Invalid(f"detector state is unreadable: {exc}", where=str(path),
                      hint="delete it and the detector learns again") from exc
    if not isinstance(scalars, dict):
        raise Invalid("detector state header is not an object", where=str(path))
    out.update(scalars)
    return out
