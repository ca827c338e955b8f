"""The remediation engine: diagnoses in, plans out, steps carried out within guardrails.

`Remediator.handle` turns a diagnosis into a stored `Plan` (and its `Incident`), or adds
the evidence to the node's open plan, escalating it when the new remedy is stronger.
`Remediator.advance` runs every live plan as far as it can go now: a step waits for an
approval, a guardrail, a retry or a draining node, and the plan continues on a later call.

A step is saved as running before its action is carried out and as done after, so a
control plane killed mid-plan resumes it where it stopped: a done step is never repeated,
and the one that was running is retried, which the `Actuator`'s idempotence makes safe.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from dcops.access.model import AuditRecord
from dcops.access.store import AuditLog
from dcops.core.clock import Clock
from dcops.core.errors import Conflict, DcopsError, Unavailable
from dcops.health.model import Diagnosis, Remedy, Signal
from dcops.remediation.actuator import Actuator, PlaybookRunner
from dcops.remediation.execute import Skip, StepContext, execute
from dcops.remediation.guardrails import Guardrails
from dcops.remediation.incidents import Incidents
from dcops.remediation.model import (
    DISRUPTIVE,
    FINAL_STEP,
    ActionKind,
    IncidentState,
    Mode,
    Plan,
    PlanState,
    Step,
    StepState,
)
from dcops.remediation.policy import RemediationPolicy
from dcops.remediation.ports import AtRisk, Notifier, Rechecker, RecordingNotifier, no_risk
from dcops.remediation.store import RemediationStore

log = logging.getLogger(__name__)

GATED = DISRUPTIVE | {ActionKind.NOTIFY}
"""Actions whose mode (auto, approve, notify-only) applies; an incident is always kept."""


@dataclass(frozen=True, slots=True)
class Retry:
    """How steps are retried: an unreachable system after `retry_s`, doubling up to
    `max_retry_s`, `max_attempts` times; a re-check every `recheck_interval_s`,
    `recheck_attempts` times, before the node is left drained for repair."""

    retry_s: float = 2.0
    max_retry_s: float = 120.0
    max_attempts: int = 10
    recheck_interval_s: float = 60.0
    recheck_attempts: int = 10
    reconcile_s: float = 60.0


class Remediator:
    """Plans and runs remediation for one cluster (one `Actuator`)."""

    def __init__(self, store: RemediationStore, actuator: Actuator, *, clock: Clock,
                 fleet_nodes: Callable[[], int], policy: RemediationPolicy | None = None,
                 guardrails: Guardrails | None = None, audit: AuditLog | None = None,
                 notifier: Notifier | None = None, rechecker: Rechecker | None = None,
                 playbooks: PlaybookRunner | None = None, at_risk: AtRisk = no_risk,
                 on_signal: Callable[[Signal], None] | None = None,
                 retry: Retry | None = None, actor: str = "dcops") -> None:
        self.store = store
        self.actuator = actuator
        self.clock = clock
        self.fleet_nodes = fleet_nodes
        self.policy = policy or RemediationPolicy()
        self.guardrails = guardrails or Guardrails()
        self.audit = audit
        self.notifier: Notifier = notifier or RecordingNotifier()
        self.retry = retry or Retry()
        self.actor = actor
        self.incidents = Incidents(store, at_risk)
        self._context = StepContext(actuator, self.incidents, self.notifier, rechecker,
                                    playbooks, on_signal, self.retry.recheck_attempts,
                                    self.retry.recheck_interval_s)
        self._live: dict[str, Plan] = {}
        self._by_node: dict[str, str] = {}
        self.out: set[str] = set()
        """Nodes dcops has out of service now (they count against the drain budget)."""
        self._reconciled_at = clock.now()
        self._budget_warned = False
        self._load()

    # -- diagnoses in --------------------------------------------------------------------

    def handle(self, diagnosis: Diagnosis) -> Plan | None:
        """Plan for `diagnosis`, or fold it into the node's live plan; None when the
        diagnosis calls for nothing (a healthy GPU, a suspect only to watch)."""
        steps = self.policy.steps(diagnosis)
        if not steps:
            return None
        now = self.clock.now()
        existing = self._by_node.get(diagnosis.node)
        if existing is not None:
            return self._escalate(self._live[existing], diagnosis, steps, now)
        if diagnosis.node in self.out and any(s.action.kind in DISRUPTIVE for s in steps):
            log.info("%s is already out of service by dcops: %s noted", diagnosis.node,
                     diagnosis.cause)
            return None
        if any(s.action.kind in {ActionKind.DRAIN, ActionKind.DRAIN_NOW} for s in steps):
            self._flag(diagnosis.node, now)
        incident = self.incidents.open(diagnosis, now)
        plan = Plan(new_id("plan"), diagnosis.node, diagnosis.cause, now, steps,
                    incident.id, diagnosis.gpu, remedy=diagnosis.remedy.value,
                    jobs=diagnosis.jobs)
        self._track(plan)
        self.store.save_plan(plan)
        log.info("plan %s for %s: %s", plan.id, plan.node,
                 "; ".join(s.action.describe() for s in steps))
        return plan

    def preview(self, diagnosis: Diagnosis) -> Plan:
        """The plan `diagnosis` would get, nothing stored or done (``remediate plan``):
        each step's state says what would happen to it now."""
        now = self.clock.now()
        plan = Plan("dry-run", diagnosis.node, diagnosis.cause, now,
                    self.policy.steps(diagnosis), gpu=diagnosis.gpu,
                    remedy=diagnosis.remedy.value, jobs=diagnosis.jobs)
        for step in plan.steps:
            kind = step.action.kind
            why = None
            if kind in DISRUPTIVE:
                why = self.guardrails.check(kind, plan.node, now, out_nodes=self.out,
                                            fleet_nodes=self.fleet_nodes(), approved=False)
            if kind in GATED and step.mode is Mode.NOTIFY_ONLY:
                step.state, step.result = StepState.SKIPPED, "notify-only: people are told"
            elif kind in GATED and step.mode is Mode.APPROVE:
                step.state, step.result = StepState.AWAITING_APPROVAL, "needs an approval"
            elif why is not None:
                step.state, step.result = StepState.BLOCKED, why
            else:
                step.result = "would run now"
        return plan

    # -- running plans ------------------------------------------------------------------

    def advance(self) -> list[Plan]:
        """Take every live plan as far as it can go now; returns the plans that changed."""
        now = self.clock.now()
        self._reconcile(now)
        changed = []
        for plan in list(self._live.values()):
            before = _fingerprint(plan)
            self._advance(plan, now)
            if _fingerprint(plan) != before:
                self.store.save_plan(plan)
                changed.append(plan)
            if not plan.active:
                self._untrack(plan)
        return changed

    def plan(self, plan_id: str) -> Plan:
        live = self._live.get(plan_id)
        return live if live is not None else self.store.plan(plan_id)

    def approve(self, plan_id: str, actor: str) -> Plan:
        """An operator approves the plan's steps that wait for approval or are held by
        the rate limit or a cooldown; they run on the next `advance`."""
        plan = self._active(plan_id)
        for step in plan.steps:
            if step.state in {StepState.AWAITING_APPROVAL, StepState.BLOCKED,
                              StepState.PENDING}:
                step.approved_by = actor
                if step.state is not StepState.PENDING:
                    step.state, step.result = StepState.PENDING, f"approved by {actor}"
        self._record(actor, "remediation.approve", plan, {})
        self.incidents.note(plan, "approval", f"plan approved by {actor}", actor)
        self.store.save_plan(plan)
        return plan

    def cancel(self, plan_id: str, actor: str, reason: str = "") -> Plan:
        """Stop a plan: its remaining steps are skipped; a drained node stays drained
        (resume it by hand) and keeps counting against the budget until it is back."""
        plan = self._active(plan_id)
        for step in plan.steps:
            if step.state not in FINAL_STEP:
                step.state, step.result = StepState.SKIPPED, f"cancelled by {actor}"
        plan.state, plan.reason = PlanState.CANCELLED, reason or f"cancelled by {actor}"
        self._record(actor, "remediation.cancel", plan, {"reason": plan.reason})
        self.incidents.note(plan, "cancelled", plan.reason, actor)
        self.store.save_plan(plan)
        self._untrack(plan)
        return plan

    def restore_drains(self) -> list[str]:
        """Drain again the nodes dcops has out, where the cluster manager forgot them in a
        restart (dcops's own scheduler keeps node states in memory; Slurm keeps its own,
        and there a node back in service was resumed by someone, so this is not for it).
        Returns the nodes drained again."""
        restored = []
        holding = self._holding()
        for node in sorted(self.out):
            plans = holding.get(node, [])
            drain = next((s for plan in plans for s in plan.steps if s.action.kind in
                          {ActionKind.DRAIN, ActionKind.DRAIN_NOW}), None)
            if drain is None:
                continue
            try:
                if not self.actuator.status(node).drained:
                    self.actuator.drain(node, drain.action.reason)
                    restored.append(node)
            except DcopsError as error:
                log.warning("could not drain %s again after a restart: %s", node, error)
        if restored:
            log.info("drained again after a restart: %s", ", ".join(restored))
        return restored

    def use_actuator(self, actuator: Actuator) -> None:
        """Act through another actuator from now on."""
        self.actuator = actuator
        self._context.actuator = actuator

    def listen(self, on_signal: Callable[[Signal], None]) -> None:
        """Where re-check results go (the diagnoser, so a clean check clears the node)."""
        self._context.on_signal = on_signal

    def close_breaker(self, actor: str) -> None:
        self.guardrails.close_breaker()
        if self.audit is not None:
            self.audit.record(AuditRecord(self.clock.now(), actor, "remediation.breaker.close",
                                          "remediation", {}))

    def live(self) -> list[Plan]:
        return sorted(self._live.values(), key=lambda p: p.created_at)

    # -- internals ----------------------------------------------------------------------

    def _load(self) -> None:
        for plan in self.store.plans(live=True, limit=100_000):
            if plan.node_out:
                self.out.add(plan.node)
            if plan.active:
                for step in plan.steps:
                    if step.state is StepState.RUNNING:
                        log.info("plan %s: resuming %s after a restart", plan.id,
                                 step.action.describe())
                self._track(plan)

    def _track(self, plan: Plan) -> None:
        self._live[plan.id] = plan
        self._by_node[plan.node] = plan.id

    def _untrack(self, plan: Plan) -> None:
        self._live.pop(plan.id, None)
        if self._by_node.get(plan.node) == plan.id:
            del self._by_node[plan.node]

    def _active(self, plan_id: str) -> Plan:
        plan = self._live.get(plan_id)
        if plan is None:
            stored = self.store.plan(plan_id)
            raise Conflict(f"plan {plan_id} is {stored.state.value}, not live",
                             hint="only a planned, running or waiting plan can change")
        return plan

    def _flag(self, node: str, now: float) -> None:
        if self.guardrails.flag(node, now):
            count = self.guardrails.flagged_in_window(now)
            summary = (f"remediation storm: {count} nodes flagged within "
                       f"{self.guardrails.settings.storm_window_s:.0f} s; automatic drains "
                       "stopped until an operator closes the breaker")
            log.warning(summary)
            self.notifier.notify("page", summary, {"alertname": "RemediationStorm"})
            if self.audit is not None:
                self.audit.record(AuditRecord(now, self.actor, "remediation.breaker.open",
                                              "remediation", {"flagged": count}))

    def _escalate(self, plan: Plan, diagnosis: Diagnosis, steps: list[Step],
                  now: float) -> Plan:
        old = Remedy(plan.remedy) if plan.remedy else Remedy.NONE
        if diagnosis.remedy.rank <= old.rank:
            self.incidents.note(plan, "evidence", diagnosis.cause)
            return plan
        done = {s.action.kind for s in plan.steps if s.state is StepState.DONE}
        for step in plan.steps:
            if step.action.kind is ActionKind.INCIDENT:
                done.add(ActionKind.INCIDENT)  # one incident per plan, done or to do
            elif step.state not in FINAL_STEP:
                step.state, step.result = StepState.SKIPPED, f"superseded: {diagnosis.cause}"
        plan.steps.extend(s for s in steps if s.action.kind not in done)
        plan.remedy, plan.cause = diagnosis.remedy.value, diagnosis.cause
        plan.jobs = tuple(dict.fromkeys(plan.jobs + diagnosis.jobs))
        if plan.state is PlanState.DONE:
            plan.state = PlanState.RUNNING
        self.incidents.note(plan, "escalated", f"to {diagnosis.remedy.value}: {diagnosis.cause}")
        self.store.save_plan(plan)
        return plan

    def _advance(self, plan: Plan, now: float) -> None:
        for index, step in enumerate(plan.steps):
            if step.state in FINAL_STEP:
                continue
            self._try(plan, index, step, now)
            if step.state is StepState.FAILED:
                self._fail(plan, step, now)
                return
            if step.state not in FINAL_STEP:
                plan.state = (PlanState.RUNNING if step.state is StepState.RUNNING
                              else PlanState.WAITING)
                plan.reason = step.result
                return
        self._finish(plan, now)

    def _try(self, plan: Plan, index: int, step: Step, now: float) -> None:
        if step.next_try_at is not None and now < step.next_try_at:
            return
        action = step.action
        if step.state is StepState.AWAITING_APPROVAL:
            return
        approved = bool(step.approved_by)
        if action.kind in GATED and not approved and step.mode is not Mode.AUTO:
            self._gate(plan, step, now)
            return
        if action.kind is ActionKind.RESUME and not approved and _fix_not_done(plan):
            step.state = StepState.AWAITING_APPROVAL
            step.result = ("the reset or reboot was not carried out (notify-only): "
                           "approve to resume once the node is fixed")
            self.notifier.notify("warning", f"{plan.node}: {step.result}",
                                 {"node": plan.node, "plan": plan.id, "action": "resume"})
            self.incidents.note(plan, "gated", step.result)
            return
        if action.kind in DISRUPTIVE and step.state is not StepState.RUNNING:
            why = self.guardrails.check(action.kind, plan.node, now, out_nodes=self.out,
                                        fleet_nodes=self.fleet_nodes(), approved=approved)
            if why is not None:
                self._block(plan, step, why)
                return
            self.guardrails.record(action.kind, plan.node, now)
        self._run(plan, index, step, now)

    def _gate(self, plan: Plan, step: Step, now: float) -> None:
        labels = {"node": plan.node, "plan": plan.id, "action": step.action.kind.value}
        if step.mode is Mode.NOTIFY_ONLY:
            step.state, step.finished_at = StepState.SKIPPED, now
            step.result = f"notify-only: would {step.action.describe()}"
            self.notifier.notify("info", f"{plan.node}: {step.result}", labels)
        else:
            step.state, step.result = StepState.AWAITING_APPROVAL, "waiting for an approval"
            self.notifier.notify("warning", f"{plan.node}: approve plan {plan.id} to "
                                 f"{step.action.describe()}", labels)
        self.incidents.note(plan, "gated", step.result)

    def _block(self, plan: Plan, step: Step, why: str) -> None:
        if step.state is StepState.BLOCKED and step.result == why:
            return
        step.state, step.result = StepState.BLOCKED, why
        self.incidents.note(plan, "blocked", f"{step.action.describe()}: {why}")
        if why.startswith("drain budget") and not self._budget_warned:
            self._budget_warned = True
            self.notifier.notify("warning", f"remediation held: {why}",
                                 {"alertname": "RemediationBudgetSpent"})

    def _run(self, plan: Plan, index: int, step: Step, now: float) -> None:
        step.state, step.attempts = StepState.RUNNING, step.attempts + 1
        step.started_at = step.started_at if step.started_at is not None else now
        step.next_try_at = None
        self.store.save_plan(plan)
        try:
            result = execute(self._context, plan, step, now)
        except Skip as skip:
            step.state, step.result, step.finished_at = StepState.SKIPPED, skip.result, now
        except Unavailable as error:
            self._retry_later(plan, step, now, str(error))
            return
        except DcopsError as error:
            step.state, step.result, step.finished_at = StepState.FAILED, str(error), now
        except Exception as error:  # a bug in a backend must not stop the other plans
            log.exception("plan %s: %s", plan.id, step.action.describe())
            step.state, step.finished_at = StepState.FAILED, now
            step.result = f"{type(error).__name__}: {error}"
        else:
            if result is None:  # in progress: a soft drain counts against the budget now
                self._sync_out(plan)
                return
            step.state, step.result, step.finished_at = StepState.DONE, result, now
        self._sync_out(plan)
        self._record(step.approved_by or self.actor, f"remediation.{step.action.kind.value}",
                     plan, {"step": index, "state": step.state.value, "result": step.result,
                            "reason": step.action.reason})
        self.incidents.note(plan, step.action.kind.value,
                            f"{step.action.describe()}: {step.state.value}: {step.result}",
                            step.approved_by or self.actor)

    def _retry_later(self, plan: Plan, step: Step, now: float, why: str) -> None:
        if step.attempts >= self.retry.max_attempts:
            step.state, step.finished_at = StepState.FAILED, now
            step.result = f"gave up after {step.attempts} attempts: {why}"
            self.incidents.note(plan, step.action.kind.value, step.result)
            return
        delay = min(self.retry.retry_s * 2 ** (step.attempts - 1), self.retry.max_retry_s)
        step.next_try_at = now + delay
        step.result = f"attempt {step.attempts} failed, retrying in {delay:.0f} s: {why}"
        log.warning("plan %s: %s", plan.id, step.result)

    def _sync_out(self, plan: Plan) -> None:
        if plan.node_out:
            self.out.add(plan.node)
        else:
            self.out.discard(plan.node)

    def _fail(self, plan: Plan, step: Step, now: float) -> None:
        for later in plan.steps:
            if later.state not in FINAL_STEP:
                later.state, later.result = StepState.SKIPPED, "an earlier step failed"
        plan.state, plan.reason = PlanState.FAILED, f"{step.action.describe()}: {step.result}"
        self.notifier.notify("warning", f"{plan.node}: remediation failed: {plan.reason}",
                             {"node": plan.node, "plan": plan.id})
        self.incidents.note(plan, "failed", plan.reason)

    def _finish(self, plan: Plan, now: float) -> None:
        plan.state, plan.reason = PlanState.DONE, ""
        state = IncidentState.MITIGATED if plan.node_out else IncidentState.RESOLVED
        self.incidents.finish(plan, state, now)

    def _reconcile(self, now: float) -> None:
        """Every `reconcile_s`, forget nodes that came back into service by other hands
        (an operator resumed a node left for repair)."""
        if now - self._reconciled_at < self.retry.reconcile_s:
            return
        self._reconciled_at = now
        idle = self.out - {p.node for p in self._live.values()}
        if len(self.out) < self.guardrails.settings.budget(self.fleet_nodes()):
            self._budget_warned = False
        back = []
        for node in sorted(idle):
            try:
                if not self.actuator.status(node).drained:
                    back.append(node)
            except DcopsError as error:
                log.debug("reconcile %s: %s", node, error)
        if not back:
            return
        holding = self._holding()
        for node in back:
            self.out.discard(node)
            for plan in holding.get(node, []):
                plan.node_out = False
                self.store.save_plan(plan)
                self.incidents.finish(plan, IncidentState.RESOLVED, now,
                                      "back in service (resumed outside dcops)")

    def _holding(self) -> dict[str, list[Plan]]:
        """The stored plans holding a node out of service, by node (one read)."""
        found: dict[str, list[Plan]] = {}
        for plan in self.store.plans(live=True, limit=100_000):
            if plan.node_out:
                found.setdefault(plan.node, []).append(plan)
        return found

    def _record(self, actor: str, action: str, plan: Plan, details: dict[str, object]) -> None:
        if self.audit is None:
            return
        self.audit.record(AuditRecord(self.clock.now(), actor, action, plan.node,
                                      {"plan": plan.id, "incident": plan.incident_id,
                                       **details}))


def _fix_not_done(plan: Plan) -> bool:
    """Whether a reset or reboot of this plan was skipped as notify-only: the node is as
    broken as it was, whatever a re-check of its telemetry says."""
    return any(s.action.kind in {ActionKind.RESET_GPU, ActionKind.REBOOT}
               and s.state is StepState.SKIPPED and s.result.startswith("notify-only")
               for s in plan.steps)


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def _fingerprint(plan: Plan) -> tuple[object, ...]:
    return (plan.state, plan.reason, plan.node_out,
            tuple((s.state, s.result, s.attempts, s.next_try_at) for s in plan.steps))
