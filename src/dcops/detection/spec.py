"""What the detection service is told to run: one `DetectorSpec` per configured detector."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DetectorSpec:
    """One detector over the series its selectors pick, as ``detection.detectors[]`` says.

    Each selector is one column: a plain series selector is read as its newest sample in
    each interval (a counter, named ``*_total``, as its per-second rate); any other PromQL
    expression is read as written. An entity (what gets one score) is a series' labels,
    or only its `entity_by` labels; for a ``fleet`` detector, entities with the same
    `group_by` labels are peers."""

    name: str
    kind: str
    selectors: tuple[str, ...]
    group_by: tuple[str, ...] = ()
    entity_by: tuple[str, ...] | None = None
    threshold: float = 0.8
    for_s: float = 120.0
    resolve_s: float | None = None
    """How long the score must stay below the threshold to resolve (default `for_s`)."""
    severity: str = "warning"
    rate: bool | None = None
    """Read plain selectors as rate(); None: only those named ``*_total``."""
    window_s: float | None = None
    """The window of each reading (default the interval; a rate's: 4 intervals, >= 60 s)."""
    interval_s: float | None = None
    """This detector's step (default the service's interval)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Passed to the kind's factory (e.g. a fleet detector's ``direction: high``)."""

    @property
    def resolve_after_s(self) -> float:
        return self.for_s if self.resolve_s is None else self.resolve_s

    def signature(self) -> str:
        """Changes whenever a saved state would no longer fit this spec."""
        shape = {"kind": self.kind, "selectors": list(self.selectors),
                 "group_by": list(self.group_by),
                 "entity_by": None if self.entity_by is None else list(self.entity_by),
                 "rate": self.rate, "params": self.params}
        text = json.dumps(shape, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
