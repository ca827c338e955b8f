"""Where plans and incidents are kept: the `RemediationStore` Protocol and its in-memory
twin. The SQL store is `dcops.backends.sql.remediation`.

The engine saves a plan before each step runs and after it ends, so a control plane
killed mid-plan resumes from the stored plan without repeating a finished step."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Protocol

from dcops.core.errors import NotFound
from dcops.remediation.model import Incident, IncidentState, Plan


class RemediationStore(Protocol):
    """Plans and incidents by id."""

    def save_plan(self, plan: Plan) -> None: ...

    def plan(self, plan_id: str) -> Plan:
        """The plan; `NotFound` if there is none."""
        ...

    def plans(self, *, live: bool = False, limit: int = 200) -> list[Plan]:
        """Newest first; `live`: only plans still running or holding a node out."""
        ...

    def save_incident(self, incident: Incident) -> None: ...

    def incident(self, incident_id: str) -> Incident: ...

    def incidents(self, *, open_only: bool = False, limit: int = 200) -> list[Incident]:
        """Open ones first by GPU-hours at risk, then newest."""
        ...


def rank_incidents(incidents: list[Incident], limit: int) -> list[Incident]:
    """Open incidents first, the most GPU-hours at risk first; then newest."""
    ordered = sorted(incidents, key=lambda i: (i.state is IncidentState.RESOLVED,
                                               -i.gpu_hours_at_risk, -i.opened_at))
    return ordered[:limit]


def copy_plan(plan: Plan) -> Plan:
    """A copy of `plan` that shares nothing mutable with it, as `copy.deepcopy` would make
    but some 30 times faster (the engine saves a plan at every change): the list of steps
    and each `Step` are copied; every other field, `Action` included, is immutable."""
    return replace(plan, steps=[replace(step) for step in plan.steps])


def copy_incident(incident: Incident) -> Incident:
    """A copy of `incident` that shares nothing mutable with it (its timeline's entries
    are immutable)."""
    return replace(incident, timeline=list(incident.timeline))


class MemoryRemediationStore:
    """Copies in process memory, safe to read from other threads."""

    def __init__(self) -> None:
        self._plans: dict[str, Plan] = {}
        self._incidents: dict[str, Incident] = {}
        self._lock = threading.Lock()

    def save_plan(self, plan: Plan) -> None:
        saved = copy_plan(plan)
        with self._lock:
            self._plans[plan.id] = saved

    def plan(self, plan_id: str) -> Plan:
        with self._lock:
            found = self._plans.get(plan_id)
        if found is None:
            raise NotFound("plan", plan_id)
        return copy_plan(found)

    def plans(self, *, live: bool = False, limit: int = 200) -> list[Plan]:
        with self._lock:
            chosen = [p for p in self._plans.values() if not live or p.active or p.node_out]
        chosen.sort(key=lambda p: (-p.created_at, p.id))
        return [copy_plan(p) for p in chosen[:limit]]

    def save_incident(self, incident: Incident) -> None:
        saved = copy_incident(incident)
        with self._lock:
            self._incidents[incident.id] = saved

    def incident(self, incident_id: str) -> Incident:
        with self._lock:
            found = self._incidents.get(incident_id)
        if found is None:
            raise NotFound("incident", incident_id)
        return copy_incident(found)

    def incidents(self, *, open_only: bool = False, limit: int = 200) -> list[Incident]:
        with self._lock:
            chosen = [i for i in self._incidents.values()
                      if not open_only or i.state is not IncidentState.RESOLVED]
        return [copy_incident(i) for i in rank_incidents(chosen, limit)]
