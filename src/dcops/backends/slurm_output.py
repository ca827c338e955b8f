"""Reading what Slurm's commands print: ``squeue``, ``sacct``, ``scontrol show job`` and
``sinfo`` in machine-readable formats, and Slurm job states in dcops's terms.

Pure functions over text, so every parsing edge case is tested on recorded output. The
formats are the ones `dcops.backends.slurm` asks for: ``|``-separated fields with the one
free-text field (comment, reason) last, so a ``|`` inside it cannot shift the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from dcops.scheduling.cluster import NodeInfo

SQUEUE_FORMAT = "JobID:|,State:|,RestartCnt:|,Reason:|,Comment:"
"""``squeue --Format``: a size-less field with a suffix prints unpadded, suffix after."""
SACCT_FORMAT = "JobIDRaw,State,ExitCode,Reason"
SINFO_FORMAT = "%N|%c|%m|%G|%T|%E"
"""``sinfo --Node --format``: name, CPUs, memory MB, Gres, long state, reason."""

COMMENT_PREFIX = "dcops:"
"""A Slurm job's ``--comment`` is this and the dcops job id: how jobs are found again."""


class Phase(StrEnum):
    """Where a Slurm job state puts a job, as far as the scheduler cares."""

    PENDING = "pending"
    RUNNING = "running"
    REQUEUED = "requeued"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"
    OTHER = "other"
    """A passing or administrative state (completing, suspended, ...): nothing to report."""


PHASES: dict[str, Phase] = {
    "PENDING": Phase.PENDING, "CONFIGURING": Phase.PENDING, "REQUEUE_HOLD": Phase.REQUEUED,
    "REQUEUED": Phase.REQUEUED, "REQUEUE_FED": Phase.REQUEUED,
    "RUNNING": Phase.RUNNING,
    "COMPLETED": Phase.COMPLETED,
    "FAILED": Phase.FAILED, "TIMEOUT": Phase.FAILED, "NODE_FAIL": Phase.FAILED,
    "OUT_OF_MEMORY": Phase.FAILED, "BOOT_FAIL": Phase.FAILED, "DEADLINE": Phase.FAILED,
    "CANCELLED": Phase.CANCELLED,
    "PREEMPTED": Phase.PREEMPTED,
}
"""Slurm's job states (``squeue``'s %T, ``sacct``'s State) by phase; any other is OTHER."""

FINAL_PHASES = frozenset({Phase.COMPLETED, Phase.FAILED, Phase.CANCELLED, Phase.PREEMPTED})
RAN_PHASES = frozenset({Phase.COMPLETED, Phase.FAILED})
"""Final phases that mean the job ran (it is reported running first if never seen so)."""


def phase(state: str) -> Phase:
    """The phase of a Slurm state; ``sacct`` writes ``CANCELLED by 0``, hence the split."""
    words = state.split()
    return PHASES.get(words[0].upper(), Phase.OTHER) if words else Phase.OTHER


@dataclass(frozen=True, slots=True)
class SlurmJob:
    """One Slurm job as ``squeue`` or ``sacct`` reports it."""

    slurm_id: str
    state: str
    restarts: int = 0
    reason: str = ""
    comment: str = ""
    exit_code: int | None = None
    signal: int | None = None

    @property
    def phase(self) -> Phase:
        return phase(self.state)

    @property
    def dcops_id(self) -> str | None:
        """The dcops job id from the comment, None for a job dcops did not submit."""
        if self.comment.startswith(COMMENT_PREFIX):
            return self.comment[len(COMMENT_PREFIX):]
        return None


def parse_squeue(text: str) -> dict[str, SlurmJob]:
    """``squeue --noheader --Format=SQUEUE_FORMAT``, by Slurm job id."""
    jobs: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|", 4)
        if len(fields) < 5:
            continue  # not a job line (a warning squeue printed on stdout)
        slurm_id, state, restarts, reason, comment = (f.strip() for f in fields)
        jobs[slurm_id] = SlurmJob(slurm_id, state, _int(restarts), _none(reason),
                                  _none(comment))
    return jobs


