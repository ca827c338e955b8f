"""Carrying out one step of a plan: the action on the `Actuator` (or the playbook runner,
the re-check, the notifier), and what to write in the step's result.

`execute` returns the result text when the step is done, None while it is still in
progress (a soft drain waiting for jobs to end, a re-check to repeat), raises `Skip` when
the step turns out moot, `Unavailable` to be retried and another `DcopsError` when it
fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dcops.core.errors import DcopsError, Invalid
from dcops.health.model import Signal, SignalKind
from dcops.remediation.actuator import Actuator, PlaybookEvent, PlaybookRunner
from dcops.remediation.incidents import Incidents
from dcops.remediation.model import DRAIN_REASON_PREFIX, ActionKind, Plan, Step
from dcops.remediation.ports import Notifier, Rechecker


class Skip(Exception):
    """The step has nothing to do (`result` says why)."""

    def __init__(self, result: str) -> None:
        super().__init__(result)
        self.result = result


@dataclass
class StepContext:
    """What steps act through."""

    actuator: Actuator
    incidents: Incidents
    notifier: Notifier
    rechecker: Rechecker | None
    playbooks: PlaybookRunner | None
    on_signal: Callable[[Signal], None] | None
    recheck_attempts: int
    recheck_interval_s: float


def execute(ctx: StepContext, plan: Plan, step: Step, now: float) -> str | None:
    return _ACTIONS[step.action.kind](ctx, plan, step, now)


def _incident(ctx: StepContext, plan: Plan, step: Step, now: float) -> str:
    risk = ctx.incidents.refresh_risk(plan, plan.jobs, now)
    return f"incident {plan.incident_id} ({risk:.1f} GPU-hours at risk)"


def _drain(ctx: StepContext, plan: Plan, step: Step, now: float) -> str | None:
    action, hard = step.action, step.action.kind is ActionKind.DRAIN_NOW
    status = ctx.actuator.status(plan.node)
    plan.jobs = tuple(dict.fromkeys(plan.jobs + status.jobs))
    if status.drained and not status.reason.startswith(DRAIN_REASON_PREFIX):
        raise Skip(f"already drained by someone else ({status.reason or 'no reason'}): "
                   "left as it is, and dcops will not resume it")
    if not status.drained or (hard and status.jobs):
        ctx.actuator.drain(plan.node, action.reason, hard=hard)
    plan.node_out = True
    if hard:
        return (f"drained now; jobs stopped: {', '.join(status.jobs)}" if status.jobs
                else "drained now; no jobs were running")
    left = ctx.actuator.status(plan.node).jobs if status.jobs else ()
    if left:
        step.result = f"draining: waiting for {len(left)} jobs to end ({', '.join(left)})"
        step.next_try_at = now + 10.0
        return None
    return "drained; no jobs left on it"


def _requeue(ctx: StepContext, plan: Plan, step: Step, now: float) -> str:
    jobs = tuple(dict.fromkeys(step.action.jobs + plan.jobs))
    if not jobs:
        return "no jobs to requeue"
    requeued = ctx.actuator.requeue(jobs)
    if not requeued:
        return f"nothing to requeue: {', '.join(jobs)} already pending or ended"
    return f"requeued from their last checkpoint: {', '.join(requeued)}"


def _reset(ctx: StepContext, plan: Plan, step: Step, now: float) -> str:
    if step.action.gpu is None:
        raise Invalid("a GPU reset needs a GPU index", where=f"plan {plan.id}")
    ctx.actuator.reset_gpu(plan.node, step.action.gpu)
    return f"GPU {step.action.gpu} reset"


def _reboot(ctx: StepContext, plan: Plan, step: Step, now: float) -> str:
    ctx.actuator.reboot(plan.node)
    return "reboot requested"


def _playbook(ctx: StepContext, plan: Plan, step: Step, now: float) -> str:
    if ctx.playbooks is None:
        raise Invalid("no playbook runner configured", where="remediation.playbooks",
                      hint="set remediation.playbook_dir to use playbook actions")

    def on_event(event: PlaybookEvent) -> None:
        if event.event in {"ok", "changed", "failed", "unreachable"}:
            ctx.incidents.note(plan, "playbook", f"{event.event} {event.host} {event.task}"
                               f"{': ' + event.detail if event.detail else ''}")

    result = ctx.playbooks.run(step.action.playbook, [plan.node],
                               extravars=dict(step.action.extravars), on_event=on_event)
    if not result.ok:
        raise DcopsError(f"playbook {step.action.playbook} {result.status} (rc {result.rc}); "
                         f"failed on {', '.join(result.failed_hosts) or 'no host'}, "
                         f"unreachable {', '.join(result.unreachable_hosts) or 'none'}")
    return f"playbook {step.action.playbook} successful"


def _recheck(ctx: StepContext, plan: Plan, step: Step, now: float) -> str | None:
    if ctx.rechecker is None:
        raise Invalid("no health re-check configured: the node stays drained",
                      where="remediation.recheck", hint="approve the resume by hand")
    signal = ctx.rechecker.recheck(plan.node, step.action.gpu, now)
    clean = signal.kind is SignalKind.CHECK_PASSED
    last = step.attempts >= ctx.recheck_attempts
    if ctx.on_signal is not None and (clean or last):  # not yet clean is not a verdict
        ctx.on_signal(signal)
    if clean:
        return f"clean{': ' + signal.detail if signal.detail else ''}"
    if last:
        raise DcopsError(f"re-check failed {step.attempts} times ({signal.detail or 'fault'}): "
                         "left drained for repair")
    step.result = f"re-check {step.attempts} not clean ({signal.detail or 'fault'}); again later"
    step.next_try_at = now + ctx.recheck_interval_s
    return None


def _resume(ctx: StepContext, plan: Plan, step: Step, now: float) -> str:
    status = ctx.actuator.status(plan.node)
    if not status.drained and not status.down:
        plan.node_out = False
        return "already in service"
    if status.drained and not status.reason.startswith(DRAIN_REASON_PREFIX):
        plan.node_out = False
        raise Skip(f"drained by someone else ({status.reason or 'no reason'}): left alone")
    ctx.actuator.resume(plan.node)
    plan.node_out = False
    return "back in service"


def _notify(ctx: StepContext, plan: Plan, step: Step, now: float) -> str:
    ctx.notifier.notify("warning", f"{plan.node}: {plan.cause}: drained, needs a technician",
                        {"node": plan.node, "plan": plan.id, "incident": plan.incident_id})
    return "people told"


_ACTIONS: dict[ActionKind, Callable[[StepContext, Plan, Step, float], str | None]] = {
    ActionKind.INCIDENT: _incident,
    ActionKind.DRAIN: _drain,
    ActionKind.DRAIN_NOW: _drain,
    ActionKind.REQUEUE: _requeue,
    ActionKind.RESET_GPU: _reset,
    ActionKind.REBOOT: _reboot,
    ActionKind.PLAYBOOK: _playbook,
    ActionKind.RECHECK: _recheck,
    ActionKind.RESUME: _resume,
    ActionKind.NOTIFY: _notify,
}
