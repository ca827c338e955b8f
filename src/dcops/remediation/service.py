"""The live loop that closes it: telemetry and events in, diagnoses, plans, actions out.

Samples reach `RemediationService.ingest` from the ingest path (agent push, remote_write,
scrape, the simulated fleet) and events reach `submit` from the API (a log shipper's Xid
lines, a health check's verdict). Signals wake the remediation thread at once, so a fault
sample leads to a drain within one pass, not one tick; between signals the thread still
wakes every `tick_s` to advance waiting plans (retries, re-checks, approvals).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from dcops.core.errors import Unavailable
from dcops.health.diagnose import Diagnoser
from dcops.health.lemon import LemonScorer
from dcops.health.model import Diagnosis, Health, NodeHealth, Signal, SignalKind
from dcops.health.signals import TelemetrySignals
from dcops.remediation.engine import Remediator
from dcops.remediation.model import Plan
from dcops.telemetry.model import Batch

log = logging.getLogger(__name__)

MAX_QUEUED = 100_000
"""Signals waiting for the remediation thread; beyond this the oldest are dropped (and
counted): a flood of one kind of signal must not take the server's memory."""
OPERATOR_WAIT_S = 10.0
"""How long an operator's request waits for a running remediation pass."""
HEARTBEATS = frozenset({"dcops_host_cpu_percent", "dcops_gpu_up", "up"})
"""Series whose samples show a node is reporting."""


OnSuspect = Callable[[str, bool], object]
"""Told that a node became suspect (True) or clear (False), so the scheduler keeps large
jobs off it."""


@dataclass
class TelemetryRechecker:
    """A re-check from telemetry: a node passes when it has reported within `fresh_s` and
    no fault signal has come from it for `quiet_s` (after a reset or reboot, the node is
    back and clean). Fed by the service with what it sees."""

    fresh_s: float = 60.0
    quiet_s: float = 30.0

    def __post_init__(self) -> None:
        self.last_seen: dict[str, float] = {}
        self.last_fault: dict[str, float] = {}

    def recheck(self, node: str, gpu: int | None, now: float) -> Signal:
        seen = self.last_seen.get(node)
        fault = self.last_fault.get(node)
        if seen is None or now - seen > self.fresh_s:
            return Signal(now, node, SignalKind.CHECK_FAILED, gpu, source="recheck",
                          detail=f"no telemetry from {node} in the last {self.fresh_s:.0f} s")
        if fault is not None and now - fault < self.quiet_s:
            return Signal(now, node, SignalKind.CHECK_FAILED, gpu, source="recheck",
                          detail=f"a fault signal {now - fault:.0f} s ago")
        return Signal(now, node, SignalKind.CHECK_PASSED, gpu, source="recheck",
                      detail=f"reporting, no fault for {self.quiet_s:.0f} s")


