"""The Xid rules: the catalogue's policy, refined where one Xid is not the whole story.

- Plain Xids take the catalogue's health and remedy (`XidEntry.policy`); a repairable one
  (Xid 79, 64, ...) repeating as a new incident within the repair window is failed/repair.
  Xid 48 is one double-bit ECC incident with the ECC counter's (see `rules.dbe`). An Xid the
  catalogue lacks is suspect/watch, "unknown Xid N (not in catalogue version V)".
- Sympathetic: an Xid 45 within `sympathetic_s` after Xid 48/94/95 on the same GPU, or whose
  text says "caused by previous Xid", is evidence with counted=False and changes nothing; a
  solo Xid 45 is suspect/watch (IGNORE_IF_NOT_SOLO).
- Application class (13, 31, 43, 94): the job restarts, the GPU stays as it was. Only distinct
  jobs count: `app_suspect_jobs` of them on one GPU within `app_window_s` make it
  suspect/watch, `app_degraded_jobs` degraded/reset; repeats within one job do not escalate.
  A report naming no job is its own job unless it follows another such report within
  `same_incident_s` (the driver logs one fault as a burst of lines).
- Xid 154 states the recovery action; it is authoritative: it replaces the GPU's other
  catalogue-Xid findings (not ECC, NVLink or application ones) with its own, "None" with none.
  An action dcops does not know is suspect/watch with the text in the cause.
- NVLink (Xid 74 or an NVLINK signal): see `XidRules.nvlink`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dcops.health.catalogue import XidCatalogue
from dcops.health.model import Health, Remedy
from dcops.health.recovery import recovery_policy, recovery_text
from dcops.health.rules import Step, dbe, place
from dcops.health.state import Target

PeerResolver = Callable[[str, int], Target]
_PREVIOUS_RE = re.compile(r"previous xid (\d+)", re.IGNORECASE)


class XidRules:
    """Applies Xid and NVLink signals, with the catalogue in force."""

    def __init__(self, catalogue: XidCatalogue, peer: PeerResolver) -> None:
        self.catalogue = catalogue
        self._peer = peer

    def name(self, code: int) -> str:
        entry = self.catalogue.get(code)
        return f"Xid {code} {entry.mnemonic}" if entry else f"Xid {code}"

    def xid(self, step: Step) -> None:
        code = step.signal.code
        if code is None:
            step.record("Xid signal without a code")
            step.find("xid?", Health.SUSPECT, Remedy.WATCH,
                      f"Xid with no code on {place(step.target)}")
            return
        entry = self.catalogue.get(code)
        if code == 154:
            self.recovery(step)
        elif code == 45:
            self.sympathetic(step)
        elif code in step.config.application_xids:
            self.application(step, code)
        elif code == 74 or (entry is not None and entry.immediate == "WORKFLOW_NVLINK_ERR"):
            self.nvlink(step)
        else:
            self.plain(step, code)
        if code in step.config.sympathetic_after:
            step.target.last_trigger = (step.at, code)

    def plain(self, step: Step, code: int) -> None:
        entry = self.catalogue.get(code)
        target = step.target
        if entry is None:
            step.record(f"Xid {code}: not in the catalogue")
            step.find(f"xid{code}", Health.SUSPECT, Remedy.WATCH,
                      f"unknown Xid {code} (not in catalogue version {self.catalogue.version}) "
                      f"on {place(target)}")
            return
        step.record(f"{self.name(code)} ({entry.immediate or 'no bucket'})")
        if code == 48:
            dbe(step, self.name(code))
            return
        policy = entry.policy
        if policy.health is Health.HEALTHY and policy.remedy is Remedy.NONE:
            return
        incidents = target.strike(f"xid{code}", step.at, step.config) \
            if policy.repair_on_repeat else 1
        if incidents >= 2:
            step.find(f"xid{code}", Health.FAILED, Remedy.REPAIR,
                      f"{self.name(code)} on {place(target)} again ({incidents} incidents "
                      f"within {step.config.repair_window_s / 86_400:g} d)")
        else:
            step.find(f"xid{code}", policy.health, policy.remedy,
                      f"{self.name(code)} on {place(target)}")

    def recovery(self, step: Step) -> None:
        text = recovery_text(step.signal.detail)
        policy = recovery_policy(step.signal.detail)
        target = step.target
        superseded = [rule for rule in target.findings if rule.startswith("xid")]
        step.record(f"Xid 154: recovery action {text!r}"
                    + (f", supersedes {', '.join(superseded)}" if superseded and policy else ""))
        if policy is None:
            step.find("xid154", Health.SUSPECT, Remedy.WATCH,
                      f"Xid 154 on {place(target)} states recovery action {text!r}, "
                      f"which dcops does not know")
            return
        for rule in superseded:
            step.drop(rule)
        health, remedy = policy
        if health is not Health.HEALTHY:
            step.find("xid154", health, remedy,
                      f"Xid 154 on {place(target)}: the driver requires {text!r}")

    def sympathetic(self, step: Step) -> None:
        trigger = step.target.last_trigger
        config = step.config
        previous = _PREVIOUS_RE.search(step.signal.detail)
        if trigger is not None and step.at - trigger[0] <= config.sympathetic_s:
            step.record(f"Xid 45 after Xid {trigger[1]} on the same GPU "
                        f"{step.at - trigger[0]:.0f} s earlier: sympathetic, ignored", False)
        elif previous is not None:
            step.record(f"Xid 45 caused by previous Xid {previous.group(1)}: sympathetic, "
                        "ignored", False)
        else:
            step.record("solo Xid 45")
            after = "/".join(str(x) for x in sorted(config.sympathetic_after))
            step.find("xid45", Health.SUSPECT, Remedy.WATCH,
                      f"solo {self.name(45)} on {place(step.target)} (no Xid {after} within "
                      f"{config.sympathetic_s:g} s)")

    def application(self, step: Step, code: int) -> None:
        target = step.target
        config = step.config
        while target.app and target.app[0][0] < step.at - config.app_window_s:
            target.app.popleft()
        job = step.signal.job or _unnamed_job(target, step.at, config.same_incident_s)
        seen = {key for _, key, _ in target.app}
        target.app.append((step.at, job, code))
        shown = step.signal.job or "an unnamed job"
        if job in seen:
            step.record(f"{self.name(code)} again in {shown}: same job, no escalation")
            return
        jobs = len(seen) + 1
        step.record(f"{self.name(code)} in {shown} ({jobs} job(s) on this GPU)")
        step.restart = (f"{self.name(code)} on {place(target)} in {shown}: restart the job "
                        "(application fault; hardware healthy)")
        window = f"{config.app_window_s / 3600:g} h"
        if jobs >= config.app_degraded_jobs:
            step.find("app", Health.DEGRADED, Remedy.RESET_GPU,
                      f"application-class Xids on {place(target)} in {jobs} different jobs "
                      f"within {window}")
        elif jobs >= config.app_suspect_jobs:
            step.find("app", Health.SUSPECT, Remedy.WATCH,
                      f"application-class Xids on {place(target)} in {jobs} different jobs "
                      f"within {window} (hardware suspect)")

    def nvlink(self, step: Step) -> None:
        """An NVLink error is the link's until the evidence points at one end.

        A first report makes both ends suspect/watch, with evidence on both; once both ends
        have reported, the link (cable or NVSwitch) is at fault, not a GPU: both ends are
        degraded/reboot (a reboot retrains the links and restarts the fabric manager),
        with no strike against either GPU. This GPU is blamed
        (degraded/reset the GPU) only when, within `nvlink_window_s`, its own reports name
        two or more distinct peers, or it reports the same peer (or an unknown one) twice
        or more while that peer reports no NVLink error naming it (or no peer). A blame
        after a re-check cleared an earlier blame within the repair window is failed/repair.
        A GPU already blamed stays so, without a new incident, until a re-check."""
        target = step.target
        config = step.config
        while target.links and target.links[0][0] < step.at - config.nvlink_window_s:
            target.links.popleft()
        peer = self._peer_target(step)
        own = f"{target.node}/{target.gpu}"
        peer_key = None if peer is None else f"{peer.node}/{peer.gpu}"
        target.links.append((step.at, peer_key))
        peers = {key for _, key in target.links if key is not None}
        repeats = sum(1 for _, key in target.links if key == peer_key)
        answered = peer is not None and any(
            at >= step.at - config.nvlink_window_s and key in (own, None)
            for at, key in peer.links)
        shown = peer_key or "an unknown peer"
        both = (f"NVLink errors from both ends of {own} <-> {peer_key}: the link (cable or "
                "NVSwitch) is at fault; reboot to retrain it")
        step.record(f"NVLink error on {own} to {shown}")
        if peer is not None:
            step.record(f"NVLink error reported by {own}", target=peer)
            if answered:
                self._link(step, both, peer)
            else:
                self._suspect(step, f"NVLink error on the link {own} <-> {peer_key}, "
                                    f"reported by {own}", peer)
        if len(peers) >= 2:
            self._blame(step, f"NVLink errors on {place(target)} with {len(peers)} different "
                              f"peers within {config.nvlink_window_s:g} s")
        elif repeats >= 2 and not answered:
            self._blame(step, f"{repeats} NVLink errors on {place(target)} to {shown} within "
                              f"{config.nvlink_window_s:g} s with no report from the peer")
        elif answered:
            self._link(step, both, target)
        else:
            self._suspect(step, f"NVLink error on the link {own} <-> {shown}", target)

    def _suspect(self, step: Step, cause: str, target: Target) -> None:
        """Mark `target` suspect for NVLink unless it is already blamed."""
        current = target.findings.get("nvlink")
        if current is None or current.health is Health.SUSPECT:
            step.find("nvlink", Health.SUSPECT, Remedy.WATCH, cause, target=target)

    def _link(self, step: Step, cause: str, target: Target) -> None:
        """The link between `target` and its peer failed: degraded, reboot (no strike)."""
        current = target.findings.get("nvlink")
        if current is None or current.health.rank < Health.DEGRADED.rank:
            step.find("nvlink", Health.DEGRADED, Remedy.REBOOT, cause, target=target)

    def _blame(self, step: Step, cause: str) -> None:
        target = step.target
        current = target.findings.get("nvlink")
        if current is not None and current.health.rank >= Health.DEGRADED.rank:
            return
        incidents = target.strike("nvlink", step.at, step.config)
        if incidents >= 2:
            step.find("nvlink", Health.FAILED, Remedy.REPAIR,
                      f"{cause}, blamed again after a re-check")
        else:
            step.find("nvlink", Health.DEGRADED, Remedy.RESET_GPU, cause)

    def _peer_target(self, step: Step) -> Target | None:
        raw = step.signal.peer
        if not raw:
            return None
        node, _, index = raw.rpartition("/")
        if not node or not index.isdigit():
            step.note += f" (peer {raw!r} is not 'node/gpu': treated as unknown)"
            return None
        return self._peer(node, int(index))


def _unnamed_job(target: Target, at: float, same_incident_s: float) -> str:
    """A key for a report naming no job: the previous unnamed one's within the incident."""
    for seen_at, key, _ in reversed(target.app):
        if key.startswith("?") and at - seen_at <= same_incident_s:
            return key
    return f"?{at:.3f}"
