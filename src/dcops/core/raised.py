"""An alert raised by a source other than the rules (anomaly detectors, the backup
service), in the shape the alerting pipeline takes it; wiring turns it into a
notification, so that these sources need not import the alerting package."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RaisedAlert:
    """One alert's labels and annotations, whether it fires, and since when."""

    labels: dict[str, str]
    annotations: dict[str, str]
    firing: bool
    starts_at: float
    ends_at: float | None = None
