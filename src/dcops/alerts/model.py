"""Rules and alerts: what an operator writes, and what the evaluator keeps track of."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dcops.alerts.notifications import fingerprint
from dcops.telemetry.model import Labels


@dataclass(frozen=True, slots=True)
class FlapThresholds:
    """When an alert counts as flapping: its weighted percent state change over the last 21
    evaluations rises above `high_percent`; it stops flapping below `low_percent`
    (Nagios's defaults, 20 and 5)."""

    high_percent: float = 20.0
    low_percent: float = 5.0


@dataclass(frozen=True, slots=True)
class AlertingRule:
    """``alert:``: a PromQL condition that raises one alert per series it returns.

    `clear_expr` (a dcops extension) is the hysteresis: once firing, the alert stays until
    `clear_expr` returns its series, instead of until `expr` stops returning it.
    """

    name: str
    expr: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    clear_expr: str | None = None
    where: str = ""
    nodata_expr: str | None = None
    """(dcops) The series whose absence puts a firing alert in NODATA instead of resolving
    it; derived from `expr` by ``nodata: true`` (the vector side of its comparison)."""
    flapping: FlapThresholds | None = FlapThresholds()
    """(dcops) Nagios-style flap detection; None switches it off for this rule."""


@dataclass(frozen=True, slots=True)
class RecordingRule:
    """``record:``: a PromQL expression whose answer is stored as a new series."""

    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)
    where: str = ""


Rule = AlertingRule | RecordingRule


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """Rules evaluated together, in order, every `interval_s`."""

    name: str
    interval_s: float
    rules: tuple[Rule, ...]
    where: str = ""


class AlertState(StrEnum):
    """An alert's lifecycle: pending while `for` runs, then firing; inactive once resolved;
    nodata (rules with ``nodata``) while its series is gone."""

    PENDING = "pending"
    FIRING = "firing"
    NODATA = "nodata"
    """(dcops) It fired, then the series behind it vanished: not known to be resolved."""
    INACTIVE = "inactive"


@dataclass(slots=True)
class Alert:
    """One alert of one rule: the labels it is known by and where it stands."""

    rule: str
    labels: Labels
    annotations: dict[str, str]
    state: AlertState
    value: float
    active_at_ms: int
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    keep_firing_since_ms: int | None = None
    """First evaluation, since it last fired, whose answer lacked this alert's series."""
    flapping: bool = False
    """It changes between firing and not too often (see `FlapThresholds`)."""
    _fingerprint: str = field(default="", repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        """Alertmanager's fingerprint of its labels, worked out once."""
        if not self._fingerprint:
            self._fingerprint = fingerprint(dict(self.labels))
        return self._fingerprint
    series: dict[str, Labels] = field(default_factory=dict, repr=False, compare=False)
    """Label sets of its ALERTS / ALERTS_FOR_STATE series, by state (built once)."""
