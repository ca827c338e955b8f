"""Remediation as data: the actions dcops can take on a node, the plans that order them,
the incidents that record a fault from first signal to resolution.

A `Plan` is made before anything runs, so it can be printed (dry run), approved, resumed
after a crash without repeating finished steps, and audited step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

DRAIN_REASON_PREFIX = "dcops:"
"""Every drain dcops makes carries this at the front of its reason (NHC's habit), so dcops
never resumes a node that someone or something else drained."""


class ActionKind(StrEnum):
    """What an action does to a node."""

    DRAIN = "drain"
    """Soft drain: running jobs finish, nothing new lands."""
    DRAIN_NOW = "drain_now"
    """Hard drain: the node's jobs are stopped now (and requeued by a `requeue` step)."""
    REQUEUE = "requeue"
    """Requeue the affected jobs; they restart from their last checkpoint."""
    RESET_GPU = "reset_gpu"
    """Reset one GPU (``nvidia-smi -r``)."""
    REBOOT = "reboot"
    """Power-cycle the node through its BMC."""
    PLAYBOOK = "playbook"
    """Run an Ansible playbook against the node."""
    RECHECK = "recheck"
    """Run the health check again; the plan continues only if it comes back clean."""
    RESUME = "resume"
    """Return the node to service (only a node dcops drained)."""
    INCIDENT = "incident"
    """Open (or update) the incident for this fault."""
    NOTIFY = "notify"
    """Tell people, through the alerting pipeline's routing."""


DISRUPTIVE = frozenset({ActionKind.DRAIN, ActionKind.DRAIN_NOW, ActionKind.REQUEUE,
                        ActionKind.RESET_GPU, ActionKind.REBOOT, ActionKind.PLAYBOOK,
                        ActionKind.RESUME})
"""Actions that change the fleet (the rest only record or tell)."""


class Mode(StrEnum):
    """How an action may run: on its own, after an operator approves it, or not at all
    (people are told what would have been done)."""

    AUTO = "auto"
    APPROVE = "approve"
    NOTIFY_ONLY = "notify-only"


class StepState(StrEnum):
    """Where a step of a plan stands."""

    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not run: notify-only, refused by an operator, or made moot (the node was resumed)."""
    BLOCKED = "blocked"
    """Held back by a guardrail (budget, rate limit, cooldown, circuit breaker)."""


FINAL_STEP = frozenset({StepState.DONE, StepState.FAILED, StepState.SKIPPED})


class PlanState(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    WAITING = "waiting"
    """Waiting for an approval, a guardrail, or a job to drain."""
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Action:
    """One thing to do to `node` (and `gpu` where the action is per GPU), and why.

    `jobs` are the jobs a requeue acts on; `playbook` and `extravars` are for a playbook
    run; `reason` is the text a drain leaves in the cluster manager (prefixed with
    `DRAIN_REASON_PREFIX`)."""

    kind: ActionKind
    node: str
    gpu: int | None = None
    jobs: tuple[str, ...] = ()
    playbook: str = ""
    extravars: tuple[tuple[str, str], ...] = ()
    reason: str = ""

    def describe(self) -> str:
        target = self.node if self.gpu is None else f"{self.node}/{self.gpu}"
        text = f"{self.kind.value} {target}"
        if self.jobs:
            text += f" jobs {','.join(self.jobs)}"
        if self.playbook:
            text += f" playbook {self.playbook}"
        return text


@dataclass(slots=True)
class Step:
    """An action in a plan, how it may run, and what became of it."""

    action: Action
    mode: Mode = Mode.AUTO
    state: StepState = StepState.PENDING
    attempts: int = 0
    result: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    approved_by: str = ""
    next_try_at: float | None = None
    """When a step waiting on a retry (an unreachable system, a re-check) is tried next."""


@dataclass(slots=True)
class Plan:
    """The ordered steps that remediate one diagnosis on one node, tied to its incident."""

    id: str
    node: str
    cause: str
    created_at: float
    steps: list[Step]
    incident_id: str = ""
    gpu: int | None = None
    state: PlanState = PlanState.PLANNED
    reason: str = ""
    """Why the plan waits, failed or was cancelled."""
    remedy: str = ""
    """The diagnosis's remedy (`dcops.health.model.Remedy`), to tell an escalation."""
    node_out: bool = False
    """True from the plan's drain until the node is back in service: it counts against
    the drain budget, even after the plan is done (a node left for repair)."""
    jobs: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_PLAN

    def step(self, kind: ActionKind) -> Step | None:
        """The first step of this kind, if any."""
        return next((s for s in self.steps if s.action.kind is kind), None)


ACTIVE_PLAN = frozenset({PlanState.PLANNED, PlanState.RUNNING, PlanState.WAITING})


class IncidentState(StrEnum):
    OPEN = "open"
    MITIGATED = "mitigated"
    """The node is out of service and its jobs moved; the fault itself not yet repaired."""
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One moment of an incident: first signal, diagnosis, action, outcome, resolution."""

    at: float
    kind: str
    text: str
    actor: str = "dcops"


@dataclass(slots=True)
class Incident:
    """One fault, from its first signal to its resolution, with what was done about it.

    `gpu_hours_at_risk` is GPUs in the affected jobs times the time since their last
    checkpoint, in hours, as of the last update: the work the fault may cost, used to rank
    open incidents."""

    id: str
    node: str
    cause: str
    opened_at: float
    gpu: int | None = None
    state: IncidentState = IncidentState.OPEN
    jobs: tuple[str, ...] = ()
    gpu_hours_at_risk: float = 0.0
    timeline: list[TimelineEntry] = field(default_factory=list)
    resolved_at: float | None = None
