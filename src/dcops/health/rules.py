"""The diagnosis rules for everything but Xids: ECC, throttling, PCIe, reachability, disks
and health re-checks. Each rule reads one signal and changes the findings of its target.

- ECC: an uncorrectable (double-bit) error is failed/reset the GPU, a second incident (after a
  re-check, or more than `same_incident_s` later) within the repair window is failed/repair;
  a failed row remap is failed/repair; corrected errors over `sbe_per_hour` are suspect/watch.
- Thermal and power throttling: `throttle_signals` within `throttle_window_s` are sustained
  throttling: degraded/watch. Not a reset or a reboot, which cure neither a hot room nor a
  power cap: remediation notifies, and the mark keeps large jobs off the GPU; a lone throttle
  signal is evidence only.
- PCIe replays over `pcie_replays_per_hour`: suspect/watch.
- Unreachable for `unreachable_s` or more: the node is failed/reboot; a shorter silence is
  evidence only.
- A disk under `disk_free_fraction` free: degraded/watch (remediation runs the disk cleanup
  playbook); a later signal over the threshold for the same mount withdraws the finding.
- A passed re-check clears the GPU (or the whole node), except a fault within
  `contradiction_s` of it, which is kept with the contradiction in its cause; a failed
  re-check is failed/repair: the automatic remedies did not bring the hardware back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dcops.health.model import Evidence, Health, Remedy, Signal, SignalKind
from dcops.health.state import DiagnoserConfig, Finding, NodeState, Target

REMEDY_WORDS = {
    Remedy.NONE: "no action", Remedy.WATCH: "watch", Remedy.RESTART_APP: "restart the job",
    Remedy.RESET_GPU: "reset the GPU", Remedy.REBOOT: "reboot", Remedy.REPAIR: "repair (RMA)",
}


def place(target: Target) -> str:
    """ "gpu 3" or "node" for causes."""
    return "node" if target.gpu is None else f"gpu {target.gpu}"


@dataclass(slots=True)
class Step:
    """One signal being applied: the rules record evidence and findings through it."""

    signal: Signal
    at: float
    node: NodeState
    target: Target
    config: DiagnoserConfig
    note: str = ""
    """Appended to every cause this step writes (an index beyond the inventory, say)."""
    touched: list[Target] = field(default_factory=list)
    restart: str | None = None
    """The cause of a job restart this signal calls for (application-class Xids)."""

    def touch(self, target: Target) -> None:
        if target not in self.touched:
            self.touched.append(target)

    def record(self, summary: str, counted: bool = True, target: Target | None = None) -> None:
        """Add evidence to `target` (default: the signal's own)."""
        where = target or self.target
        where.evidence.append(Evidence(self.signal, summary, counted))
        self.touch(where)

    def find(self, rule: str, health: Health, remedy: Remedy, cause: str,
             target: Target | None = None) -> None:
        """Set the finding of `rule` on `target`; the cause ends in the remedy's words."""
        where = target or self.target
        text = f"{cause}: {REMEDY_WORDS[remedy]}{self.note}"
        gap = self.at - where.last_pass
        if health is not Health.HEALTHY and 0 <= gap <= self.config.contradiction_s:
            text += f"; a clean check {gap:.1f} s earlier contradicts it: fault kept"
        where.findings[rule] = Finding(health, remedy, text, self.at)
        self.touch(where)

    def drop(self, rule: str, target: Target | None = None) -> None:
        where = target or self.target
        if where.findings.pop(rule, None) is not None:
            self.touch(where)


def ecc_dbe(step: Step) -> None:
    step.record(f"{step.signal.value:g} uncorrectable ECC error(s)")
    dbe(step, "uncorrectable (double-bit) ECC error")


def dbe(step: Step, what: str) -> None:
    """A double-bit ECC incident (the ECC counter or Xid 48): reset, then repair."""
    incidents = step.target.strike("dbe", step.at, step.config)
    if incidents >= 2:
        step.find("dbe", Health.FAILED, Remedy.REPAIR,
                  f"{what} on {place(step.target)} again ({incidents} incidents within "
                  f"{_days(step.config.repair_window_s)})")
    else:
        step.find("dbe", Health.FAILED, Remedy.RESET_GPU, f"{what} on {place(step.target)}")


def row_remap_failure(step: Step) -> None:
    step.record("row remap failed")
    step.find("remap", Health.FAILED, Remedy.REPAIR,
              f"row remapping failed on {place(step.target)} (no spare rows)")


def ecc_sbe(step: Step) -> None:
    _hourly(step, "sbe", "corrected ECC error", step.config.sbe_per_hour)


def pcie(step: Step) -> None:
    _hourly(step, "pcie", "PCIe replay", step.config.pcie_replays_per_hour)


def _hourly(step: Step, name: str, what: str, limit: float) -> None:
    """Count the signal's `value` into an hourly rate; over `limit`, suspect/watch."""
    per_hour = step.target.rate(name, 3600.0, step.at, step.signal.value)
    step.record(f"{step.signal.value:g} {what}(s), {per_hour:g} in the last hour")
    if per_hour > limit:
        step.find(name, Health.SUSPECT, Remedy.WATCH,
                  f"{per_hour:g} {what}s per hour on {place(step.target)} (over {limit:g})")


def throttle(step: Step) -> None:
    kind = step.signal.kind.value
    config = step.config
    count = step.target.rate(kind, config.throttle_window_s, step.at, 1.0)
    step.record(f"{kind} throttling ({count:g} of {config.throttle_signals} within "
                f"{config.throttle_window_s:g} s)")
    if step.signal.kind is SignalKind.THERMAL:
        lasting = step.target.rate("thermal_long", config.thermal_repair_s, step.at, 1.0)
        if lasting >= config.thermal_repair_signals:
            step.find(kind, Health.DEGRADED, Remedy.REPAIR,
                      f"thermal throttling on {place(step.target)} for "
                      f"{config.thermal_repair_s:g} s ({lasting:g} signals): cooling or the "
                      "thermal interface needs a technician")
            return
    if count >= config.throttle_signals:
        step.find(kind, Health.DEGRADED, Remedy.WATCH,
                  f"sustained {kind} throttling on {place(step.target)} ({count:g} signals "
                  f"within {config.throttle_window_s:g} s); remediation notifies")


def unreachable(step: Step) -> None:
    silent = step.signal.value
    step.record(f"silent for {silent:g} s", target=step.node.own)
    if silent >= step.config.unreachable_s:
        step.find("unreachable", Health.FAILED, Remedy.REBOOT,
                  f"node silent for {silent:g} s (over {step.config.unreachable_s:g} s)",
                  target=step.node.own)


def disk_full(step: Step) -> None:
    mount = step.signal.detail or "/"
    free = step.signal.value
    own = step.node.own
    step.record(f"file system {mount} at {free:.1%} free", target=own)
    if free < step.config.disk_free_fraction:
        step.find(f"disk:{mount}", Health.DEGRADED, Remedy.WATCH,
                  f"file system {mount} at {free:.1%} free (under "
                  f"{step.config.disk_free_fraction:.0%}); remediation runs the disk cleanup "
                  f"playbook", target=own)
    else:
        step.drop(f"disk:{mount}", target=own)


def check_failed(step: Step) -> None:
    step.record(f"health check failed: {step.signal.detail or 'no detail'}")
    step.find("check", Health.FAILED, Remedy.REPAIR,
              f"health check failed on {place(step.target)}: {step.signal.detail or 'no detail'}")


def check_passed(step: Step) -> None:
    targets = step.node.targets() if step.target.gpu is None else [step.target]
    for target in targets:
        passed(step, target)


def passed(step: Step, target: Target) -> None:
    """Clear `target` after a clean check, keeping faults the check contradicts."""
    window = step.config.contradiction_s
    kept = {rule: finding for rule, finding in target.findings.items()
            if finding.health is not Health.HEALTHY and abs(step.at - finding.at) <= window}
    target.clear(step.at)
    target.last_pass = step.at
    for rule, finding in kept.items():
        cause = f"{finding.cause}; a clean check at the same time contradicts it: fault kept"
        target.findings[rule] = Finding(finding.health, finding.remedy, cause, finding.at)
    summary = "health check passed" + (f" but {len(kept)} fault(s) within {window:g} s kept"
                                       if kept else ": cleared")
    step.record(summary, target=target)


def _days(seconds: float) -> str:
    return f"{seconds / 86_400:g} d" if seconds >= 86_400 else f"{seconds:g} s"
