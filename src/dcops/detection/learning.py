"""The multivariate detector as the control plane runs it: it learns first, then scores.

`MultivariateDetector` is fitted on normal history before it scores. A detector the
service starts on a node has no such history yet, so `LearningMultivariate` takes the
first `learn_rows` rows it is given as that history (scoring them 0: nothing is known to
compare with), fits on them, and scores every row after. Which rows are learned from does
not depend on how the stream is cut into calls, so the scores are the same either way, and
the rows held while learning are part of the saved state, so a restart does not learn
again from the beginning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np

from dcops.core.errors import Invalid
from dcops.detection.model import Explanation, FloatArray, State, StateValue
from dcops.detection.multivariate import MultivariateDetector
from dcops.detection.saved import as_float, check_kind, nest, unnest

LEARN_ROWS = 1440
"""Rows learned from before scoring: a day of one-minute samples."""


class LearningMultivariate:
    """All metrics of one machine together, learned from its own first rows."""

    name = "learning-multivariate"

    def __init__(self, names: Sequence[str] | None = None, *, learn_rows: int = LEARN_ROWS,
                 **params: Any) -> None:
        if int(learn_rows) < 2:
            raise Invalid(f"learn_rows is {learn_rows}", where="multivariate",
                          hint="give at least 2 rows to learn from (default a day)")
        self.names = list(names) if names is not None else None
        self.learn_rows = int(learn_rows)
        self.params = dict(params)
        MultivariateDetector(self.names, **self.params)  # bad params fail here, not later
        self._held: list[FloatArray] = []
        self._count = 0
        self.detector: MultivariateDetector | None = None

    @property
    def learning(self) -> bool:
        return self.detector is None

    def score(self, values: FloatArray) -> FloatArray:
        """Scores the next rows (T, D): 0 while learning, then the fitted detector's."""
        x = np.asarray(values, dtype=np.float64)
        x = x.reshape(len(x), -1) if x.ndim != 2 else x
        out = np.zeros(len(x))
        start = 0
        if self.detector is None:
            seen = np.flatnonzero(np.isfinite(x).any(axis=1))  # empty rows teach nothing
            need = self.learn_rows - self._count
            start = int(seen[need - 1]) + 1 if len(seen) >= need else len(x)
            taken = seen[:need]
            self._held.append(x[taken])
            self._count += len(taken)
            if self._count >= self.learn_rows:
                self._fit()
        if self.detector is not None and start < len(x):
            out[start:] = self.detector.score(x[start:])
        return out

    def _fit(self) -> None:
        history = np.vstack(self._held)
        self._held, self._count = [], 0
        self.detector = MultivariateDetector(self.names, **self.params).fit(history)

    def explain(self) -> Explanation:
        return self.detector.explain() if self.detector is not None else Explanation()

    def state(self) -> State:
        head: State = {"kind": self.name, "learn_rows": self.learn_rows,
                       "params": json.dumps(self.params, sort_keys=True),
                       "names": json.dumps(self.names)}
        if self.detector is not None:
            return {**head, "fitted": 1, **nest("detector", self.detector.state())}
        held = np.vstack(self._held) if self._held else np.zeros((0, 0))
        return {**head, "fitted": 0, "held": held}

    @classmethod
    def restore(cls, state: Mapping[str, StateValue]) -> Self:
        check_kind(state, cls.name)
        try:
            det = cls(json.loads(str(state["names"])), learn_rows=int(as_float(
                state["learn_rows"])), **json.loads(str(state["params"])))
            if as_float(state["fitted"]):
                det.detector = MultivariateDetector.restore(unnest("detector", state))
            else:
                held = np.asarray(state["held"], dtype=np.float64)
                if held.size:
                    det._held, det._count = [held], len(held)
        except (KeyError, TypeError, ValueError) as exc:
            raise Invalid(f"state is damaged: {exc}", where=cls.name,
                          hint="delete it and the detector learns again") from None
        return det
