"""The local executor: jobs as processes on this machine, the embedded `ClusterManager`.

The machine is offered to the scheduler as `nodes` logical nodes of `gpus_per_node` GPUs
each (one node named ``local`` by default; ``local-0``, ``local-1``, ... for more), the
GPUs of node i being devices ``i*gpus_per_node ...`` of this machine. A job's command runs
in a process group of its own with ``CUDA_VISIBLE_DEVICES`` set to the devices it was
given, ``DCOPS_JOB_ID`` and ``DCOPS_JOB_DIR`` (a directory of its own to checkpoint in),
its output in ``<jobs dir>/<id>/output.log``.

Cancelling sends SIGTERM to the group and SIGKILL after `grace_s`; preempting sends
SIGTERM only (the job is expected to checkpoint and exit; it is killed if it has not
after `grace_s`). Either way the job's GPUs are free to the scheduler at once, so a
stopping process may overlap briefly with the next job on its devices. Nothing is
waited on while the scheduler's lock is held: `poll` reaps and escalates.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dcops.core.clock import Clock, SystemClock
from dcops.core.errors import Invalid
from dcops.scheduling.cluster import NodeInfo
from dcops.scheduling.executor import JobEvent
from dcops.scheduling.model import Job, JobState, Placement

log = logging.getLogger(__name__)

LOG_NAME = "output.log"


@dataclass(slots=True)
class _Process:
    """One run of a job: its process group, the devices it holds, and, once told to
    stop, why ("cancel" or "preempt") and when it is killed if still there."""

    job_id: str
    proc: subprocess.Popen[bytes]
    devices: dict[str, list[int]] = field(default_factory=dict)
    stopping: str = ""
    kill_at: float | None = None


class LocalExecutor:
    """Runs each job's command as a process group on this machine."""

    def __init__(self, jobs_dir: Path, *, nodes: int = 1, gpus_per_node: int = 8,
                 workdir: Path | None = None, grace_s: float = 10.0,
                 clock: Clock | None = None, env: Mapping[str, str] | None = None) -> None:
        if nodes < 1 or gpus_per_node < 0:
            raise Invalid(f"the local executor needs 1 or more nodes of 0 or more GPUs, not "
                          f"{nodes} x {gpus_per_node}", where="scheduling.local")
        self.jobs_dir = jobs_dir
        self.gpus_per_node = gpus_per_node
        self.workdir = workdir
        self.grace_s = grace_s
        self.clock = clock or SystemClock()
        self.env = dict(os.environ if env is None else env)
        self._nodes = local_nodes(nodes, gpus_per_node)
        names = [n.name for n in self._nodes]
        self._first_device = {name: i * gpus_per_node for i, name in enumerate(names)}
        self._free = {name: set(range(gpus_per_node)) for name in names}
        self._running: dict[str, _Process] = {}
        self._stopping: list[_Process] = []
        self._events: list[JobEvent] = []
        self._lock = threading.Lock()

    # -- ClusterManager ---------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        return list(self._nodes)

    def check(self, job: Job) -> None:
        """A local job must say what to run."""
        if not job.spec.command:
            raise Invalid("a job run by the local executor needs a command",
                          where="command", hint="e.g. dcops jobs submit -- python train.py")

    def start(self, job: Job, placement: Placement) -> None:
        """Spawn the job's command; a command that cannot start becomes a FAILED event
        at the next poll, never an exception in the scheduler."""
        with self._lock:
            try:
                devices = self._take(placement)
            except Invalid as exc:  # the scheduler's accounting and ours disagree
                self._events.append(JobEvent(job.id, self.clock.now(), JobState.FAILED,
                                             f"cannot start: {exc}"))
                return
            visible = [str(self._first_device[node] + i)
                       for node, taken in devices.items() for i in taken]
            job_dir = self.jobs_dir / job.id
            job_dir.mkdir(parents=True, exist_ok=True)
            env = dict(self.env, CUDA_VISIBLE_DEVICES=",".join(visible),
                       DCOPS_JOB_ID=job.id, DCOPS_JOB_NAME=job.spec.name,
                       DCOPS_JOB_TENANT=job.spec.tenant, DCOPS_JOB_DIR=str(job_dir),
                       DCOPS_JOB_NODES=",".join(f"{n}:{g}" for n, g in placement.nodes),
                       DCOPS_JOB_RESTARTS=str(job.preemptions + job.restarts))
            with (job_dir / LOG_NAME).open("ab") as out:
                out.write(f"# dcops: job {job.id} starting at {self.clock.now():.3f} "
                          f"on devices [{','.join(visible)}]\n".encode())
                out.flush()
                try:
                    proc = subprocess.Popen(list(job.spec.command), stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT, env=env,
                                            cwd=self.workdir, start_new_session=True)
                except (OSError, ValueError) as exc:
                    self._give_back(devices)
                    reason = f"cannot start {job.spec.command[0]!r}: {exc}"
                    out.write(f"# dcops: {reason}\n".encode())
                    self._events.append(JobEvent(job.id, self.clock.now(), JobState.FAILED,
                                                 reason))
                    return
            self._running[job.id] = _Process(job.id, proc, devices)
            log.info("job %s started as pid %d on devices %s", job.id, proc.pid, visible)

    def preempt(self, job: Job) -> None:
        self._stop(job.id, "preempt", signal.SIGTERM)

    def cancel(self, job: Job) -> None:
        self._stop(job.id, "cancel", signal.SIGTERM)

    def poll(self) -> list[JobEvent]:
        """Reap exited processes (COMPLETED on exit 0, FAILED otherwise) and kill those
        that outlived their grace period."""
        with self._lock:
            events, self._events = self._events, []
            for job_id, run in list(self._running.items()):
                code = run.proc.poll()
                if code is None:
                    continue
                del self._running[job_id]
                self._give_back(run.devices)
                events.append(self._ended(run, code))
            now = time.monotonic()
            for run in list(self._stopping):
                if run.proc.poll() is not None:
                    self._stopping.remove(run)
                elif run.kill_at is not None and now >= run.kill_at:
                    log.warning("job %s did not stop within %.0fs of SIGTERM; killing it",
                                run.job_id, self.grace_s)
                    _signal(run.proc, signal.SIGKILL)
                    run.kill_at = None
            return events

    # -- the rest ---------------------------------------------------------------------

    def log_path(self, job_id: str) -> Path:
        return self.jobs_dir / job_id / LOG_NAME

    def pid(self, job_id: str) -> int | None:
        """The process id of a running job (its process group id too)."""
        with self._lock:
            run = self._running.get(job_id)
            return run.proc.pid if run is not None else None

    def close(self) -> None:
        """Stop every job (SIGTERM, SIGKILL after the grace period) and wait for them:
        the control plane is going away."""
        with self._lock:
            for job_id in list(self._running):
                self._stop_locked(job_id, "shutdown", signal.SIGTERM)
            runs = list(self._stopping)
        deadline = time.monotonic() + self.grace_s
        for run in runs:
            try:
                run.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(run.proc, signal.SIGKILL)
                run.proc.wait()
        with self._lock:
            self._stopping.clear()

    def _stop(self, job_id: str, why: str, sig: signal.Signals) -> None:
        with self._lock:
            self._stop_locked(job_id, why, sig)

    def _stop_locked(self, job_id: str, why: str, sig: signal.Signals) -> None:
        run = self._running.pop(job_id, None)
        if run is None:
            return
        self._give_back(run.devices)
        run.stopping = why
        run.kill_at = time.monotonic() + self.grace_s
        _signal(run.proc, sig)
        self._stopping.append(run)
        log.info("job %s (pid %d): %s, sent %s", job_id, run.proc.pid, why, sig.name)

    def _ended(self, run: _Process, code: int) -> JobEvent:
        now = self.clock.now()
        if code == 0:
            return JobEvent(run.job_id, now, JobState.COMPLETED)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return JobEvent(run.job_id, now, JobState.FAILED, f"killed by signal {name}")
        return JobEvent(run.job_id, now, JobState.FAILED, f"exit code {code}")

    def _take(self, placement: Placement) -> dict[str, list[int]]:
        """The lowest free devices of each node of `placement`."""
        taken: dict[str, list[int]] = {}
        for node, gpus in placement.nodes:
            free = self._free.get(node)
            if free is None or len(free) < gpus:
                self._give_back(taken)
                raise Invalid(f"node {node!r} has {len(free or ())} local GPUs free, "
                              f"not {gpus}")
            chosen = sorted(free)[:gpus]
            free.difference_update(chosen)
            taken[node] = chosen
        return taken

    def _give_back(self, devices: Mapping[str, list[int]]) -> None:
        for node, taken in devices.items():
            self._free[node].update(taken)


def local_nodes(nodes: int, gpus_per_node: int) -> list[NodeInfo]:
    """The logical nodes this machine is offered as: ``local``, or ``local-0`` ..."""
    names = ["local"] if nodes == 1 else [f"local-{i}" for i in range(nodes)]
    return [NodeInfo(name, gpus=gpus_per_node, cpus=os.cpu_count() or 1) for name in names]


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the job's whole process group (it leads one of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
