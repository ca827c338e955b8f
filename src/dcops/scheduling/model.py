"""GPU jobs as the scheduler sees them: what a user asks for, where a job stands, where it
runs, and what a policy decides.

The same objects flow through the live scheduler (local or Slurm executor) and the trace
simulator, so a policy judged on a replay is the policy that runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class JobState(StrEnum):
    """A job's lifecycle: queued until placed, running, then completed or failed; a
    preempted job goes back to the queue as requeued (restarting from its last checkpoint);
    held is queued but set aside (a policy error, a quota), with the reason on the job."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    PREEMPTED = "preempted"
    REQUEUED = "requeued"
    CANCELLED = "cancelled"
    HELD = "held"


WAITING = frozenset({JobState.QUEUED, JobState.REQUEUED})
"""States in which a job waits for the scheduler to place it."""
FINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
"""States a job never leaves."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a user submits: a gang of `tasks` tasks that start together, each with
    `gpus_per_task` GPUs, CPUs and memory, for a tenant (team or project)."""

    name: str
    tenant: str = "default"
    gpus_per_task: int = 1
    tasks: int = 1
    cpus_per_task: int = 1
    memory_mb_per_task: int = 1024
    priority: int = 0
    """Higher runs first where a policy honours priorities."""
    duration_estimate_s: float | None = None
    """The user's estimate of the run time (EASY backfill uses it as the limit)."""
    checkpoint_interval_s: float | None = None
    """How often the job checkpoints; after a preemption or fault it restarts from its last
    checkpoint. None: only at preemption (the scheduler asks it to checkpoint then)."""
    preemptible: bool = True
    command: tuple[str, ...] = ()
    """What the local or Slurm executor runs (empty in simulation)."""

    @property
    def gpus(self) -> int:
        """GPUs of the whole gang."""
        return self.gpus_per_task * self.tasks


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a job runs: GPUs per node, by node name."""

    nodes: tuple[tuple[str, int], ...]

    @property
    def gpus(self) -> int:
        return sum(n for _, n in self.nodes)

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.nodes)


@dataclass(slots=True, eq=False)
class Job:
    """One job in the scheduler: its spec and where it stands.

    Times are seconds on the scheduler's clock (Unix seconds live, trace seconds in the
    simulator). `run_s` is the work done so far in wall seconds of running; `attained_s`
    the GPU-seconds of service it has received (what Tiresias orders by)."""

    id: str
    spec: JobSpec
    submit_s: float
    state: JobState = JobState.QUEUED
    seq: int = 0
    """Submission order (ties between equal submit times)."""
    start_s: float | None = None
    """When it first started."""
    end_s: float | None = None
    last_start_s: float | None = None
    """When its present (or last) run began."""
    placement: Placement | None = None
    run_s: float = 0.0
    """Useful work done, in seconds of running, up to its last stop."""
    checkpoint_s: float = 0.0
    """Work saved at its last checkpoint: where a restart resumes."""
    attained_s: float = 0.0
    """GPU-seconds received up to its last stop (running time x GPUs)."""
    preemptions: int = 0
    restarts: int = 0
    """Restarts after a fault (not a preemption)."""
    reason: str = ""
    """Why it is held, failed or was cancelled; empty otherwise."""
    duration_s: float | None = None
    """The true run time, known only in simulation: oracle policies (SJF, SRTF) read it,
    every other policy must not."""
    predicted_s: float | None = None
    """A run-time prediction made at submit time from what was known then."""
    events: list[tuple[float, str]] = field(default_factory=list, repr=False)
    """(time, what) of each change of state, for `dcops jobs show`."""

    @property
    def gpus(self) -> int:
        return self.spec.gpus

    def service_s(self, now: float) -> float:
        """GPU-seconds received by `now` (while running, including the present run)."""
        if self.state is JobState.RUNNING and self.last_start_s is not None:
            return self.attained_s + (now - self.last_start_s) * self.gpus
        return self.attained_s


@dataclass(frozen=True, slots=True)
class Tenant:
    """A team or project that submits jobs: at most `gpu_quota` GPUs at once (None: no
    cap), and a `weight` for fair share."""

    name: str
    gpu_quota: int | None = None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Start:
    """Run a queued job on `placement`."""

    job_id: str
    placement: Placement


@dataclass(frozen=True, slots=True)
class Preempt:
    """Stop a running job (it checkpoints and goes back to the queue as requeued)."""

    job_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Hold:
    """Set a queued job aside with a reason (it can never fit, its quota is spent)."""

    job_id: str
    reason: str


Decision = Start | Preempt | Hold
