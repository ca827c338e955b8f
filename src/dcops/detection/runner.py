"""One configured detector at work: read its new steps, score them, keep what it found.

A tick of a `Runner` reads the steps that became ready since its last one (`feed`),
scores them (`scorers`), turns the scores into ``dcops_anomaly_score`` samples, feeds the
alert tracker, and remembers each entity's latest score and explanation for the API. An
entity that has sent nothing for `forget_after_s` is dropped: its detector state goes and
a firing alert on it resolves.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from dcops.core.errors import DcopsError, Invalid
from dcops.detection.alerting import AlertTracker, AnomalyAlert
from dcops.detection.feed import Frame, Grid, gather, next_grid
from dcops.detection.model import Explanation, State, StateValue
from dcops.detection.registry import lookup
from dcops.detection.saved import as_float, nest, unnest
from dcops.detection.scorers import scorer_for
from dcops.detection.selection import SCORE_METRIC, Entity, columns
from dcops.detection.spec import DetectorSpec
from dcops.query.result import Result
from dcops.telemetry.model import Batch, make_labels

log = logging.getLogger(__name__)


class RangeQuerier(Protocol):
    """What a runner needs of a `dcops.query.Querier`."""

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> Result: ...


@dataclass(frozen=True)
class Latest:
    """An entity's newest score and what drove it."""

    entity: Entity
    at: float
    score: float
    explanation: Explanation
    details: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Outcome:
    """What one tick produced: score samples to write and alerts to hand on."""

    samples: Batch = field(default_factory=Batch)
    alerts: list[AnomalyAlert] = field(default_factory=list)
    steps: int = 0


class Runner:
    """A `DetectorSpec` with its detector(s), its place in time and its alerts."""

    def __init__(self, spec: DetectorSpec, querier: RangeQuerier, *, step_s: float,
                 delay_s: float, backfill_s: float, forget_after_s: float) -> None:
        self.spec = spec
        self.querier = querier
        self.step_ms = round(step_s * 1000)
        self.delay_ms = round(delay_s * 1000)
        self.backfill_ms = round(backfill_s * 1000)
        self.forget_after_ms = round(forget_after_s * 1000)
        self.kind = lookup(spec.kind)
        self.columns = columns(spec, step_s)
        self._fresh()
        self.last_tick_at: float | None = None
        self.last_tick_s = 0.0
        self.last_error: str | None = None
        self.ticks = 0

    def _fresh(self) -> None:
        """Detectors that know nothing yet."""
        spec = self.spec
        params = {**spec.params, "step_s": self.step_ms / 1000.0} if self.kind.wants_step \
            else spec.params
        self.scorer = scorer_for(self.kind, params, [c.name for c in self.columns])
        self.tracker = AlertTracker(spec.threshold, spec.for_s, spec.resolve_after_s)
        self.last_ms: int | None = None
        self.seen: dict[str, int] = {}
        """Entity key -> the last step (ms) it had a value."""
        self.latest: dict[str, Latest] = {}

    # -- a tick ---------------------------------------------------------------------------

    def tick(self, now_s: float) -> Outcome:
        grid = next_grid(self.last_ms, round(now_s * 1000), self.step_ms, self.delay_ms,
                         self.backfill_ms)
        if grid is None:
            return Outcome()
        began = time.perf_counter()
        try:
            frame = gather([self._query(c.query, grid) for c in self.columns], grid,
                           self.spec)
            outcome = self._score(frame)
            self.last_error = None
        except DcopsError as exc:  # the store is away or the query cannot be answered
            self.last_error = str(exc)
            raise
        finally:
            self.last_tick_at, self.ticks = now_s, self.ticks + 1
            self.last_tick_s = time.perf_counter() - began
        self.last_ms = grid.end_ms
        outcome.alerts += self._forget(grid.end_ms)
        return outcome

    def _query(self, query: str, grid: Grid) -> Result:
        return self.querier.range(query, grid.start_ms, grid.end_ms, grid.step_ms)

    def _score(self, frame: Frame) -> Outcome:
        scores = self.scorer.score(frame)
        present = frame.present
        steps = frame.grid.steps
        out = Outcome(steps=len(steps))
        for n, entity in enumerate(frame.entities):
            rows = np.flatnonzero(present[:, n])
            if not len(rows):
                continue
            labels = make_labels(SCORE_METRIC, {**entity.labels, "detector": self.spec.name})
            for t in rows.tolist():
                at_ms = int(steps[t])
                out.samples.add(labels, at_ms, float(scores[t, n]))
                self.tracker.observe(entity.key, at_ms / 1000.0, float(scores[t, n]))
            last = int(rows[-1])
            self.seen[entity.key] = int(steps[last])
            self.latest[entity.key] = Latest(
                entity, int(steps[last]) / 1000.0, float(scores[last, n]),
                self.scorer.explain(entity.key), self.scorer.details(entity.key))
        out.alerts = self.tracker.take()
        return out

    def _forget(self, now_ms: int) -> list[AnomalyAlert]:
        gone = [k for k, at in self.seen.items() if now_ms - at > self.forget_after_ms]
        if not gone:
            return []
        log.info("detector %s: %d series gone for %.0f s; their state is dropped",
                 self.spec.name, len(gone), self.forget_after_ms / 1000)
        for key in gone:
            self.tracker.vanished(key, now_ms / 1000.0)
            del self.seen[key]
        self.scorer.forget(gone)
        resolved = [a for a in self.tracker.take() if not a.firing]
        alerts = [a for a in resolved if a.key in gone]
        for key in gone:
            self.latest.pop(key, None)
        return alerts

    # -- saved state ----------------------------------------------------------------------

    def state(self) -> State:
        entities = {k: [v.entity.labels, v.entity.group, v.at, v.score]
                    for k, v in self.latest.items()}
        meta = {"signature": self.spec.signature(), "last_ms": self.last_ms,
                "seen": self.seen, "entities": entities, "tracker": self.tracker.state()}
        return {"runner": json.dumps(meta), **nest("detector", self.scorer.state())}

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Carry on from a saved state; `Invalid` (and a fresh start) when it does not
        fit this spec."""
        try:
            self._restore(state)
        except (DcopsError, KeyError, TypeError, ValueError) as exc:
            self._fresh()
            raise Invalid(f"saved state does not fit: {exc}") from None

    def _restore(self, state: Mapping[str, StateValue]) -> None:
        meta = json.loads(str(state["runner"]))
        if meta["signature"] != self.spec.signature():
            raise Invalid("saved for other settings of this detector")
        self.scorer.load(unnest("detector", state))
        self.tracker.restore(dict(meta["tracker"]))
        last = meta.get("last_ms")
        self.last_ms = None if last is None else int(as_float(last))
        self.seen = {str(k): int(v) for k, v in meta["seen"].items()}
        for key, (labels, group, at, score) in meta["entities"].items():
            entity = Entity(key, dict(labels), str(group))
            self.latest[key] = Latest(entity, float(at), float(score),
                                      self.scorer.explain(key), self.scorer.details(key))
