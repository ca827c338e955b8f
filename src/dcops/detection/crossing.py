"""Forecast threshold crossings as a detector kind: "disk full in 6 h", "inlet above 27 C
in 40 min", alerted on before they happen.

`CrossingDetector` forecasts one series (`Forecaster`) and scores each step with the
forecast probability that the series is past `threshold` somewhere within `horizon_s`
(`predict.crossing`): 0 when nothing crosses, near 1 when even the interval says it will.
As a kind of the detection service (``kind: crossing``), the score is written as
``dcops_anomaly_score`` and, above the detector's threshold for ``for_s``, is an alert whose
text says when (``disk full in 5 h 40 min (86% likely)``). The forecaster needs the step
of the series it follows; the service passes its own (`Kind.wants_step`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import numpy as np

from dcops.core.errors import Invalid
from dcops.detection.forecast import Direction, Forecaster
from dcops.detection.model import Explanation, FloatArray, State, StateValue
from dcops.detection.predict import CrossingRule, Prediction, crossing
from dcops.detection.saved import as_float, check_kind, nest, unnest


class CrossingDetector:
    """One series, scored by how likely it is to cross a threshold within a horizon."""

    name = "crossing"

    def __init__(self, threshold: float, *, direction: Direction = "above",
                 horizon_s: float = 6 * 3600.0, level: float = 0.8, label: str = "",
                 step_s: float = 30.0) -> None:
        if direction not in ("above", "below"):
            raise Invalid(f"direction is {direction!r}", where="crossing",
                          hint="above or below")
        self.rule = CrossingRule("series", float(threshold), direction, float(horizon_s),
                                 label, float(level))
        self.forecaster = Forecaster(float(step_s))
        if not 1 <= round(horizon_s / step_s) <= self.forecaster.max_horizon:
            raise Invalid(f"horizon_s {horizon_s:g} is outside 1 step .. a day",
                          where="crossing", hint="forecasts reach at most one day ahead")
        self.last: Prediction | None = None

    def score(self, values: FloatArray) -> FloatArray:
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        out = np.zeros(len(x))
        for i, value in enumerate(x.tolist()):
            self.forecaster.update(np.array([value]))
            if not np.isfinite(value):
                continue  # a missing sample: no new view of the future
            self.last = crossing(self.forecaster, 0, self.rule)
            out[i] = 0.0 if self.last is None else min(1.0, max(0.0, self.last.confidence))
        return out

    def explain(self) -> Explanation:
        if self.last is None:
            return Explanation()
        return Explanation(((self.last.message(), 1.0),))

    def details(self) -> list[dict[str, Any]]:
        """The prediction behind the last score, for the alert's text and the API."""
        p = self.last
        if p is None:
            return []
        return [{"prediction": p.message(), "in_s": p.in_s, "earliest_s": p.earliest_s,
                 "threshold": p.threshold, "direction": p.direction,
                 "confidence": p.confidence}]

    def state(self) -> State:
        r = self.rule
        return {"kind": self.name, "threshold": r.threshold, "direction": r.direction,
                "horizon_s": r.horizon_s, "level": r.level, "label": r.label,
                **nest("forecaster", self.forecaster.state())}

    @classmethod
    def restore(cls, state: Mapping[str, StateValue]) -> Self:
        check_kind(state, cls.name)
        try:
            forecaster = Forecaster.restore(unnest("forecaster", state))
            direction = str(state["direction"])
            det = cls(as_float(state["threshold"]),
                      direction="below" if direction == "below" else "above",
                      horizon_s=as_float(state["horizon_s"]), level=as_float(state["level"]),
                      label=str(state["label"]), step_s=forecaster.step_s)
        except (Invalid, KeyError, TypeError, ValueError) as exc:
            raise Invalid(f"state is damaged: {exc}", where=cls.name,
                          hint="delete it and the forecast starts again") from None
        det.forecaster = forecaster
        return det
