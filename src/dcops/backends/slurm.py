"""Running the scheduler's jobs on a Slurm cluster through Slurm's commands.

`SlurmExecutor` is a `ClusterManager`: ``sbatch`` starts a job on the nodes dcops placed it
on, ``scontrol requeue`` preempts it, ``scancel`` cancels it, and `poll` reads ``squeue``
(every state while Slurm keeps the job, `MinJobAge` seconds after it ends) and, for jobs
squeue no longer knows, ``sacct`` (which needs Slurm's accounting, slurmdbd). Each change
Slurm reports becomes one `JobEvent`, whoever caused it.

Each Slurm job carries ``--comment=dcops:<job id>``, so `adopt` finds dcops's jobs again
after a restart. A preempted job waits in Slurm (pending, ``BeginTime`` two minutes on)
until the scheduler starts it again: `start` then moves it to its new placement and makes
it eligible now instead of submitting a second copy (if Slurm is still completing the
stopped run, the next `poll` that sees it pending does so).

Commands run through `dcops.backends.slurm_commands` with a timeout; a failure raises
`SlurmCommandFailed` (which command, its exit status and stderr), an absent binary, a
timeout or an unreachable slurmctld `SlurmUnavailable`.
"""

from __future__ import annotations

import logging
import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dcops.backends.slurm_commands import (
    HINT,
    CommandResult,
    Runner,
    SlurmCommandFailed,
    SlurmCommands,
    SlurmUnavailable,
    subprocess_runner,
)
from dcops.backends.slurm_output import (
    COMMENT_PREFIX,
    FINAL_PHASES,
    RAN_PHASES,
    SACCT_FORMAT,
    SINFO_FORMAT,
    SQUEUE_FORMAT,
    Phase,
    SlurmJob,
    exit_code_of_show_job,
    failure_reason,
    parse_sacct,
    parse_sinfo,
    parse_squeue,
    phase,
)
from dcops.core.clock import Clock, SystemClock
from dcops.core.errors import Conflict, DcopsError, Invalid, NotFound
from dcops.scheduling.cluster import NodeInfo
from dcops.scheduling.executor import JobEvent
from dcops.scheduling.model import Job, JobState, Placement

log = logging.getLogger(__name__)

__all__ = ["HINT", "CommandResult", "Runner", "SlurmCommandFailed", "SlurmExecutor",
           "SlurmUnavailable", "subprocess_runner", "tasks_per_node"]

@dataclass(slots=True)
class Tracked:
    """A dcops job with a Slurm job: what was last reported for it."""

    slurm_id: str
    reported: JobState | None = None
    restarts: int = 0
    slurm_state: str = ""
    """The Slurm state last seen."""
    restart: Placement | None = None
    """Where to start it again once Slurm has it pending (it was still completing)."""


