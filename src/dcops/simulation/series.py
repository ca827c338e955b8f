"""A fixed set of series filled column by column: how simulators emit thousands per tick fast.

Label tuples are built once; each tick supplies one numpy column per metric (one value
per labelled thing, in the order the label sets were given) and gets a Batch back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from dcops.telemetry.model import Batch, Labels, make_labels


class SeriesBlock:
    """Series laid out metric by metric, each over the same list of label sets."""

    def __init__(self) -> None:
        self.labels: list[Labels] = []
        self._sizes: list[int] = []

    def add_metric(self, name: str, things: Sequence[Mapping[str, str]],
                   extra: Mapping[str, str] | None = None) -> None:
        """Declare metric `name` with one series per entry of `things` (plus `extra` labels)."""
        for thing in things:
            labels = make_labels(name, {**thing, **(extra or {})})
            self.labels.append(labels)
        self._sizes.append(len(things))

    def batch(self, ts_ms: int, columns: Sequence[npt.NDArray[Any]]) -> Batch:
        """One sample per series at `ts_ms`; `columns[i]` holds metric i's values."""
        if [len(c) for c in columns] != self._sizes:
            raise ValueError(f"column sizes {[len(c) for c in columns]} != {self._sizes}")
        values = np.concatenate([np.asarray(c, dtype=np.float64) for c in columns])
        n = len(self.labels)
        return Batch(labels=list(self.labels), series_index=list(range(n)),
                     ts_ms=[ts_ms] * n, values=values.tolist())
