"""Plans and incidents as plain JSON-ready dicts and back: for the SQL store, the API and
the CLI, one shape everywhere."""

from __future__ import annotations

from typing import Any

from dcops.core.errors import Invalid
from dcops.remediation.model import (
    Action,
    ActionKind,
    Incident,
    IncidentState,
    Mode,
    Plan,
    PlanState,
    Step,
    StepState,
    TimelineEntry,
)


def action_dict(action: Action) -> dict[str, Any]:
    return {"kind": action.kind.value, "node": action.node, "gpu": action.gpu,
            "jobs": list(action.jobs), "playbook": action.playbook,
            "extravars": [list(pair) for pair in action.extravars], "reason": action.reason,
            "description": action.describe()}


def step_dict(step: Step) -> dict[str, Any]:
    return {"action": action_dict(step.action), "mode": step.mode.value,
            "state": step.state.value, "attempts": step.attempts, "result": step.result,
            "started_at": step.started_at, "finished_at": step.finished_at,
            "approved_by": step.approved_by, "next_try_at": step.next_try_at}


def plan_dict(plan: Plan) -> dict[str, Any]:
    return {"id": plan.id, "node": plan.node, "gpu": plan.gpu, "cause": plan.cause,
            "created_at": plan.created_at, "state": plan.state.value, "reason": plan.reason,
            "remedy": plan.remedy, "node_out": plan.node_out, "jobs": list(plan.jobs),
            "incident_id": plan.incident_id, "steps": [step_dict(s) for s in plan.steps]}


def incident_dict(incident: Incident) -> dict[str, Any]:
    return {"id": incident.id, "node": incident.node, "gpu": incident.gpu,
            "cause": incident.cause, "opened_at": incident.opened_at,
            "state": incident.state.value, "jobs": list(incident.jobs),
            "gpu_hours_at_risk": incident.gpu_hours_at_risk,
            "resolved_at": incident.resolved_at,
            "timeline": [{"at": e.at, "kind": e.kind, "text": e.text, "actor": e.actor}
                         for e in incident.timeline]}


def plan_from_dict(data: dict[str, Any]) -> Plan:
    try:
        return Plan(str(data["id"]), str(data["node"]), str(data["cause"]),
                    float(data["created_at"]), [_step(s) for s in data["steps"]],
                    str(data.get("incident_id", "")), _gpu(data.get("gpu")),
                    PlanState(data["state"]), str(data.get("reason", "")),
                    str(data.get("remedy", "")), bool(data.get("node_out", False)),
                    tuple(str(j) for j in data.get("jobs", ())))
    except (KeyError, ValueError, TypeError) as error:
        raise Invalid(f"stored plan is malformed: {error!r}",
                      where=f"plan {data.get('id')}") from None


def incident_from_dict(data: dict[str, Any]) -> Incident:
    try:
        return Incident(str(data["id"]), str(data["node"]), str(data["cause"]),
                        float(data["opened_at"]), _gpu(data.get("gpu")),
                        IncidentState(data["state"]), tuple(str(j) for j in data["jobs"]),
                        float(data["gpu_hours_at_risk"]),
                        [TimelineEntry(float(e["at"]), str(e["kind"]), str(e["text"]),
                                       str(e.get("actor", "dcops")))
                         for e in data["timeline"]],
                        data.get("resolved_at"))
    except (KeyError, ValueError, TypeError) as error:
        raise Invalid(f"stored incident is malformed: {error!r}",
                      where=f"incident {data.get('id')}") from None


def _step(data: dict[str, Any]) -> Step:
    raw = data["action"]
    action = Action(ActionKind(raw["kind"]), str(raw["node"]), _gpu(raw.get("gpu")),
                    tuple(str(j) for j in raw.get("jobs", ())), str(raw.get("playbook", "")),
                    tuple((str(k), str(v)) for k, v in raw.get("extravars", ())),
                    str(raw.get("reason", "")))
    return Step(action, Mode(data["mode"]), StepState(data["state"]), int(data["attempts"]),
                str(data.get("result", "")), data.get("started_at"), data.get("finished_at"),
                str(data.get("approved_by", "")), data.get("next_try_at"))


def _gpu(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]
