"""The RemediationStore Protocol over the `remediation_plans` and `incidents` tables: each
row holds its object as JSON (`dcops.remediation.codec`), with the columns queries need."""

from __future__ import annotations

from sqlalchemy import Engine, select

from dcops.backends.sql.rows import upsert
from dcops.backends.sql.schema import incidents, remediation_plans
from dcops.core.errors import NotFound
from dcops.remediation.codec import (
    incident_dict,
    incident_from_dict,
    plan_dict,
    plan_from_dict,
)
from dcops.remediation.model import Incident, IncidentState, Plan
from dcops.remediation.store import rank_incidents


class SqlRemediationStore:
    """Plans and incidents in the state database, replaced whole on each save."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def save_plan(self, plan: Plan) -> None:
        row = {"id": plan.id, "node": plan.node, "state": plan.state.value,
               "created_at": plan.created_at, "live": plan.active or plan.node_out,
               "body": plan_dict(plan)}
        with self._engine.begin() as conn:
            upsert(conn, remediation_plans, row, ["id"])

    def plan(self, plan_id: str) -> Plan:
        stmt = select(remediation_plans.c.body).where(remediation_plans.c.id == plan_id)
        with self._engine.connect() as conn:
            body = conn.execute(stmt).scalar_one_or_none()
        if body is None:
            raise NotFound("plan", plan_id)
        return plan_from_dict(body)

    def plans(self, *, live: bool = False, limit: int = 200) -> list[Plan]:
        stmt = select(remediation_plans.c.body).order_by(
            remediation_plans.c.created_at.desc(), remediation_plans.c.id).limit(limit)
        if live:
            stmt = stmt.where(remediation_plans.c.live.is_(True))
        with self._engine.connect() as conn:
            return [plan_from_dict(body) for body in conn.execute(stmt).scalars()]

    def save_incident(self, incident: Incident) -> None:
        row = {"id": incident.id, "node": incident.node, "state": incident.state.value,
               "opened_at": incident.opened_at,
               "gpu_hours_at_risk": incident.gpu_hours_at_risk,
               "body": incident_dict(incident)}
        with self._engine.begin() as conn:
            upsert(conn, incidents, row, ["id"])

    def incident(self, incident_id: str) -> Incident:
        stmt = select(incidents.c.body).where(incidents.c.id == incident_id)
        with self._engine.connect() as conn:
            body = conn.execute(stmt).scalar_one_or_none()
        if body is None:
            raise NotFound("incident", incident_id)
        return incident_from_dict(body)

    def incidents(self, *, open_only: bool = False, limit: int = 200) -> list[Incident]:
        stmt = select(incidents.c.body).order_by(
            (incidents.c.state == IncidentState.RESOLVED.value),
            incidents.c.gpu_hours_at_risk.desc(), incidents.c.opened_at.desc()).limit(limit)
        if open_only:
            stmt = stmt.where(incidents.c.state != IncidentState.RESOLVED.value)
        with self._engine.connect() as conn:
            found = [incident_from_dict(body) for body in conn.execute(stmt).scalars()]
        return rank_incidents(found, limit)
