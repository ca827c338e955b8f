"""Incidents kept in step with their plans: one per fault, its timeline, and the
GPU-hours at risk that rank it."""

from __future__ import annotations

import secrets

from dcops.health.model import Diagnosis
from dcops.remediation.model import Incident, IncidentState, Plan, TimelineEntry
from dcops.remediation.ports import AtRisk
from dcops.remediation.store import RemediationStore

MAX_TIMELINE = 500
"""Entries kept per incident; a long one keeps its first and newest entries."""


class Incidents:
    """Opens incidents, adds to their timelines and closes them, through the store."""

    def __init__(self, store: RemediationStore, at_risk: AtRisk) -> None:
        self.store = store
        self.at_risk = at_risk

    def open(self, diagnosis: Diagnosis, now: float) -> Incident:
        first = min((e.signal.at for e in diagnosis.evidence), default=diagnosis.at)
        incident = Incident(f"inc-{secrets.token_hex(6)}", diagnosis.node, diagnosis.cause,
                            first, diagnosis.gpu, jobs=diagnosis.jobs)
        for evidence in diagnosis.evidence:
            signal = evidence.signal
            incident.timeline.append(TimelineEntry(signal.at, "signal", evidence.summary,
                                                   signal.source or "telemetry"))
        incident.timeline.append(TimelineEntry(diagnosis.at, "diagnosis",
                                               f"{diagnosis.health.value}: {diagnosis.cause}; "
                                               f"remedy {diagnosis.remedy.value}"))
        incident.gpu_hours_at_risk = self.at_risk(diagnosis.jobs, now)
        self.store.save_incident(incident)
        return incident

    def note(self, plan: Plan, kind: str, text: str, actor: str = "dcops") -> None:
        """Add an entry to the plan's incident (none: a dry run)."""
        if not plan.incident_id:
            return
        incident = self.store.incident(plan.incident_id)
        _append(incident, TimelineEntry(_now(incident, plan), kind, text, actor))
        self.store.save_incident(incident)

    def refresh_risk(self, plan: Plan, jobs: tuple[str, ...], now: float) -> float:
        incident = self.store.incident(plan.incident_id)
        incident.jobs = tuple(dict.fromkeys(incident.jobs + jobs))
        incident.gpu_hours_at_risk = self.at_risk(incident.jobs, now)
        self.store.save_incident(incident)
        return incident.gpu_hours_at_risk

    def finish(self, plan: Plan, state: IncidentState, now: float, text: str = "") -> None:
        if not plan.incident_id:
            return
        incident = self.store.incident(plan.incident_id)
        incident.state = state
        if state is IncidentState.RESOLVED:
            incident.resolved_at = now
        words = text or ("resolved: node back in service" if state is IncidentState.RESOLVED
                         else "mitigated: node out of service, waiting for repair")
        _append(incident, TimelineEntry(now, state.value, words))
        self.store.save_incident(incident)


def _now(incident: Incident, plan: Plan) -> float:
    times = [s.finished_at or s.started_at or 0.0 for s in plan.steps]
    return max([*times, incident.timeline[-1].at if incident.timeline else plan.created_at,
                plan.created_at])


def _append(incident: Incident, entry: TimelineEntry) -> None:
    incident.timeline.append(entry)
    if len(incident.timeline) > MAX_TIMELINE:
        del incident.timeline[10]
