"""Node administration on a Slurm cluster for health remediation: the `Actuator` over
``sinfo``, ``squeue`` and ``scontrol``.

Every action reads the node or the jobs first and only then acts, so a call retried after
a timeout never acts twice: draining a node already drained with the same reason runs no
command, resuming a node in service runs none, and only jobs Slurm has RUNNING are
requeued. Slurm resets no GPU; `reset_command` says how (none by default: resetting a GPU
is site-specific). Rebooting defaults to Slurm's own ``scontrol reboot``, which needs a
``RebootProgram`` in slurm.conf.

Commands run through `dcops.backends.slurm_commands`: an unreachable or slow slurmctld is
`Unavailable` (retry later), a refusal a `SlurmCommandFailed` with Slurm's words.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dcops.backends.slurm_commands import Runner, SlurmCommandFailed, SlurmCommands
from dcops.backends.slurm_output import SQUEUE_FORMAT, Phase, SlurmJob, parse_squeue
from dcops.core.errors import Invalid, NotFound
from dcops.remediation.actuator import NodeStatus

log = logging.getLogger(__name__)

NODE_FORMAT = "NodeList:|,StateComplete:|,Reason:"
"""``sinfo --Format``: name, every state flag (``idle+drain``), the reason (free text last)."""
DRAIN_STATES = frozenset({"drain", "draining", "drained", "fail", "failing"})
DOWN_STATES = frozenset({"down", "not_responding", "no_respond"})
REBOOT_STATES = frozenset({"reboot_requested", "reboot_issued", "reboot", "reboot^"})
DEFAULT_REBOOT = ("scontrol", "reboot", "ASAP", "nextstate=resume",
                  "reason={reason}", "{node}")
"""Slurm's own reboot: once the node is idle, through slurm.conf's ``RebootProgram``;
Slurm returns the node to service when its slurmd registers again."""
NOT_FOUND_HINT = "`sinfo -N` lists Slurm's nodes"
SLURM_COMMANDS = frozenset({"scontrol", "sinfo", "squeue", "sbatch", "scancel"})


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node's state flags as ``sinfo``'s StateComplete prints them, and its reason."""

    name: str
    flags: frozenset[str]
    reason: str

    @property
    def drained(self) -> bool:
        return bool(self.flags & DRAIN_STATES)

    @property
    def down(self) -> bool:
        return bool(self.flags & DOWN_STATES)

    @property
    def rebooting(self) -> bool:
        return bool(self.flags & REBOOT_STATES)


def parse_node_state(text: str, node: str) -> NodeState | None:
    """`node`'s line of ``sinfo --Node --noheader --Format=NODE_FORMAT``; None if absent."""
    for line in text.splitlines():
        fields = line.split("|", 2)
        if len(fields) < 3 or fields[0].strip() != node:
            continue
        flags = frozenset(f for f in fields[1].strip().lower().rstrip("*~#!%$@^-").split("+")
                          if f)
        if fields[1].strip().endswith("*"):
            flags |= {"not_responding"}
        reason = fields[2].strip()
        return NodeState(node, flags, "" if reason in {"none", "None", "(null)"} else reason)
    return None


