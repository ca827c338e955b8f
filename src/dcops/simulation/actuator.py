"""`SimActuator`: the remediation `Actuator` over simulated nodes, on a controllable clock.

Nodes are named as the replay names them (`node_name`: n0, n1, ...). Every call that
changes a node is appended to `log` as ``(t, verb, target, detail)``: ``drain`` /
``drain_now`` (detail the reason), ``resume``, ``requeue`` (target the job), ``reset_gpu``
(detail the GPU), ``reboot``, ``recheck`` (detail ``passed`` or ``failed: cause``). A call
that changes nothing (draining a drained node, resuming one in service) is not logged, as
the Protocol's idempotence asks.

Repairs follow the trace's truth (`TracedFault.remedy`, the mildest remedy that fixes the
fault). A GPU reset takes `reset_s` (120 s by default) and repairs the faults of that GPU
whose remedy is ``reset_gpu`` (HBM3 DBE, SRAM, GSP) and which struck before the reset began;
a reboot takes `reboot_s` (600 s) and repairs every ``reset_gpu`` or ``reboot`` fault of the
node that struck before it began. Faults whose remedy is ``repair`` (a faulty GPU, host part,
cable, thermal interface, SDC, unplanned maintenance) are fixed only by time: at
`repaired_at`, the fault's onset plus its downtime. Application faults never break a node.
So `recheck` answers CHECK_FAILED while a fault is unrepaired (or the node is rebooting or
the GPU resetting) and CHECK_PASSED after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from dcops.core.clock import Clock
from dcops.core.errors import Conflict, Invalid, NotFound, Unavailable
from dcops.health.model import Remedy, Signal, SignalKind
from dcops.remediation.actuator import NodeStatus
from dcops.simulation.faulttrace import FaultTrace, TracedFault
from dcops.simulation.replay import Kernel, node_name

DEFAULT_RESET_S = 120.0
DEFAULT_REBOOT_S = 600.0

LogEntry = tuple[float, str, str, str]


class KernelClock:
    """A `Clock` reading a replay `Kernel`'s time."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def now(self) -> float:
        return self.kernel.now


@dataclass(frozen=True, slots=True)
class _Fix:
    """A reset (`gpu` set) or reboot (`gpu` None) begun at `started` and done at `done`."""

    started: float
    done: float
    gpu: int | None

    def repairs(self, item: TracedFault, at: float) -> bool:
        if self.done > at or item.at > self.started:
            return False
        if self.gpu is None:
            return item.remedy in (Remedy.RESET_GPU, Remedy.REBOOT)
        return item.remedy is Remedy.RESET_GPU and item.gpu == self.gpu


@dataclass(slots=True)
class _Node:
    drained: bool = False
    reason: str = ""
    jobs: list[str] = field(default_factory=list)
    fixes: list[_Fix] = field(default_factory=list)

    def busy(self, at: float) -> _Fix | None:
        """The reset or reboot in progress at `at`, the reboot first."""
        running = [fix for fix in self.fixes if fix.started <= at < fix.done]
        return min(running, key=lambda fix: fix.gpu is not None) if running else None


