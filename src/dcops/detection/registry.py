"""Which detector kinds the detection service can run, by the name settings give them.

A kind is a factory plus the shape of what it scores:

- ``series``: one `Detector` per series, given ``(T,)`` rows (needs exactly one selector);
- ``rows``: one `Detector` per entity (a node, a GPU), given ``(T, D)`` rows, one column
  per selector;
- ``fleet``: one `PeerDetector` for all entities at once, given ``(T, N, D)`` values and
  each entity's peer group.

A factory is called as ``factory(params, columns)``: the ``params`` mapping from settings
and the column names (metric names, one per selector). Shipped: ``univariate``
(`LikelihoodDetector`), ``univariate-fast`` (`UnivariateDetector`), ``multivariate``
(`LearningMultivariate`), ``fleet`` (`FleetDetector`), ``crossing`` (`CrossingDetector`:
forecast threshold crossings) and ``zscore`` (a plain streaming z-score); any other detector
is added with `register`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Self

from dcops.core.errors import DcopsError, Invalid
from dcops.detection.model import Detector, Explanation, FloatArray, State, StateValue

log = logging.getLogger(__name__)

Shape = Literal["series", "rows", "fleet"]
SHAPES: tuple[Shape, ...] = ("series", "rows", "fleet")
ANOMALY_ALERT = "AnomalyDetected"
"""The alert a detector's score raises above its threshold."""
Factory = Callable[[Mapping[str, Any], Sequence[str]], Any]


class PeerDetector(Protocol):
    """A detector that scores every entity against its peers at once (see `fleet`)."""

    name: str

    def score(self, values: FloatArray, keys: Sequence[str] | None = None,
              groups: Sequence[str] | None = None) -> FloatArray: ...

    def forget(self, keys: Sequence[str]) -> None: ...

    def explain_key(self, key: str) -> Explanation: ...

    def state(self) -> State: ...

    @classmethod
    def restore(cls, state: Mapping[str, StateValue]) -> Self: ...


@dataclass(frozen=True)
class Kind:
    """A registered detector kind."""

    name: str
    shape: Shape
    factory: Factory
    description: str = ""
    wants_step: bool = False
    """Its factory is also given ``step_s``, the seconds between the rows it scores."""
    alertname: str = ANOMALY_ALERT
    """The alert its scores raise; a kind that forecasts says so in its own name."""

    def make(self, params: Mapping[str, Any], columns: Sequence[str]) -> Any:
        """A fresh detector; bad params are `Invalid` naming the kind."""
        try:
            return self.factory(params, columns)
        except DcopsError as exc:
            raise Invalid(f"detector kind {self.name!r}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise Invalid(f"detector kind {self.name!r} does not take these params: {exc}"
                          ) from None


_kinds: dict[str, Kind] = {}
_lock = threading.Lock()


def register(kind: str, factory: Factory, *, shape: Shape = "series",
             description: str = "", wants_step: bool = False,
             alertname: str = ANOMALY_ALERT) -> None:
    """Make `kind` available to settings (``detection.detectors[].kind``); replaces any
    earlier registration of the same name."""
    if not kind or not kind.replace("_", "").replace("-", "").isalnum():
        raise Invalid(f"detector kind {kind!r} must be letters, digits, - and _")
    if shape not in SHAPES:
        raise Invalid(f"detector shape must be one of {', '.join(SHAPES)}, not {shape!r}")
    with _lock:
        _kinds[kind] = Kind(kind, shape, factory, description, wants_step, alertname)


def lookup(kind: str) -> Kind:
    """The registered kind; `Invalid` listing the known ones otherwise."""
    found = _kinds.get(kind)
    if found is None:
        raise Invalid(f"unknown detector kind {kind!r}; one of: {', '.join(kinds())}")
    return found


def kinds() -> list[str]:
    return sorted(_kinds)


def check(kind: str, params: Mapping[str, Any], columns: Sequence[str]) -> Kind:
    """The kind, once a detector has been built from `params` (so settings report bad
    params when they load, not when the service starts)."""
    found = lookup(kind)
    if found.shape == "series" and len(columns) != 1:
        raise Invalid(f"detector kind {kind!r} scores one series: give exactly one selector "
                      f"(not {len(columns)})")
    found.make(params, columns)
    return found


def _fleet(params: Mapping[str, Any], columns: Sequence[str]) -> Any:
    from dcops.detection.fleet import FleetDetector

    return FleetDetector(columns, **params)


def _zscore(params: Mapping[str, Any], columns: Sequence[str]) -> Detector:
    from dcops.detection.zscore import ZScoreDetector

    return ZScoreDetector(metric=columns[0], **params)


def _multivariate(params: Mapping[str, Any], columns: Sequence[str]) -> Detector:
    from dcops.detection.learning import LearningMultivariate

    return LearningMultivariate(columns, **params)


def _crossing(params: Mapping[str, Any], columns: Sequence[str]) -> Detector:
    from dcops.detection.crossing import CrossingDetector

    return CrossingDetector(**params)


def _univariate(params: Mapping[str, Any], columns: Sequence[str]) -> Detector:
    from dcops.detection.likelihood import LikelihoodConfig, LikelihoodDetector

    return LikelihoodDetector(LikelihoodConfig(**params))


def _univariate_fast(params: Mapping[str, Any], columns: Sequence[str]) -> Detector:
    from dcops.detection.univariate import UnivariateConfig, UnivariateDetector

    return UnivariateDetector(UnivariateConfig(**params))


register("fleet", _fleet, shape="fleet",
         description="each entity against its peers (same group_by labels) at each moment")
register("univariate", _univariate, shape="series",
         description="one series: range, prediction, subsequence and pattern likelihoods")
register("univariate-fast", _univariate_fast, shape="series",
         description="one series, lighter: for many series at once (millions a second)")
register("crossing", _crossing, shape="series", wants_step=True,
         alertname="ThresholdCrossingPredicted",
         description="one series forecast: how likely it crosses a threshold within a horizon")
register("multivariate", _multivariate, shape="rows",
         description="all metrics of one machine together, learned from its first day")
register("zscore", _zscore, shape="series",
         description="streaming exponentially weighted z-score of one series (a baseline)")
