"""Policy replay: the exact diagnosis and remediation code, run over a fault trace in the
simulator, scored against the trace's truth and in goodput.

`replay` feeds every signal of a `FaultTrace` (in time order, each seen `telemetry_delay_s`
after it happened, as the collection interval delays it) to the live `Diagnoser` and
`Remediator`, acting on a `SimActuator` on a `FakeClock`: drains, requeues, resets,
reboots and re-checks happen in simulated time, with the configured modes and guardrails.
Operators approve what waits for them `approve_s` later, and a technician returns a node
left for repair at the trace's repair time. One large job runs on every node; a drain
that stops it requeues it, and it starts again on the nodes in service.

The result (`ReplayResult`) counts drains of broken nodes (true) and of sound ones
(false), the most nodes out at once against the budget, requeues, pages and missed faults,
and carries each item's `Response` for the goodput model (`DcopsResponder`).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dcops.core.clock import FakeClock
from dcops.health.diagnose import Diagnoser
from dcops.health.model import Signal
from dcops.remediation.engine import Remediator, Retry
from dcops.remediation.guardrails import Guardrails, GuardrailSettings
from dcops.remediation.model import ActionKind, Mode, StepState
from dcops.remediation.policy import DEFAULT_MODES, RemediationPolicy
from dcops.remediation.ports import RecordingNotifier
from dcops.remediation.service import RemediationService
from dcops.remediation.store import MemoryRemediationStore
from dcops.simulation.actuator import SimActuator
from dcops.simulation.faulttrace import FaultTrace, TracedFault
from dcops.simulation.goodput import ManualResponder, Response

JOB = "train"
DRAINS = frozenset({"drain", "drain_now"})
MATCH_S = 6 * 3600.0
"""How long after a fault's onset a drain of its node still counts as its response."""


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    """How the replay runs: the policy's modes and guardrails, how late telemetry shows a
    signal, how long an action takes to carry out (measured on a real Slurm: well under a
    second; 5 s stated here), how soon an operator approves, and how often waiting plans
    are advanced."""

    modes: Mapping[ActionKind, Mode] = field(default_factory=lambda: dict(DEFAULT_MODES))
    guardrails: GuardrailSettings = field(default_factory=GuardrailSettings)
    telemetry_delay_s: float = 15.0
    action_s: float = 5.0
    approve_s: float = 900.0
    tick_s: float = 30.0
    reset_s: float = 120.0
    reboot_s: float = 600.0

    def to_dict(self) -> dict[str, Any]:
        return {"modes": {k.value: v.value for k, v in self.modes.items()},
                "guardrails": {name: getattr(self.guardrails, name)
                               for name in GuardrailSettings.__dataclass_fields__},
                "telemetry_delay_s": self.telemetry_delay_s, "action_s": self.action_s,
                "approve_s": self.approve_s, "tick_s": self.tick_s,
                "reset_s": self.reset_s, "reboot_s": self.reboot_s}


@dataclass
class ReplayResult:
    """What the policy did over the trace, scored against its truth."""

    faults: int = 0
    hardware_faults: int = 0
    true_drains: int = 0
    false_drains: int = 0
    missed: int = 0
    """Hardware faults whose node dcops never drained."""
    requeues: int = 0
    resets: int = 0
    reboots: int = 0
    resumes: int = 0
    pages: int = 0
    notifications: int = 0
    max_out: int = 0
    budget: int = 0
    plans: int = 0
    blocked_steps: int = 0
    wall_s: float = 0.0
    responses: dict[int, Response] = field(default_factory=dict, repr=False)
    """Each trace item's response, by its index in the trace."""

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__
                if name != "responses"}


def replay(trace: FaultTrace, settings: ReplaySettings | None = None) -> ReplayResult:
    """Run the live diagnosis and remediation over `trace` (see the module docstring)."""
    settings = settings or ReplaySettings()
    started = time.perf_counter()
    run = _Replay(trace, settings)
    run.run()
    result = run.score()
    result.wall_s = time.perf_counter() - started
    return result


class DcopsResponder:
    """The goodput model's `Responder` for dcops: each item's response as the replay of the
    real policy found it (a fault dcops missed falls back on the manual response)."""

    def __init__(self, settings: ReplaySettings | None = None,
                 fallback: ManualResponder | None = None) -> None:
        self.settings = settings or ReplaySettings()
        self.fallback = fallback or ManualResponder()
        self.result: ReplayResult | None = None
        self._index: dict[int, int] = {}

    def respond(self, item: TracedFault, trace: FaultTrace) -> Response:
        if self.result is None:
            self.result = replay(trace, self.settings)
            self._index = {id(it): i for i, it in enumerate(trace.items)}
        found = self.result.responses.get(self._index[id(item)])
        if found is not None:
            return found
        return self.fallback.respond(item, trace)


class _Rechecker:
    def __init__(self, actuator: SimActuator) -> None:
        self.actuator = actuator

    def recheck(self, node: str, gpu: int | None, now: float) -> Signal:
        return self.actuator.recheck(node, now)