def parse_sacct(text: str) -> dict[str, SlurmJob]:
    """``sacct --noheader --parsable2 --allocations --format=SACCT_FORMAT``, by job id.

    A job requeued and run again appears once per run with ``--duplicates``; without it
    only its latest run, which is what is kept (the last line for an id wins)."""
    jobs: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        fields = line.split("|", 3)
        if len(fields) < 4 or not fields[0].strip():
            continue
        slurm_id, state, exit_code, reason = (f.strip() for f in fields)
        code, sig = parse_exit_code(exit_code)
        jobs[slurm_id] = SlurmJob(slurm_id, state, reason=_none(reason), exit_code=code,
                                  signal=sig)
    return jobs


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """Slurm's ``EXIT:SIGNAL`` (``3:0``, ``0:15``); (None, None) when absent or garbled."""
    code, _, sig = text.partition(":")
    if not code.strip().isdigit():
        return None, None
    return int(code), int(sig) if sig.strip().isdigit() else 0


_EXIT_CODE = re.compile(r"(?:^|\s)ExitCode=(\S+)")


def exit_code_of_show_job(text: str) -> tuple[int | None, int | None]:
    """The ``ExitCode=`` of one ``scontrol show job --oneliner`` record."""
    found = _EXIT_CODE.search(text)
    return parse_exit_code(found.group(1)) if found else (None, None)


def failure_reason(job: SlurmJob) -> str:
    """Why a job failed, in words: its Slurm state, exit code or signal, Slurm's reason."""
    state = job.state.split()[0] if job.state else "FAILED"
    details = []
    if job.signal:
        details.append(f"killed by signal {job.signal}")
    elif job.exit_code is not None:
        details.append(f"exit code {job.exit_code}")
    if job.reason and job.reason not in {"NonZeroExitCode", state}:
        details.append(job.reason)
    head = f"Slurm job {job.slurm_id} {state}"
    return f"{head}: {', '.join(details)}" if details else head


# -- nodes ------------------------------------------------------------------------------

SCHEDULABLE_STATES = frozenset({"idle", "mixed", "allocated", "completing", "planned"})
"""Node states (``sinfo``'s %T without its flag characters) that take new work; drained,
draining, down, fail, maint, reserved, unknown and the rest do not."""
NOT_RESPONDING = "*"
_GPU_GRES = re.compile(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)")
_STATE_FLAGS = re.compile(r"[^a-z_]+$")


def gres_gpus(gres: str) -> int:
    """GPUs in a node's Gres: ``gpu:2``, ``gpu:a100:8(S:0-1)``, ``gpu:a:4,gpu:b:4``,
    ``gpu:2,shard:8``; 0 for ``(null)`` or no gpu entry."""
    return sum(int(n) for n in _GPU_GRES.findall(gres))


def parse_sinfo(text: str) -> list[NodeInfo]:
    """``sinfo --Node --noheader --format=SINFO_FORMAT`` as NodeInfo, one per node (sinfo
    prints a node once per partition it is in), in sinfo's order."""
    nodes: dict[str, NodeInfo] = {}
    for line in text.splitlines():
        fields = line.split("|", 5)
        if len(fields) < 6 or not fields[0].strip():
            continue
        name, cpus, memory, gres, state, reason = (f.strip() for f in fields)
        if name in nodes:
            continue
        base = _STATE_FLAGS.sub("", state.lower())
        schedulable = base in SCHEDULABLE_STATES and NOT_RESPONDING not in state
        why = _none(reason)
        if not why and not schedulable:
            why = "not responding" if NOT_RESPONDING in state else base
        nodes[name] = NodeInfo(name=name, gpus=gres_gpus(gres), cpus=_int(cpus),
                               memory_mb=_int(memory), schedulable=schedulable, reason=why)
    return list(nodes.values())


def _int(text: str) -> int:
    digits = re.match(r"\d+", text.strip())
    return int(digits.group()) if digits else 0


def _none(text: str) -> str:
    """Slurm's empty: ``None``, ``none``, ``(null)`` and ``N/A`` read as ''."""
    return "" if text in {"None", "none", "(null)", "N/A"} else text