class SimActuator:
    """Node administration over `nodes` simulated nodes of `gpus_per_node` GPUs.

    `trace` says which nodes are broken and until when; `jobs` maps a job id to the nodes
    it runs on. Times come from `clock` (a `FakeClock` or a `KernelClock`), in the trace's
    seconds."""

    def __init__(self, nodes: int, gpus_per_node: int, clock: Clock, *,
                 trace: FaultTrace | None = None,
                 jobs: Mapping[str, Sequence[str]] | None = None,
                 reset_s: float = DEFAULT_RESET_S, reboot_s: float = DEFAULT_REBOOT_S) -> None:
        if nodes <= 0 or gpus_per_node <= 0 or reset_s < 0 or reboot_s < 0:
            raise Invalid(f"simulated actuator of {nodes} nodes x {gpus_per_node} GPUs, "
                          f"reset {reset_s} s, reboot {reboot_s} s",
                          hint="sizes are 1 or more, durations 0 or more")
        self.clock = clock
        self.gpus_per_node = gpus_per_node
        self.trace = trace
        self.reset_s = reset_s
        self.reboot_s = reboot_s
        self.log: list[LogEntry] = []
        self._nodes = {node_name(i): _Node() for i in range(nodes)}
        self._placed: dict[str, tuple[str, ...]] = {}
        self.pending: list[str] = []
        """Jobs requeued and not started again, in the order they were requeued."""
        for job, on in (jobs or {}).items():
            self.start_job(job, on)

    @classmethod
    def for_trace(cls, trace: FaultTrace, clock: Clock, *,
                  jobs: Mapping[str, Sequence[str]] | None = None,
                  reset_s: float = DEFAULT_RESET_S,
                  reboot_s: float = DEFAULT_REBOOT_S) -> SimActuator:
        """An actuator over the trace's cluster."""
        return cls(trace.nodes, trace.gpus_per_node, clock, trace=trace, jobs=jobs,
                   reset_s=reset_s, reboot_s=reboot_s)

    # -- the Actuator Protocol --

    def status(self, node: str) -> NodeStatus:
        state = self._node(node)
        return NodeStatus(node, state.drained, state.reason, self._down(node, state),
                          tuple(state.jobs))

    def drain(self, node: str, reason: str, *, hard: bool = False) -> None:
        state = self._node(node)
        if not state.drained:
            state.drained, state.reason = True, reason
            self._record("drain_now" if hard else "drain", node, reason)
        if hard:
            self._stop(list(state.jobs))

    def resume(self, node: str) -> None:
        state = self._node(node)
        if not state.drained:
            return
        fix = state.busy(self.clock.now())
        if fix is not None and fix.gpu is None:
            raise Conflict(f"node {node} is rebooting until {fix.done:.0f} s",
                           hint="resume after the reboot and a clean re-check")
        state.drained, state.reason = False, ""
        self._record("resume", node, "")

    def requeue(self, jobs: Sequence[str]) -> list[str]:
        return self._stop([job for job in dict.fromkeys(jobs) if job in self._placed])

    def reset_gpu(self, node: str, gpu: int) -> None:
        state = self._ready_for_fix(node, "reset_gpu")
        if not 0 <= gpu < self.gpus_per_node:
            raise Invalid(f"GPU {gpu} of {node}", hint=f"GPUs are 0-{self.gpus_per_node - 1}")
        now = self.clock.now()
        busy = state.busy(now)
        if busy is not None and busy.gpu == gpu:
            return
        state.fixes.append(_Fix(now, now + self.reset_s, gpu))
        self._record("reset_gpu", node, str(gpu))

    def reboot(self, node: str) -> None:
        state = self._ready_for_fix(node, "reboot")
        now = self.clock.now()
        busy = state.busy(now)
        if busy is not None and busy.gpu is None:
            return
        state.fixes.append(_Fix(now, now + self.reboot_s, None))
        self._record("reboot", node, "")

    # -- the simulator's side --

    def recheck(self, node: str, at: float | None = None) -> Signal:
        """Run the node's health check at `at` (default now): CHECK_FAILED (`detail` the
        cause, `gpu` the GPU at fault) while the node is rebooting, a GPU is resetting or a
        hardware fault is unrepaired; CHECK_PASSED otherwise."""
        state = self._node(node)
        t = self.clock.now() if at is None else at
        fix = state.busy(t)
        if fix is not None:
            what = "rebooting" if fix.gpu is None else f"GPU {fix.gpu} resetting"
            return self._checked(t, node, SignalKind.CHECK_FAILED, fix.gpu, what)
        broken = self._broken(node, state, t)
        if broken:
            item = broken[0]
            return self._checked(t, node, SignalKind.CHECK_FAILED, item.gpu, item.cause)
        return self._checked(t, node, SignalKind.CHECK_PASSED, None, "")

    def broken(self, node: str, at: float | None = None) -> list[TracedFault]:
        """The hardware faults of `node` not repaired at `at` (default now)."""
        t = self.clock.now() if at is None else at
        return self._broken(node, self._node(node), t)

    def start_job(self, job: str, nodes: Iterable[str]) -> None:
        """Run `job` on `nodes` (a pending job starts again; the nodes must exist)."""
        on = tuple(nodes)
        for node in on:
            self._node(node).jobs.append(job)
        if job in self.pending:
            self.pending.remove(job)
        self._placed[job] = on

    def end_job(self, job: str) -> None:
        """The job completed: off its nodes and no longer requeueable."""
        for node in self._placed.pop(job, ()):
            self._nodes[node].jobs.remove(job)

    def actions(self, verb: str | None = None) -> list[LogEntry]:
        """The log, or its entries of one verb."""
        return [entry for entry in self.log if verb is None or entry[1] == verb]

    # -- internals --

    def _node(self, node: str) -> _Node:
        try:
            return self._nodes[node]
        except KeyError:
            raise NotFound("node", node, hint="simulated nodes are n0, n1, ...") from None

    def _ready_for_fix(self, node: str, verb: str) -> _Node:
        state = self._node(node)
        if not state.drained:
            raise Conflict(f"{verb} {node}: the node is not drained",
                           hint="drain it first")
        if state.jobs:
            raise Conflict(f"{verb} {node}: jobs {', '.join(state.jobs)} still run on it",
                           hint="wait for them to drain, or drain hard")
        fix = state.busy(self.clock.now())
        if fix is not None and fix.gpu is None and verb != "reboot":
            raise Unavailable(f"{verb} {node}: the node is rebooting until {fix.done:.0f} s",
                              hint="retry after the reboot")
        return state

    def _stop(self, jobs: list[str]) -> list[str]:
        for job in jobs:
            self.end_job(job)
            self.pending.append(job)
            self._record("requeue", job, "")
        return jobs

    def _broken(self, node: str, state: _Node, at: float) -> list[TracedFault]:
        if self.trace is None:
            return []
        return [item for item in self.trace.broken(node, at)
                if not any(fix.repairs(item, at) for fix in state.fixes)]

    def _down(self, node: str, state: _Node) -> bool:
        """Rebooting, or silent because of an unrepaired fault that stops its reports."""
        now = self.clock.now()
        fix = state.busy(now)
        if fix is not None and fix.gpu is None:
            return True
        return any(signal.kind is SignalKind.UNREACHABLE
                   for item in self._broken(node, state, now) for signal in item.signals)

    def _checked(self, at: float, node: str, kind: SignalKind, gpu: int | None,
                 detail: str) -> Signal:
        outcome = "passed" if kind is SignalKind.CHECK_PASSED else f"failed: {detail}"
        self.log.append((at, "recheck", node, outcome))
        return Signal(at, node, kind, gpu=gpu, detail=detail, source="recheck")

    def _record(self, verb: str, target: str, detail: str) -> None:
        self.log.append((self.clock.now(), verb, target, detail))