class SlurmActuator:
    """An `Actuator` over one Slurm cluster's commands.

    `slurm_conf`, `bin_dir`, `env`, `timeout_s` and `runner` are as for `SlurmExecutor` (or
    pass its `commands` to share them). `reset_command` and `reboot_command` are command
    lines with ``{node}``, ``{gpu}`` and ``{reason}`` filled in, e.g.
    ``("ssh", "{node}", "nvidia-smi", "--gpu-reset", "-i", "{gpu}")``; a first word
    ``scontrol`` (or another Slurm command) is taken from `bin_dir`."""

    def __init__(self, *, slurm_conf: str | Path | None = None,
                 bin_dir: str | Path | None = None, env: Mapping[str, str] | None = None,
                 timeout_s: float = 30.0, runner: Runner | None = None,
                 commands: SlurmCommands | None = None,
                 reset_command: Sequence[str] | None = None,
                 reboot_command: Sequence[str] | None = DEFAULT_REBOOT,
                 reboot_reason: str = "dcops: reboot") -> None:
        self.commands = commands or SlurmCommands(slurm_conf=slurm_conf, bin_dir=bin_dir,
                                                  env=env, timeout_s=timeout_s, runner=runner)
        self.reset_command = tuple(reset_command) if reset_command else None
        self.reboot_command = tuple(reboot_command) if reboot_command else None
        self.reboot_reason = reboot_reason

    def __repr__(self) -> str:
        return f"SlurmActuator(SLURM_CONF={self.commands.env.get('SLURM_CONF')!r})"

    # -- Actuator ------------------------------------------------------------------------

    def status(self, node: str) -> NodeStatus:
        state = self._node(node)
        jobs = self._running_on(node)
        return NodeStatus(name=node, drained=state.drained,
                          reason=state.reason if state.drained else "", down=state.down,
                          jobs=tuple(job.dcops_id or job.slurm_id for job in jobs))

    def drain(self, node: str, reason: str, *, hard: bool = False) -> None:
        if not reason.strip():
            raise Invalid("draining a node needs a reason (Slurm shows it in sinfo -R)",
                          where="slurm")
        state = self._node(node)
        if state.drained and state.reason == reason:
            log.info("node %s already drained (%s): nothing to do", node, reason)
        else:
            self._update_node(node, "State=DRAIN", f"Reason={reason}")
            log.info("node %s drained: %s", node, reason)
        if hard:
            running = [job.slurm_id for job in self._running_on(node)]
            if running:
                self._requeue(running)
                log.info("node %s: requeued Slurm jobs %s", node, ",".join(running))

    def resume(self, node: str) -> None:
        state = self._node(node)
        if not (state.drained or state.down):
            log.info("node %s is in service: nothing to resume", node)
            return
        self._update_node(node, "State=RESUME")
        log.info("node %s resumed (was %s)", node, "+".join(sorted(state.flags)))

    def requeue(self, jobs: Sequence[str]) -> list[str]:
        if not jobs:
            return []
        known = self._all_jobs()
        running: list[tuple[str, SlurmJob]] = []
        for wanted in jobs:
            job = known.get(wanted)
            if job is None:
                log.info("requeue %s: Slurm has no such job (ended long ago?)", wanted)
            elif job.phase is not Phase.RUNNING:
                log.info("requeue %s: Slurm job %s is %s, left alone", wanted, job.slurm_id,
                         job.state)
            else:
                running.append((wanted, job))
        if running:
            self._requeue([job.slurm_id for _, job in running])
        return [wanted for wanted, _ in running]

    def reset_gpu(self, node: str, gpu: int) -> None:
        if self.reset_command is None:
            raise Invalid("GPU reset needs `reset_command` configured", where="slurm",
                          hint="e.g. ssh {node} nvidia-smi --gpu-reset -i {gpu}; Slurm "
                               "cannot reset a GPU itself")
        self._node(node)  # NotFound before anything runs
        self._run_configured(self.reset_command, node=node, gpu=str(gpu))
        log.info("node %s: GPU %d reset", node, gpu)

    def reboot(self, node: str) -> None:
        if self.reboot_command is None:
            raise Invalid("reboot needs `reboot_command` configured", where="slurm")
        state = self._node(node)
        if state.rebooting:
            log.info("node %s: a reboot is already under way", node)
            return
        self._run_configured(self.reboot_command, node=node)
        log.info("node %s: reboot requested", node)

    # -- the commands --------------------------------------------------------------------

    def _node(self, node: str) -> NodeState:
        state = parse_node_state(self.commands.run(
            "sinfo", "--Node", "--noheader", f"--nodes={node}", f"--Format={NODE_FORMAT}"),
            node)
        if state is None:
            raise NotFound("node", node, hint=NOT_FOUND_HINT)
        return state

    def _running_on(self, node: str) -> list[SlurmJob]:
        try:
            text = self.commands.run("squeue", "--noheader", "--states=RUNNING",
                                     f"--nodelist={node}", f"--Format={SQUEUE_FORMAT}")
        except SlurmCommandFailed as exc:
            if "Invalid node name" in exc.stderr:
                raise NotFound("node", node, hint=NOT_FOUND_HINT) from exc
            raise
        return list(parse_squeue(text).values())

    def _all_jobs(self) -> dict[str, SlurmJob]:
        """Every job Slurm still has, by Slurm id and by dcops id (the comment's)."""
        found: dict[str, SlurmJob] = {}
        text = self.commands.run("squeue", "--noheader", "--states=all",
                                 f"--Format={SQUEUE_FORMAT}")
        for job in parse_squeue(text).values():
            found[job.slurm_id] = job
            if job.dcops_id:
                found.setdefault(job.dcops_id, job)
        return found

    def _requeue(self, slurm_ids: Sequence[str]) -> None:
        self.commands.run("scontrol", "requeue", ",".join(slurm_ids))

    def _update_node(self, node: str, *fields: str) -> None:
        try:
            self.commands.run("scontrol", "update", f"NodeName={node}", *fields)
        except SlurmCommandFailed as exc:
            if "Invalid node name" in exc.stderr:
                raise NotFound("node", node, hint=NOT_FOUND_HINT) from exc
            raise

    def _run_configured(self, template: Sequence[str], *, node: str, gpu: str = "") -> None:
        """A configured command line with ``{node}``, ``{gpu}`` and ``{reason}`` filled in;
        Slurm's own commands from `bin_dir`."""
        argv = [word.format(node=node, gpu=gpu, reason=self.reboot_reason)
                for word in template]
        if argv[0] in SLURM_COMMANDS:
            argv = self.commands.argv(argv[0], *argv[1:])
        log.debug("node %s: running %s", node, shlex.join(argv))
        if Path(argv[0]).name in SLURM_COMMANDS:
            self.commands.run_argv(argv)
        else:
            self.commands.run_argv(argv, reach=node, hint=f"is {node} reachable, and does "
                                   f"`{shlex.join(argv)}` work there by hand?")
