"""Goodput of one large synchronous training job: ETTR under a fault trace and a responder.

The job runs on every GPU of the trace's cluster (16,384 GPUs, 2,048 nodes of 8, for 54
days by default) with a pool of hot spare nodes beside it. It computes in cycles of
`checkpoint_interval_s` followed by a blocking save of `checkpoint_write_s` (0 for
asynchronous saves). Every injected fault stops the whole job; what happens next is the
`Responder`'s `Response`:

    fault ── detect_s ──► noticed ── act_s ──► isolated ── wait ──► ready ── restart_s ──► computing
                                                           (a spare, or the node's repair)

- a hardware fault with `needs_spare`: the faulty node is swapped for a spare; with no
  spare free the job waits for the first node back from repair ("spare_wait");
- a hardware fault without `needs_spare`: the node is fixed in place and the job waits for
  it ("repair_wait"): `node_out_s` after the isolation, else until the trace's
  `repaired_at`;
- an application fault (software, NCCL watchdog): the job restarts in place, unless the
  responder swapped a sound node anyway (`needs_spare`: a false drain);
- `false_drain`: the responder also took a sound node out (the wrong end of an NVLink, say),
  one more swap;
- a noise item (no fault) costs nothing unless the responder drains a sound node for it:
  then the job stops at `item.at + detect_s` (a drain kills it), then `act_s`, the swap
  and the restart.

A node taken out sound comes back `node_out_s` later, else `false_drain_out_s`. After a
stop the work since the last checkpoint is lost ("recompute"), and the restart takes
`restart_s` ("restart"). A hardware fault, or a drain, that comes while the job is already
stopped is handled in parallel; only the part of its wait beyond the present outage counts.
An application fault in an outage is ignored (nothing was running). A fault during the
restart stops it: the restart so far is lost and a new outage begins.

ETTR = productive time / horizon; productive, the lost causes (detection, action,
spare_wait, repair_wait, restart, recompute, checkpoint) add up to the horizon exactly.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from dcops.core.errors import Invalid
from dcops.simulation.failures import FailureModel
from dcops.simulation.faulttrace import FaultTrace, Noise, TracedFault, synthesize

CAUSES = ("detection", "action", "spare_wait", "repair_wait", "restart", "recompute",
          "checkpoint")
"""The causes of lost time, in the order a stop incurs them (checkpoint writes aside)."""


@dataclass(frozen=True, slots=True)
class Response:
    """What a responder did about one item, in seconds from its onset: it noticed the fault
    after `detect_s` and had the node isolated and the job requeued `act_s` later.

    `needs_spare`: a node of the job was taken out and replaced by a spare (for a hardware
    fault, the faulty node; for any other item, a sound node: a false drain).
    `false_drain`: a sound node was taken out as well as (or instead of) the faulty one.
    `node_out_s`: how long a node taken out (or fixed in place) stays out, from the
    isolation; None lets the model decide (the trace's repair time for the faulty node,
    `false_drain_out_s` for a sound one)."""

    detect_s: float
    act_s: float
    needs_spare: bool
    false_drain: bool = False
    node_out_s: float | None = None


NO_ACTION = Response(0.0, 0.0, False)


class Responder(Protocol):
    """Detection and isolation of faults, as a policy would do them.

    `respond` is called once per trace item (faults and noise), in onset order, so an
    implementation may keep state across items (a diagnoser's history, a drain budget).
    It sees the item's `signals` (in time order, from `item.at`) and the whole `trace`
    (its cluster, other items); it must decide from the signals, not from the item's
    truth fields, which are for scoring. A live-code responder feeds the signals to a
    Diagnoser and a remediation engine driving a `SimActuator` on a `FakeClock` set to
    each signal's time, and reports when the node was drained (`detect_s`) and the job
    requeued (`act_s` after that)."""

    def respond(self, item: TracedFault, trace: FaultTrace) -> Response:
        """How this item was handled."""
        ...


@dataclass(frozen=True, slots=True)
class ManualResponder:
    """The baseline: operators notice a stopped job after `notice_s` (30 min), isolate the
    node in `act_s` (15 min) and always swap it, whatever the cause; noise that stops
    nothing goes unnoticed."""

    notice_s: float = 1800.0
    act_s: float = 900.0

    def respond(self, item: TracedFault, trace: FaultTrace) -> Response:
        if item.fault is None:
            return NO_ACTION
        return Response(self.notice_s, self.act_s, needs_spare=True)


@dataclass(frozen=True, slots=True)
class FixedResponder:
    """Fixed times for every fault; swaps the node when `swap` says (None: an oracle,
    swapping exactly the hardware faults). Noise is left alone."""

    detect_s: float
    act_s: float
    swap: bool | None = None

    def respond(self, item: TracedFault, trace: FaultTrace) -> Response:
        if item.fault is None:
            return NO_ACTION
        swap = item.hardware if self.swap is None else self.swap
        return Response(self.detect_s, self.act_s, needs_spare=swap)


@dataclass(frozen=True, slots=True)
class GoodputParams:
    """The job, its checkpoints and its spares. Defaults: the Llama 3 405B run (16,384
    GPUs, 54 days), a 30-minute checkpoint interval with a 30 s blocking save, a 5-minute
    restart (checkpoint load and initialisation), 2% hot spares (41 nodes), and a sound
    node drained by mistake back in 1 h (re-check and resume). Assumptions, not data."""

    gpus: int = 16_384
    gpus_per_node: int = 8
    horizon_s: float = 54 * 86_400.0
    spare_fraction: float = 0.02
    checkpoint_interval_s: float = 1800.0
    checkpoint_write_s: float = 30.0
    restart_s: float = 300.0
    false_drain_out_s: float = 3600.0

    @property
    def nodes(self) -> int:
        return self.gpus // self.gpus_per_node

    @property
    def spares(self) -> int:
        return round(self.spare_fraction * self.nodes)

    def check(self) -> GoodputParams:
        if self.gpus <= 0 or self.gpus_per_node <= 0 or self.gpus % self.gpus_per_node:
            raise Invalid(f"job of {self.gpus} GPUs at {self.gpus_per_node} a node",
                          hint="GPUs a positive multiple of GPUs per node")
        times = (self.horizon_s, self.checkpoint_write_s, self.restart_s,
                 self.false_drain_out_s)
        if (not all(math.isfinite(t) and t >= 0 for t in times)
                or not self.checkpoint_interval_s > 0 or not 0 <= self.spare_fraction <= 1):
            raise Invalid(f"goodput parameters {asdict(self)}",
                          hint="times 0 or more, the checkpoint interval more than 0, "
                               "the spare fraction between 0 and 1")
        return self


@dataclass(frozen=True, slots=True)
class GoodputReport:
    """What the job got out of the horizon, and where the rest went (hours)."""

    ettr: float
    productive_h: float
    lost_h: dict[str, float]
    interruptions: int
    """Stops of the job (faults, and drains of sound nodes, that found it running)."""
    faults: int
    false_drains: int
    spares_used: int
    spare_waits: int
    """Swaps that found no spare free."""
    responder: str
    params: dict[str, float | int]
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def simulate_goodput(model: FailureModel, responder: Responder,
                     params: GoodputParams = GoodputParams(), *, seed: int = 0,
                     noise: Noise = Noise()) -> GoodputReport:
    """Synthesize a trace of `model` on the job's cluster and measure its goodput."""
    params.check()
    trace = synthesize(model, params.nodes, params.gpus_per_node, params.horizon_s, seed,
                       noise=noise)
    return goodput(trace, responder, params)


def goodput(trace: FaultTrace, responder: Responder,
            params: GoodputParams = GoodputParams()) -> GoodputReport:
    """The ETTR of the job over `trace` with `responder` handling each item."""
    started = time.perf_counter()
    params.check()
    if (trace.nodes, trace.gpus_per_node) != (params.nodes, params.gpus_per_node):
        raise Invalid(f"trace of {trace.nodes} x {trace.gpus_per_node} GPUs for a job of "
                      f"{params.nodes} x {params.gpus_per_node}",
                      hint="synthesize the trace on the job's cluster")
    stops = [_Stop.of(item, responder.respond(item, trace), params) for item in trace.items]
    run = _Run(params)
    for stop in sorted((s for s in stops if s is not None), key=lambda s: s.at):
        run.handle(stop)
    productive = run.finish()
    lost = {cause: run.lost[cause] / 3600.0 for cause in CAUSES}
    return GoodputReport(
        ettr=productive / params.horizon_s if params.horizon_s else 1.0,
        productive_h=productive / 3600.0, lost_h=lost, interruptions=run.interruptions,
        faults=len(trace.faults), false_drains=sum(s.sound for s in stops if s),
        spares_used=run.spares_used, spare_waits=run.spare_waits,
        responder=type(responder).__name__,
        params={**asdict(params), "nodes": params.nodes, "spares": params.spares},
        wall_s=time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class _Stop:
    """One item as the job feels it: it stops at `at`, is noticed `detect_s` later,
    isolated `act_s` after that; then the swaps (their nodes' times out) and, for a
    hardware fault fixed in place, the wait for that node."""

    at: float
    detect_s: float
    act_s: float
    swaps_out_s: tuple[float, ...]
    in_place_s: float
    sound: int
    """Sound nodes taken out (false drains)."""

    @classmethod
    def of(cls, item: TracedFault, response: Response, params: GoodputParams) -> _Stop | None:
        faulty = item.hardware and response.needs_spare
        sound = int(response.false_drain or (response.needs_spare and not item.hardware))
        if item.fault is None and not sound:
            return None
        at = item.at if item.fault is not None else item.at + response.detect_s
        detect = response.detect_s if item.fault is not None else 0.0
        isolated = at + detect + response.act_s
        faulty_out = (response.node_out_s if response.node_out_s is not None
                      else max(0.0, item.repaired_at - isolated))
        sound_out = (response.node_out_s if response.node_out_s is not None
                     else params.false_drain_out_s)
        swaps = (faulty_out,) * int(faulty) + (sound_out,) * sound
        in_place = faulty_out if item.hardware and not faulty else 0.0
        return cls(at, detect, response.act_s, swaps, in_place, sound)

    @property
    def matters_when_down(self) -> bool:
        """Whether it changes an outage already under way (a swap or an in-place fix)."""
        return bool(self.swaps_out_s) or self.in_place_s > 0


@dataclass(slots=True)
class _Run:
    """The job's timeline: computing since `since`, or stopped until `ready` and then
    restarting until `ready + restart_s`."""

    params: GoodputParams
    since: float = 0.0
    down: bool = False
    ready: float = 0.0
    segments: list[float] = field(default_factory=list)
    lost: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0.0))
    interruptions: int = 0
    spares_used: int = 0
    spare_waits: int = 0
    pool: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pool = [0.0] * self.params.spares

    def handle(self, stop: _Stop) -> None:
        t, restart = stop.at, self.params.restart_s
        if t >= self.params.horizon_s:
            return
        if self.down and t >= self.ready + restart:
            self._add("restart", self.ready, self.ready + restart)
            self.down, self.since = False, self.ready + restart
        if not self.down:
            self.segments.append(t - self.since)
            self._outage(stop, t)
        elif t < self.ready:
            if stop.matters_when_down:
                self.ready = max(self.ready, self._stages(stop, clip=self.ready))
        else:
            self._add("restart", self.ready, t)
            self._outage(stop, t)

    def _outage(self, stop: _Stop, t: float) -> None:
        self.interruptions += 1
        self.down = True
        self.ready = self._stages(stop, clip=t)

    def _stages(self, stop: _Stop, clip: float) -> float:
        """Add the stop's stages, counting only time after `clip`; when it is ready."""
        noticed = stop.at + stop.detect_s
        isolated = noticed + stop.act_s
        spare = isolated + self._swap(isolated, stop.swaps_out_s)
        ready = max(spare, isolated + stop.in_place_s)
        for cause, start, end in (("detection", stop.at, noticed),
                                  ("action", noticed, isolated),
                                  ("spare_wait", isolated, spare),
                                  ("repair_wait", spare, ready)):
            self._add(cause, max(start, clip), end)
        return ready

    def _swap(self, at: float, outs: Sequence[float]) -> float:
        """Take a spare for each node out at `at`; the wait for the last one."""
        wait = 0.0
        for out in outs:
            free = heapq.heappushpop(self.pool, at + out)
            self.spares_used += 1
            if free > at:
                self.spare_waits += 1
                wait = max(wait, free - at)
        return wait

    def _add(self, cause: str, start: float, end: float) -> None:
        self.lost[cause] += max(0.0, min(end, self.params.horizon_s) - start)

    def finish(self) -> float:
        """Close the timeline at the horizon; the productive seconds."""
        horizon, restart = self.params.horizon_s, self.params.restart_s
        tail = 0.0
        if self.down and horizon > self.ready:
            self._add("restart", self.ready, self.ready + restart)
            tail = max(0.0, horizon - self.ready - restart)
        elif not self.down:
            tail = horizon - self.since
        productive, checkpoint, recompute = _cycles(np.array(self.segments, dtype=np.float64),
                                                    self.params)
        tail_work, tail_save, tail_partial = _cycles(np.array([tail]), self.params)
        self.lost["checkpoint"] += checkpoint + tail_save
        self.lost["recompute"] += recompute
        return productive + tail_work + tail_partial


def _cycles(lengths: np.ndarray[Any, np.dtype[np.float64]],
            params: GoodputParams) -> tuple[float, float, float]:
    """Split compute segments into (work kept at checkpoints, checkpoint writes, work
    since the last checkpoint) seconds, summed."""
    interval, write = params.checkpoint_interval_s, params.checkpoint_write_s
    full = np.floor(lengths / (interval + write))
    rest = lengths - full * (interval + write)
    kept = float(np.sum(full) * interval)
    saves = float(np.sum(full) * write + np.sum(np.maximum(rest - interval, 0.0)))
    return kept, saves, float(np.sum(np.minimum(rest, interval)))