class RemediationService:
    """Diagnoser and remediator behind one lock, with the thread that drives them."""

    def __init__(self, diagnoser: Diagnoser, remediator: Remediator, *,
                 batch_signals: TelemetrySignals | None = None,
                 rechecker: TelemetryRechecker | None = None,
                 on_suspect: OnSuspect | None = None,
                 new_diagnoser: Callable[[], Diagnoser] | None = None,
                 after_pass: Callable[[], None] | None = None,
                 lemons: LemonScorer | None = None,
                 gpu_model: Callable[[str], str] | None = None,
                 unreachable_s: float = 60.0) -> None:
        self.diagnoser = diagnoser
        self.remediator = remediator
        self.batch_signals = batch_signals
        self.rechecker = rechecker
        self.on_suspect = on_suspect
        self.new_diagnoser = new_diagnoser
        self.after_pass = after_pass
        self.lemons = lemons
        self.gpu_model = gpu_model or (lambda node: "")
        self.unreachable_s = unreachable_s
        """A node silent this long (after it reported) gets an UNREACHABLE signal each pass."""
        self.wake = threading.Event()
        self.dropped = 0
        self._queue: deque[Signal] = deque()
        self._suspects: set[str] = set()
        self._lemons: set[str] = set()
        """Nodes quarantined as lemons: suspect until an operator clears them."""
        self._queue_lock = threading.Lock()
        self._feed_lock = threading.Lock()
        self._diagnosis = threading.RLock()
        """Held while the diagnoser changes or is read (short: no action runs under it)."""
        self._engine = threading.RLock()
        """Held while the remediator runs a pass, which may run a playbook for minutes."""

    # -- signals in ---------------------------------------------------------------------

    def ingest(self, batch: Batch) -> int:
        """Take the signals in a telemetry batch (called on the ingest path: cheap when
        the batch holds no fault series). Returns how many it found."""
        if self.rechecker is not None:
            self._seen(self.rechecker, batch)
        if self.batch_signals is None:
            return 0
        with self._feed_lock:
            signals = self.batch_signals.feed(batch)
        return self.submit(signals) if signals else 0

    def submit(self, signals: Iterable[Signal]) -> int:
        """Queue signals for the remediation thread and wake it."""
        count = 0
        with self._queue_lock:
            for signal in signals:
                if len(self._queue) >= MAX_QUEUED:
                    self._queue.popleft()
                    self.dropped += 1
                self._queue.append(signal)
                count += 1
        if count:
            self.wake.set()
        return count

    # -- the loop -----------------------------------------------------------------------

    def process(self) -> list[Plan]:
        """Diagnose what is queued, plan for it, and advance every live plan; returns the
        plans that changed."""
        with self._queue_lock:
            signals = list(self._queue)
            self._queue.clear()
        for signal in [*signals, *self._silent()]:
            self._observe(signal)
        with self._engine:
            changed = self.remediator.advance()
        if self.after_pass is not None:
            self.after_pass()
        return changed

    def run(self, stop: threading.Event, tick_s: float = 1.0) -> None:
        """Process whenever signals arrive, and every `tick_s` anyway, until `stop`."""
        while not stop.is_set():
            self.wake.wait(tick_s)
            self.wake.clear()
            try:
                self.process()
            except Exception:
                log.exception("remediation pass failed; next in %.1f s", tick_s)

    # -- questions and operator actions -------------------------------------------------

    def preview(self, signals: Sequence[Signal]) -> list[tuple[Diagnosis, Plan]]:
        """What these signals would lead to, on a fresh diagnoser: nothing is stored or
        done (``dcops remediate plan``)."""
        if self.new_diagnoser is None:
            raise RuntimeError("preview needs a diagnoser factory")
        fresh = self.new_diagnoser()
        found = [d for signal in signals for d in fresh.observe(signal)]
        with self._operator_turn():
            return [(d, self.remediator.preview(d)) for d in found]

    def health(self) -> list[NodeHealth]:
        """Every node the diagnoser has seen, by name."""
        with self._diagnosis:
            return self.diagnoser.nodes()

    def node_health(self, node: str) -> NodeHealth:
        with self._diagnosis:
            return self.diagnoser.node(node)

    def approve(self, plan_id: str, actor: str) -> Plan:
        with self._operator_turn():
            plan = self.remediator.approve(plan_id, actor)
        self.wake.set()
        return plan

    def cancel(self, plan_id: str, actor: str, reason: str = "") -> Plan:
        with self._operator_turn():
            return self.remediator.cancel(plan_id, actor, reason)

    def close_breaker(self, actor: str) -> None:
        with self._operator_turn():
            self.remediator.close_breaker(actor)
        self.wake.set()

    def feedback(self, signal: Signal) -> None:
        """A signal from remediation itself (a re-check's result), diagnosed at once."""
        self._observe(signal)

    @contextlib.contextmanager
    def _operator_turn(self) -> Iterator[None]:
        """The engine for an operator's request, or `Unavailable` when a long step (a
        playbook) holds it past `OPERATOR_WAIT_S`."""
        if not self._engine.acquire(timeout=OPERATOR_WAIT_S):
            raise Unavailable("remediation is busy carrying out a step",
                              hint="try again in a minute; `dcops remediate list` shows it")
        try:
            yield
        finally:
            self._engine.release()

    # -- internals ----------------------------------------------------------------------

    def _observe(self, signal: Signal) -> None:
        with self._diagnosis:
            diagnoses = self.diagnoser.observe(signal)
        if self.rechecker is not None and signal.kind not in {
                SignalKind.CHECK_PASSED, SignalKind.CHECK_FAILED}:
            self.rechecker.last_fault[signal.node] = signal.at
        for diagnosis in diagnoses:
            self._score_lemon(diagnosis)
            try:
                with self._engine:
                    self.remediator.handle(diagnosis)
            except Exception:  # one bad diagnosis must not stop the others
                log.exception("could not plan for %s: %s", diagnosis.target, diagnosis.cause)
        self._mark_suspect(signal.node)

    def _mark_suspect(self, node: str) -> None:
        """A node is suspect for placement while the diagnoser finds anything wrong with it
        (large jobs avoid it; degraded and failed ones are drained by their plans too), or
        while it is a quarantined lemon; it is clear again once healthy."""
        if self.on_suspect is None:
            return
        with self._diagnosis:
            health = self.diagnoser.node(node).health
        suspect = health is not Health.HEALTHY or node in self._lemons
        if suspect != (node in self._suspects):
            self._tell_suspect(node, suspect)

    def _tell_suspect(self, node: str, suspect: bool) -> None:
        (self._suspects.add if suspect else self._suspects.discard)(node)
        if self.on_suspect is None:
            return
        try:
            self.on_suspect(node, suspect)
        except Exception as error:  # a node the scheduler does not run jobs on
            log.debug("suspect mark for %s not taken: %s", node, error)

    def _score_lemon(self, diagnosis: Diagnosis) -> None:
        """A hardware fault (degraded or failed) counts against the node; a node whose
        faults make it a likely lemon against its identical peers is marked suspect."""
        if self.lemons is None or diagnosis.health.rank < Health.DEGRADED.rank:
            return
        node = diagnosis.node
        self.lemons.observe(node, self.gpu_model(node), diagnosis.at)
        score = self.lemons.score(node)
        if score.suspect and node not in self._lemons:
            log.warning("%s looks like a lemon: %d faults in %.0f days, P=%.3f; quarantined",
                        node, score.faults, score.exposure_days, score.p_lemon)
            self._lemons.add(node)
            if node not in self._suspects:
                self._tell_suspect(node, True)

    def _silent(self) -> list[Signal]:
        """UNREACHABLE signals for nodes that reported before and have been silent for
        `unreachable_s` (their value: seconds silent)."""
        if self.rechecker is None or not self.rechecker.last_seen:
            return []
        now = self.remediator.clock.now()
        return [Signal(now, node, SignalKind.UNREACHABLE, value=now - seen, source="heartbeat")
                for node, seen in self.rechecker.last_seen.items()
                if now - seen >= self.unreachable_s]

    def _seen(self, rechecker: TelemetryRechecker, batch: Batch) -> None:
        """Note the nodes this batch has a heartbeat series of (one per node or GPU, so
        a batch of 100,000 samples costs one comparison per series)."""
        if not batch.ts_ms:
            return
        at = max(batch.ts_ms) / 1000.0
        seen = rechecker.last_seen
        for labels in batch.labels:
            if labels and labels[0][0] == "__name__" and labels[0][1] in HEARTBEATS:
                for key, value in labels:
                    if key == "node":
                        if self.lemons is not None and value not in seen:
                            self.lemons.observe(value, self.gpu_model(value), at, False)
                        seen[value] = at
                        break