class _Replay:
    def __init__(self, trace: FaultTrace, settings: ReplaySettings) -> None:
        self.trace = trace
        self.settings = settings
        self.clock = FakeClock(0.0)
        self.actuator = SimActuator.for_trace(trace, self.clock, reset_s=settings.reset_s,
                                              reboot_s=settings.reboot_s)
        self.nodes = [f"n{i}" for i in range(trace.nodes)]
        self.actuator.start_job(JOB, self.nodes)
        self.notifier = RecordingNotifier()
        self.store = MemoryRemediationStore()
        self.remediator = Remediator(
            self.store, self.actuator, clock=self.clock, fleet_nodes=lambda: trace.nodes,
            policy=RemediationPolicy(dict(settings.modes)),
            guardrails=Guardrails(settings.guardrails), notifier=self.notifier,
            rechecker=_Rechecker(self.actuator),
            retry=Retry(recheck_interval_s=60.0, recheck_attempts=30, reconcile_s=300.0))
        self.service = RemediationService(Diagnoser(), self.remediator)
        self.remediator.listen(self.service.feedback)
        self.max_out = 0

    def run(self) -> None:
        """Signals (late by the telemetry delay) and repairs in time order, with a tick
        every `tick_s` while a plan is live."""
        delay, signals, items = self.settings.telemetry_delay_s, self.trace.signals, \
            self.trace.items
        events = [(signal.at + delay, 1, n) for n, signal in enumerate(signals)]
        events += [(item.repaired_at, 0, n) for n, item in enumerate(items) if item.hardware]
        heapq.heapify(events)
        horizon = self.trace.horizon_s + 86_400.0
        next_tick = float("inf")
        while events or next_tick < horizon:
            at = events[0][0] if events else float("inf")
            if next_tick <= at:
                self._step(next_tick, [])
            elif events[0][1] == 0:
                self._repaired(at, items[heapq.heappop(events)[2]])
            else:
                batch = []
                while events and events[0][0] == at and events[0][1] == 1:
                    batch.append(signals[heapq.heappop(events)[2]])
                self._step(at, batch)
            live = self.remediator.live()
            next_tick = self.clock.now() + self.settings.tick_s if live else float("inf")

    def _step(self, at: float, signals: list[Signal]) -> None:
        self.clock.set(max(self.clock.now(), at))
        if signals:
            self.service.submit(signals)
        self._approve()
        self.service.process()
        self.max_out = max(self.max_out, len(self.remediator.out))
        if JOB in self.actuator.pending:
            self.actuator.start_job(JOB, [n for n in self.nodes
                                          if not self.actuator.status(n).drained])

    def _approve(self) -> None:
        """Operators approve what has waited `approve_s` for them."""
        now = self.clock.now()
        for plan in self.remediator.live():
            waiting = [s for s in plan.steps if s.state is StepState.AWAITING_APPROVAL]
            if waiting and now - (waiting[0].started_at or plan.created_at) >= \
                    self.settings.approve_s:
                self.remediator.approve(plan.id, "operator")
            for step in waiting:
                step.started_at = step.started_at if step.started_at is not None else now

    def _repaired(self, at: float, item: TracedFault) -> None:
        """A technician returns a node dcops left out for repair, once it is repaired."""
        self.clock.set(max(self.clock.now(), at))
        status = self.actuator.status(item.node)
        live = any(p.node == item.node for p in self.remediator.live())
        if status.drained and not live and not self.actuator.broken(item.node):
            self.actuator.resume(item.node)

    def score(self) -> ReplayResult:
        trace, log = self.trace, self.actuator.log
        drains: dict[str, list[float]] = {}
        for at, verb, target, _ in log:
            if verb in DRAINS:
                drains.setdefault(target, []).append(at)
        result = ReplayResult(
            faults=len(trace.faults), hardware_faults=sum(i.hardware for i in trace.faults),
            requeues=sum(1 for e in log if e[1] == "requeue"),
            resets=sum(1 for e in log if e[1] == "reset_gpu"),
            reboots=sum(1 for e in log if e[1] == "reboot"),
            resumes=sum(1 for e in log if e[1] == "resume"),
            pages=self.notifier.pages, notifications=len(self.notifier.sent),
            max_out=self.max_out,
            budget=self.settings.guardrails.budget(trace.nodes),
            plans=len(self.store.plans(limit=1_000_000)),
            blocked_steps=sum(1 for p in self.store.plans(limit=1_000_000) for s in p.steps
                              if s.state is StepState.BLOCKED))
        for node, times in drains.items():
            for at in times:
                if trace.broken(node, at):
                    result.true_drains += 1
                else:
                    result.false_drains += 1
        plans = self.store.plans(limit=1_000_000)
        for index, item in enumerate(trace.items):
            response = self._response(item, drains, plans)
            if response is not None:
                result.responses[index] = response
            elif item.hardware:
                result.missed += 1
        return result

    def _response(self, item: TracedFault, drains: dict[str, list[float]],
                  plans: list[Any]) -> Response | None:
        """When dcops drained the item's node (or requeued its job in place)."""
        action = self.settings.action_s
        after = [t for t in drains.get(item.node, []) if item.at <= t <= item.at + MATCH_S]
        if after:
            return Response(after[0] - item.at, action, needs_spare=True,
                            false_drain=False)
        planned = [p.created_at for p in plans if p.node == item.node
                   and item.at <= p.created_at <= item.at + MATCH_S]
        if planned and item.fault is not None:
            return Response(planned[0] - item.at, action, needs_spare=False)
        if item.fault is None:
            return Response(0.0, 0.0, needs_spare=False)
        return None