class SlurmExecutor:
    """A `ClusterManager` over one Slurm cluster's commands.

    `slurm_conf` is set as ``SLURM_CONF`` for every command (None: Slurm's default,
    /etc/slurm/slurm.conf); `bin_dir` is where the commands are (None: PATH). `partition`,
    `output` (``--output``, e.g. ``/var/log/dcops/%x-%j.out``) and `extra_sbatch_args`
    go to every ``sbatch``. With `slurm_places`, Slurm chooses the nodes itself (no
    ``--nodelist``); the placement's node count is still asked for."""

    def __init__(self, *, slurm_conf: str | Path | None = None, bin_dir: str | Path | None = None,
                 env: Mapping[str, str] | None = None, partition: str | None = None,
                 output: str | None = None, extra_sbatch_args: Sequence[str] = (),
                 slurm_places: bool = False, timeout_s: float = 30.0,
                 clock: Clock | None = None, runner: Runner | None = None) -> None:
        self.commands = SlurmCommands(slurm_conf=slurm_conf, bin_dir=bin_dir, env=env,
                                      timeout_s=timeout_s, runner=runner)
        self.env = self.commands.env
        self.partition = partition
        self.output = output
        self.extra_sbatch_args = tuple(extra_sbatch_args)
        self.slurm_places = slurm_places
        self.clock = clock or SystemClock()
        self._jobs: dict[str, Tracked] = {}
        """Jobs not yet reported final, by dcops id, in submission order."""

    def __repr__(self) -> str:
        return f"SlurmExecutor(SLURM_CONF={self.env.get('SLURM_CONF')!r})"

    def slurm_id(self, job_id: str) -> str | None:
        """The Slurm job id of a dcops job not yet reported final."""
        tracked = self._jobs.get(job_id)
        return tracked.slurm_id if tracked else None

    # -- ClusterManager ------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        return parse_sinfo(self._run("sinfo", "--Node", "--noheader",
                                     f"--format={SINFO_FORMAT}"))

    def start(self, job: Job, placement: Placement) -> None:
        tracked = self._jobs.get(job.id)
        if tracked is not None:
            self._restart(job, tracked, placement)
            return
        args = self.sbatch_args(job, placement)
        answer = self._run(*args).strip()
        slurm_id = answer.split(";")[0]
        if not slurm_id.isdigit():
            raise SlurmCommandFailed(args, 0, "",
                                     problem=f"answered {answer!r}, not a job id")
        self._jobs[job.id] = Tracked(slurm_id)
        log.info("job %s submitted as Slurm job %s on %s", job.id, slurm_id,
                 ",".join(placement.node_names) or "any node")

    def preempt(self, job: Job) -> None:
        self._run("scontrol", "requeue", self._tracked(job).slurm_id)

    def cancel(self, job: Job) -> None:
        tracked = self._jobs.get(job.id)
        if tracked is None:
            log.debug("cancel %s: no Slurm job (never started here, or already ended)", job.id)
            return
        self._run("scancel", tracked.slurm_id)

    def poll(self) -> list[JobEvent]:
        if not self._jobs:
            return []
        seen = self._squeue([t.slurm_id for t in self._jobs.values()])
        missing = [t.slurm_id for t in self._jobs.values() if t.slurm_id not in seen]
        if missing:
            seen.update(self._sacct(missing))
        now = self.clock.now()
        events: list[JobEvent] = []
        for job_id, tracked in list(self._jobs.items()):
            slurm_job = seen.get(tracked.slurm_id)
            if slurm_job is None:
                events.append(JobEvent(job_id, now, JobState.FAILED,
                                       f"Slurm job {tracked.slurm_id} is gone from squeue "
                                       "and sacct (no accounting?)"))
                del self._jobs[job_id]
                continue
            events.extend(self._observe(job_id, tracked, slurm_job, now))
        return events

    # -- recovery ------------------------------------------------------------------------

    def adopt(self, job_ids: Iterable[str] | None = None) -> dict[str, str]:
        """Take over dcops jobs Slurm still has, after a restart of dcops: those it has not
        finished, or, given `job_ids` (the jobs the scheduler thinks live), those in any
        state, so that an end while dcops was down is reported by the next `poll`.

        Returns dcops job id -> Slurm job id for each newly tracked. A job running or
        ended after running counts as reported running (dcops started it); one pending
        after a requeue counts as reported requeued."""
        wanted = set(job_ids) if job_ids is not None else None
        adopted: dict[str, str] = {}
        for slurm_job in parse_squeue(self._run("squeue", "--noheader", "--states=all",
                                                f"--Format={SQUEUE_FORMAT}")).values():
            job_id = slurm_job.dcops_id
            if job_id is None or job_id in self._jobs:
                continue
            if (job_id not in wanted) if wanted is not None else (
                    slurm_job.phase in FINAL_PHASES):
                continue
            reported = JobState.RUNNING if slurm_job.phase in RAN_PHASES | {Phase.RUNNING} else None
            if reported is None and slurm_job.restarts and slurm_job.phase in {
                    Phase.PENDING, Phase.REQUEUED}:
                reported = JobState.REQUEUED
            self._jobs[job_id] = Tracked(slurm_job.slurm_id, reported, slurm_job.restarts,
                                         slurm_job.state)
            adopted[job_id] = slurm_job.slurm_id
        return adopted

    # -- the commands --------------------------------------------------------------------

    def sbatch_args(self, job: Job, placement: Placement) -> list[str]:
        """The ``sbatch`` command line for `job` on `placement` (shown before it runs)."""
        spec = job.spec
        if not spec.command:
            raise Invalid(f"job {job.id!r} has no command to run", where="slurm")
        if spec.tasks < 1:
            raise Invalid(f"job {job.id!r} needs at least one task, not {spec.tasks}")
        args = ["sbatch", "--parsable", f"--job-name={spec.name}",
                f"--comment={COMMENT_PREFIX}{job.id}", "--requeue",
                f"--ntasks={spec.tasks}", f"--cpus-per-task={spec.cpus_per_task}"]
        if placement.nodes:
            args.append(f"--nodes={len(placement.nodes)}")
            if not self.slurm_places:
                args.append(f"--nodelist={','.join(placement.node_names)}")
        per_node = tasks_per_node(spec.gpus_per_task, spec.tasks, placement)
        if per_node is not None:
            args.append(f"--ntasks-per-node={per_node}")
            if spec.gpus_per_task:
                args.append(f"--gres=gpu:{per_node * spec.gpus_per_task}")
            args.append(f"--mem={per_node * spec.memory_mb_per_task}")
        else:
            if spec.gpus_per_task:
                args.append(f"--gpus-per-task={spec.gpus_per_task}")
            per_cpu = math.ceil(spec.memory_mb_per_task / max(1, spec.cpus_per_task))
            args.append(f"--mem-per-cpu={per_cpu}")
        if self.partition:
            args.append(f"--partition={self.partition}")
        if self.output:
            args.append(f"--output={self.output}")
        args.extend(self.extra_sbatch_args)
        args.append(f"--wrap={shlex.join(spec.command)}")
        return args

    def _restart(self, job: Job, tracked: Tracked, placement: Placement) -> None:
        """Start a job Slurm still holds (requeued): on its new nodes, eligible now; or,
        while Slurm is still completing its last run, once a poll sees it pending."""
        if tracked.reported is JobState.RUNNING:
            raise Conflict(f"job {job.id!r} is already running as Slurm job "
                           f"{tracked.slurm_id}", where="slurm")
        if phase(tracked.slurm_state) is Phase.PENDING:
            self._release(job.id, tracked, placement)
        else:
            tracked.restart = placement
            log.info("job %s: Slurm job %s is %s; starting it again once pending", job.id,
                     tracked.slurm_id, tracked.slurm_state or "not seen yet")

    def _release(self, job_id: str, tracked: Tracked, placement: Placement) -> None:
        fields = [f"JobId={tracked.slurm_id}", "StartTime=now"]
        if placement.nodes and not self.slurm_places:
            fields.append(f"NodeList={','.join(placement.node_names)}")
        self._run("scontrol", "update", *fields)
        tracked.restart = None
        log.info("job %s: Slurm job %s eligible to run again", job_id, tracked.slurm_id)

    def _tracked(self, job: Job) -> Tracked:
        tracked = self._jobs.get(job.id)
        if tracked is None:
            raise NotFound("Slurm job for dcops job", job.id,
                           hint="it was not started by this executor, or has ended")
        return tracked

    def _squeue(self, slurm_ids: list[str]) -> dict[str, SlurmJob]:
        try:
            return parse_squeue(self._run("squeue", "--noheader", "--states=all",
                                          f"--jobs={','.join(slurm_ids)}",
                                          f"--Format={SQUEUE_FORMAT}"))
        except SlurmCommandFailed as exc:
            if "Invalid job id" in exc.stderr:  # every one of them has left squeue
                return {}
            raise

    def _sacct(self, slurm_ids: list[str]) -> dict[str, SlurmJob]:
        try:
            return parse_sacct(self._run("sacct", "--noheader", "--parsable2", "--allocations",
                                         f"--jobs={','.join(slurm_ids)}",
                                         f"--format={SACCT_FORMAT}"))
        except SlurmCommandFailed as exc:
            if "accounting storage is disabled" in exc.stderr:
                return {}
            raise

    def _exit_code(self, slurm_job: SlurmJob) -> SlurmJob:
        """`slurm_job` with its exit code (squeue has none: ``scontrol show job`` has);
        unchanged if that fails, so that one job's trouble loses no other job's events."""
        if slurm_job.exit_code is not None:
            return slurm_job
        try:
            text = self._run("scontrol", "show", "job", "--oneliner", slurm_job.slurm_id)
        except DcopsError as exc:
            log.warning("no exit code for Slurm job %s: %s", slurm_job.slurm_id, exc)
            return slurm_job
        code, sig = exit_code_of_show_job(text)
        return SlurmJob(slurm_job.slurm_id, slurm_job.state, slurm_job.restarts,
                        slurm_job.reason, slurm_job.comment, code, sig)

    def _observe(self, job_id: str, tracked: Tracked, slurm_job: SlurmJob,
                 now: float) -> list[JobEvent]:
        """The events between what was last reported for a job and what Slurm says now."""
        events: list[JobEvent] = []

        def report(state: JobState, reason: str = "") -> None:
            events.append(JobEvent(job_id, now, state, reason))
            tracked.reported = state

        current = slurm_job.phase
        tracked.slurm_state = slurm_job.state
        if tracked.restart is not None and current is Phase.PENDING:
            try:
                self._release(job_id, tracked, tracked.restart)
            except DcopsError as exc:  # tried again at the next poll
                log.warning("job %s: cannot start Slurm job %s again: %s", job_id,
                            tracked.slurm_id, exc)
        if slurm_job.restarts > tracked.restarts:
            tracked.restarts = slurm_job.restarts
            if tracked.reported is JobState.RUNNING:
                report(JobState.REQUEUED, f"Slurm job {slurm_job.slurm_id} requeued")
        if current in {Phase.PENDING, Phase.REQUEUED} and tracked.reported is JobState.RUNNING:
            report(JobState.REQUEUED, f"Slurm job {slurm_job.slurm_id} requeued")
        elif current is Phase.RUNNING and tracked.reported is not JobState.RUNNING:
            report(JobState.RUNNING)
        elif current in FINAL_PHASES:
            if current in RAN_PHASES and tracked.reported is not JobState.RUNNING:
                report(JobState.RUNNING)
            events.append(self._final(job_id, slurm_job, now))
            del self._jobs[job_id]
        return events

    def _final(self, job_id: str, slurm_job: SlurmJob, now: float) -> JobEvent:
        current = slurm_job.phase
        if current is Phase.COMPLETED:
            return JobEvent(job_id, now, JobState.COMPLETED)
        if current is Phase.CANCELLED:
            return JobEvent(job_id, now, JobState.CANCELLED,
                            f"Slurm job {slurm_job.slurm_id} cancelled")
        if current is Phase.PREEMPTED:  # Slurm's own preemption ended it: place it again
            return JobEvent(job_id, now, JobState.REQUEUED,
                            f"Slurm job {slurm_job.slurm_id} preempted by Slurm")
        return JobEvent(job_id, now, JobState.FAILED, failure_reason(self._exit_code(slurm_job)))

    def _run(self, command: str, *args: str) -> str:
        return self.commands.run(command, *args)


def tasks_per_node(gpus_per_task: int, tasks: int, placement: Placement) -> int | None:
    """Tasks on each node when the placement puts the same number on every node (so
    ``--gres`` and ``--mem``, which are per node, say it exactly); None otherwise."""
    if not placement.nodes:
        return None
    counts = {gpus for _, gpus in placement.nodes}
    if gpus_per_task == 0:
        per_node, rest = divmod(tasks, len(placement.nodes))
        return per_node if not rest and per_node else None
    if len(counts) != 1:
        return None
    (gpus,) = counts
    per_node, rest = divmod(gpus, gpus_per_task)
    if rest or per_node * len(placement.nodes) != tasks:
        return None
    return per_node
