"""Query results turned into regular rows: one value per step, entity and column.

The detection service reads each detector's columns as range queries on a grid of its
step. `next_grid` says which steps are new: those after the last one scored, up to a
little before now (samples arrive late), at most `backfill` long (a control plane that was
down does not score a week in one tick). Each step is scored once: a sample that comes in
late, out of order or twice for a step already scored is not read again. `gather` puts
the answers into a ``(T, N, D)`` array, NaN where a series had no sample; two series of
one entity in one column (when `entity_by` drops a label) are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dcops.detection.model import FloatArray
from dcops.detection.selection import Entity, entity_of
from dcops.detection.spec import DetectorSpec
from dcops.query.result import Result

MAX_STEPS = 10_000
"""Steps in one range query (the engine answers at most 11,000)."""


@dataclass(frozen=True)
class Grid:
    """Steps ``start_ms, start_ms + step_ms, ..., end_ms`` (both ends included)."""

    start_ms: int
    end_ms: int
    step_ms: int

    @property
    def steps(self) -> NDArray[np.int64]:
        return np.arange(self.start_ms, self.end_ms + 1, self.step_ms, dtype=np.int64)

    def __len__(self) -> int:
        return (self.end_ms - self.start_ms) // self.step_ms + 1


def next_grid(last_ms: int | None, now_ms: int, step_ms: int, delay_ms: int,
              backfill_ms: int) -> Grid | None:
    """The steps to score now, or None when no new step is ready."""
    end = (now_ms - delay_ms) // step_ms * step_ms
    oldest = end - min(backfill_ms, (MAX_STEPS - 1) * step_ms) // step_ms * step_ms
    start = oldest if last_ms is None else max(last_ms + step_ms, oldest)
    if last_ms is not None and start <= last_ms:
        start = last_ms + step_ms
    if start > end:
        return None
    return Grid(start, end, step_ms)


@dataclass
class Frame:
    """What one tick scores: `values[t, n, d]` for step t, entity n and column d."""

    grid: Grid
    entities: list[Entity]
    values: FloatArray

    @property
    def present(self) -> NDArray[np.bool_]:
        """(T, N): whether the entity had any value at the step."""
        return np.asarray(np.isfinite(self.values).any(axis=2), dtype=np.bool_)


def gather(results: Sequence[Result], grid: Grid, spec: DetectorSpec) -> Frame:
    """One column per result, on `grid`."""
    index: dict[str, int] = {}
    entities: list[Entity] = []
    cells: list[tuple[int, int, NDArray[np.int64], FloatArray]] = []
    n_steps = len(grid)
    for d, result in enumerate(results):
        for series in result.series:
            entity = entity_of(series.labels, spec)
            n = index.get(entity.key)
            if n is None:
                n = index[entity.key] = len(entities)
                entities.append(entity)
            offset = np.asarray(series.ts_ms, dtype=np.int64) - grid.start_ms
            on_grid = (offset % grid.step_ms == 0) & (offset >= 0)
            pos = offset // grid.step_ms
            keep = on_grid & (pos < n_steps) & np.isfinite(series.values)
            cells.append((n, d, pos[keep], np.asarray(series.values, np.float64)[keep]))
    total = np.zeros((n_steps, len(entities), len(results)))
    count = np.zeros_like(total)
    for n, d, pos, vals in cells:
        np.add.at(total[:, n, d], pos, vals)
        np.add.at(count[:, n, d], pos, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
    return Frame(grid, entities, values)
