"""One detector kind driven over every entity of a frame, whatever its shape.

`EntityScorer` keeps one `Detector` per entity (kinds of shape ``series`` or ``rows``);
`PeerScorer` hands the whole frame to one `PeerDetector` (shape ``fleet``). Both save
their detectors' states as one (nested) state, and start an entity afresh whose saved
state does not restore.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, Protocol

import numpy as np

from dcops.core.errors import DcopsError
from dcops.detection.feed import Frame
from dcops.detection.model import Detector, Explanation, FloatArray, State, StateValue
from dcops.detection.registry import Kind, PeerDetector
from dcops.detection.saved import nest, unnest

log = logging.getLogger(__name__)


class Scorer(Protocol):
    """Scores a frame's entities: (T, N) in [0, 1]."""

    def score(self, frame: Frame) -> FloatArray: ...

    def explain(self, key: str) -> Explanation: ...

    def details(self, key: str) -> list[dict[str, Any]]: ...

    def forget(self, keys: Sequence[str]) -> None: ...

    def state(self) -> State: ...

    def load(self, state: Mapping[str, StateValue]) -> None: ...


def scorer_for(kind: Kind, params: Mapping[str, Any], columns: Sequence[str]) -> Scorer:
    if kind.shape == "fleet":
        return PeerScorer(kind, params, columns)
    return EntityScorer(kind, params, columns)


class EntityScorer:
    """One detector per entity, made on its first value."""

    def __init__(self, kind: Kind, params: Mapping[str, Any], columns: Sequence[str]) -> None:
        self.kind, self.params, self.columns = kind, dict(params), list(columns)
        self.detectors: dict[str, Detector] = {}

    def score(self, frame: Frame) -> FloatArray:
        out = np.zeros(frame.values.shape[:2])
        present = frame.present
        for n, entity in enumerate(frame.entities):
            if not present[:, n].any():
                continue
            detector = self.detectors.get(entity.key)
            if detector is None:
                detector = self.detectors[entity.key] = self.kind.make(self.params,
                                                                       self.columns)
            rows = frame.values[:, n, 0] if self.kind.shape == "series" \
                else frame.values[:, n, :]
            scores = np.asarray(detector.score(rows), dtype=np.float64)
            out[:, n] = np.clip(np.nan_to_num(scores, nan=0.0), 0.0, 1.0)
        return out

    def explain(self, key: str) -> Explanation:
        detector = self.detectors.get(key)
        return Explanation() if detector is None else detector.explain()

    def details(self, key: str) -> list[dict[str, Any]]:
        detector = self.detectors.get(key)
        details = getattr(detector, "details", None)
        return [] if details is None else list(details())

    def forget(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.detectors.pop(key, None)

    def state(self) -> State:
        keys = sorted(self.detectors)
        out: State = {"keys": json.dumps(keys)}
        for i, key in enumerate(keys):
            out.update(nest(str(i), self.detectors[key].state()))
        return out

    def load(self, state: Mapping[str, StateValue]) -> None:
        keys = json.loads(str(state.get("keys", "[]")))
        cls = type(self.kind.make(self.params, self.columns))
        self.detectors = {}
        for i, key in enumerate(keys):
            try:
                self.detectors[str(key)] = cls.restore(unnest(str(i), state))
            except (DcopsError, KeyError, TypeError, ValueError) as exc:
                log.warning("detector state of %s did not restore (%s); it starts afresh",
                            key, exc)


class PeerScorer:
    """Every entity at once, against its peer group."""

    def __init__(self, kind: Kind, params: Mapping[str, Any], columns: Sequence[str]) -> None:
        self.kind, self.params, self.columns = kind, dict(params), list(columns)
        self.detector: PeerDetector = kind.make(self.params, self.columns)

    def score(self, frame: Frame) -> FloatArray:
        if not frame.entities:
            return np.zeros(frame.values.shape[:2])
        scores = self.detector.score(frame.values, [e.key for e in frame.entities],
                                     [e.group for e in frame.entities])
        return np.clip(np.nan_to_num(np.asarray(scores, np.float64), nan=0.0), 0.0, 1.0)

    def explain(self, key: str) -> Explanation:
        return self.detector.explain_key(key)

    def details(self, key: str) -> list[dict[str, Any]]:
        deviations = getattr(self.detector, "deviations", None)
        if deviations is None:
            return []
        return [asdict(d) for d in deviations(key)]

    def forget(self, keys: Sequence[str]) -> None:
        self.detector.forget(keys)

    def state(self) -> State:
        return self.detector.state()

    def load(self, state: Mapping[str, StateValue]) -> None:
        self.detector = type(self.detector).restore(state)
