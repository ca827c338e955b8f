"""Remediation policy as data: which actions a diagnosis leads to, and how each may run.

A remedy (from `dcops.health`) maps to a template of actions; the health decides whether
a drain is soft (a degraded node finishes its jobs) or hard (a failed node's jobs are
already lost, so they are requeued now). Each action kind has a `Mode` (auto, approve,
notify-only) that operators set per kind in the settings.

    restart_app   incident, requeue the jobs                  (hardware is fine)
    reset_gpu     incident, drain, [requeue], reset, recheck, resume
    reboot        incident, drain, [requeue], reboot, recheck, resume
    repair        incident, drain, [requeue], notify          (a technician resumes it)
    watch, none   no plan (a suspect node is only avoided by the scheduler)

A failed node is drained hard (its jobs stopped now) and its jobs requeued from their
last checkpoint; a degraded one is drained soft, and the plan waits for its jobs to end.

A degraded node with remedy `watch` and a playbook configured for its cause (disk full:
clean the scratch space) gets incident, playbook, recheck instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dcops.core.errors import Invalid
from dcops.health.model import Diagnosis, Health, Remedy
from dcops.remediation.model import DRAIN_REASON_PREFIX, Action, ActionKind, Mode, Step

DEFAULT_MODES: dict[ActionKind, Mode] = {
    ActionKind.DRAIN: Mode.AUTO,
    ActionKind.DRAIN_NOW: Mode.AUTO,
    ActionKind.REQUEUE: Mode.AUTO,
    ActionKind.RESET_GPU: Mode.AUTO,
    ActionKind.REBOOT: Mode.APPROVE,
    ActionKind.PLAYBOOK: Mode.APPROVE,
    ActionKind.RECHECK: Mode.AUTO,
    ActionKind.RESUME: Mode.AUTO,
    ActionKind.INCIDENT: Mode.AUTO,
    ActionKind.NOTIFY: Mode.AUTO,
}
"""Out of the box: drain, requeue, reset and resume on their own; a reboot or a playbook
waits for an operator."""

_AFTER_DRAIN: dict[Remedy, tuple[ActionKind, ...]] = {
    Remedy.RESET_GPU: (ActionKind.RESET_GPU, ActionKind.RECHECK, ActionKind.RESUME),
    Remedy.REBOOT: (ActionKind.REBOOT, ActionKind.RECHECK, ActionKind.RESUME),
    Remedy.REPAIR: (ActionKind.NOTIFY,),
}


@dataclass(frozen=True, slots=True)
class RemediationPolicy:
    """What to do about a diagnosis. `modes` overrides `DEFAULT_MODES` per action kind;
    `playbooks` names a playbook per cause keyword (matched in the diagnosis's cause,
    e.g. ``{"disk": "disk-cleanup.yml"}``) for degraded nodes whose remedy is `watch`."""

    modes: Mapping[ActionKind, Mode] = field(default_factory=lambda: dict(DEFAULT_MODES))
    playbooks: Mapping[str, str] = field(default_factory=dict)
    playbook_vars: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Extra variables per playbook (e.g. the scratch directory a cleanup empties); every
    run also gets ``dcops_node``, ``dcops_cause`` and ``dcops_plan_reason``."""

    @classmethod
    def from_settings(cls, modes: Mapping[str, str] | None = None,
                      playbooks: Mapping[str, str] | None = None,
                      playbook_vars: Mapping[str, Mapping[str, str]] | None = None
                      ) -> RemediationPolicy:
        """From the settings' plain strings; unknown kinds or modes are `Invalid`."""
        merged = dict(DEFAULT_MODES)
        for kind, mode in (modes or {}).items():
            try:
                merged[ActionKind(kind)] = Mode(mode)
            except ValueError:
                raise Invalid(f"remediation mode {kind}: {mode}",
                              where="remediation.modes",
                              hint=f"kinds: {', '.join(k.value for k in ActionKind)}; "
                                   f"modes: {', '.join(m.value for m in Mode)}") from None
        return cls(merged, dict(playbooks or {}), dict(playbook_vars or {}))

    def mode(self, kind: ActionKind) -> Mode:
        return self.modes.get(kind, DEFAULT_MODES[kind])

    def actions(self, diagnosis: Diagnosis) -> list[Action]:
        """The actions `diagnosis` calls for, in order (empty: nothing to do)."""
        node, gpu, jobs = diagnosis.node, diagnosis.gpu, diagnosis.jobs
        reason = drain_reason(diagnosis)
        if diagnosis.remedy is Remedy.RESTART_APP:
            if not jobs:
                return []
            return [Action(ActionKind.INCIDENT, node, gpu, jobs, reason=reason),
                    Action(ActionKind.REQUEUE, node, gpu, jobs, reason=reason)]
        if diagnosis.remedy in _AFTER_DRAIN:
            hard = diagnosis.health is Health.FAILED
            drain = ActionKind.DRAIN_NOW if hard else ActionKind.DRAIN
            steps = [Action(ActionKind.INCIDENT, node, gpu, jobs, reason=reason),
                     Action(drain, node, gpu, jobs, reason=reason)]
            if hard:
                steps.append(Action(ActionKind.REQUEUE, node, gpu, jobs, reason=reason))
            remedy = diagnosis.remedy
            if remedy is Remedy.RESET_GPU and gpu is None:
                remedy = Remedy.REBOOT  # a node-wide fault: no one GPU to reset
            steps += [Action(kind, node, gpu, reason=reason) for kind in _AFTER_DRAIN[remedy]]
            return steps
        playbook = self._playbook_for(diagnosis)
        if playbook and diagnosis.health.rank >= Health.DEGRADED.rank:
            extravars = {**self.playbook_vars.get(playbook, {}), "dcops_node": node,
                         "dcops_cause": diagnosis.cause, "dcops_plan_reason": reason}
            return [Action(ActionKind.INCIDENT, node, gpu, reason=reason),
                    Action(ActionKind.PLAYBOOK, node, gpu, playbook=playbook,
                           extravars=tuple(sorted(extravars.items())), reason=reason),
                    Action(ActionKind.RECHECK, node, gpu, reason=reason)]
        return []

    def steps(self, diagnosis: Diagnosis) -> list[Step]:
        """The actions as plan steps, each with its mode."""
        return [Step(action, self.mode(action.kind)) for action in self.actions(diagnosis)]

    def _playbook_for(self, diagnosis: Diagnosis) -> str:
        cause = diagnosis.cause.lower()
        for keyword, playbook in self.playbooks.items():
            if keyword.lower() in cause:
                return playbook
        return ""


def drain_reason(diagnosis: Diagnosis) -> str:
    """The reason a drain leaves in the cluster manager: dcops's prefix, then the cause
    (Slurm shows it in ``sinfo -R``; kept short and on one line)."""
    text = " ".join(diagnosis.cause.split())
    return f"{DRAIN_REASON_PREFIX} {text}"[:120]
