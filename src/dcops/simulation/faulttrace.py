"""Fault traces: the signals telemetry would show for injected faults, with the truth.

`synthesize` draws faults from a `FailureModel` and turns each into a short burst of
`Signal`s as the driver, the agent and the scrapers would report them, plus benign noise on
healthy GPUs: the cases where a good policy must not drain. Every burst is a `TracedFault`
carrying its ground truth (hardware or not, the mildest remedy that fixes it, when the node
is repaired), so a diagnoser and a remediation policy can be scored against it.

How each root cause shows (components of the Llama 3 table; other tables fall back on
their category), and its truth (hardware or application; the mildest remedy):

- Faulty GPU (incl. NVLink): Xid 79 (fallen off the bus); a share `nvlink_share` Xid 74
  with `peer` another GPU of the node or the same GPU of the next node, whose end logs a
  sympathetic 74 back 1 s later. Hardware, repair.
- HBM3: Xid 48 (DBE), then Xid 45 on the same GPU 1 s later. Hardware, reset.
- SRAM: Xid 95 (uncontained), then Xid 45 1 s later. Hardware, reset.
- GSP: Xid 119. Hardware, reset.
- Silent data corruption: Xid 13 on the same GPU in `sdc_jobs` different jobs,
  `sdc_every_s` apart (the catalogue's sign of hardware behind an application Xid; SDC
  itself logs nothing). Hardware, repair.
- Thermal interface / sensor: THERMAL (95 C and rising) every `thermal_every_s` for
  `thermal_s`. Hardware, repair.
- Host parts and unplanned maintenance: UNREACHABLE every `report_every_s` for
  `silence_s`, `value` the seconds silent. Hardware, repair.
- Network switch / cable: a share `network_unreachable_share` as a host; the rest PCIE
  link errors (the NIC) on the node, every minute for 5 minutes. Hardware, repair.
- Software bug, dependency: Xid 13 or 31 on one GPU, naming a job. Application,
  restart_app.
- NCCL watchdog timeout (unknown): Xid 13 on one GPU, naming a job. Application,
  restart_app.

Noise (`Noise`, per GPU-day): a lone application Xid 13 or 31 in one job (restart_app), a
lone Xid 43 (the application already stopped: none), Xid 63 (a row remap that worked:
none) and corrected-ECC counts (none). None of it is hardware.

A hardware fault's node is repaired `downtime_s` after it struck (`repaired_at`), unless a
reset or reboot fixes it sooner (see `dcops.simulation.actuator`); an application fault
leaves the node sound (`repaired_at` = its onset).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dcops.core.errors import Invalid
from dcops.health.model import Remedy, Signal, SignalKind
from dcops.simulation.failures import FailureModel, Fault
from dcops.simulation.replay import node_name

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Noise:
    """Benign signals on healthy GPUs, in events per GPU-day. Defaults are assumptions
    (no public rate): on 16,384 GPUs about 16 lone application Xids, 3 row remaps and 8
    corrected-ECC reports a day."""

    app_xid_per_gpu_day: float = 1e-3
    remap_per_gpu_day: float = 2e-4
    sbe_per_gpu_day: float = 5e-4


NO_NOISE = Noise(0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class BurstShape:
    """How long and how often each kind of burst reports (see the module table)."""

    silence_s: float = 1800.0
    report_every_s: float = 30.0
    thermal_s: float = 1200.0
    thermal_every_s: float = 60.0
    nvlink_share: float = 0.25
    network_unreachable_share: float = 0.5
    sdc_jobs: int = 3
    sdc_every_s: float = 600.0


@dataclass(frozen=True, slots=True)
class TracedFault:
    """One fault (or, with `fault` None, one benign noise event) and the signals it shows,
    with the truth: `hardware` (the node is broken, not the application), the faulty
    `node` and `gpu`, its onset `at`, the mildest `remedy` that fixes it and, for hardware,
    when the node is repaired without help (`repaired_at`)."""

    fault: Fault | None
    signals: tuple[Signal, ...]
    hardware: bool
    node: str
    gpu: int | None
    at: float
    remedy: Remedy
    repaired_at: float
    cause: str = ""
    """The component ("GPU HBM3 memory") or the noise kind ("noise: xid 63")."""


@dataclass(frozen=True, slots=True)
class FaultTrace:
    """A synthesized trace: its items by onset and every signal sorted by time."""

    items: tuple[TracedFault, ...]
    signals: tuple[Signal, ...]
    nodes: int
    gpus_per_node: int
    horizon_s: float
    _by_node: dict[str, tuple[TracedFault, ...]] = field(
        default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, items: Sequence[TracedFault], nodes: int, gpus_per_node: int,
           horizon_s: float) -> FaultTrace:
        """A trace of these items (sorted here), its signals merged in time order."""
        ordered = tuple(sorted(items, key=lambda item: item.at))
        signals = tuple(sorted((s for item in ordered for s in item.signals),
                               key=lambda s: s.at))
        by_node: defaultdict[str, list[TracedFault]] = defaultdict(list)
        for item in ordered:
            by_node[item.node].append(item)
        return cls(ordered, signals, nodes, gpus_per_node, horizon_s,
                   {node: tuple(found) for node, found in by_node.items()})

    @property
    def faults(self) -> tuple[TracedFault, ...]:
        """The items that are injected faults (not noise)."""
        return tuple(item for item in self.items if item.fault is not None)

    def on_node(self, node: str) -> tuple[TracedFault, ...]:
        """The items whose faulty node is `node`, by onset."""
        return self._by_node.get(node, ())

    def broken(self, node: str, at: float) -> list[TracedFault]:
        """Hardware faults of `node` that have struck and are not repaired at `at`."""
        return [item for item in self.on_node(node)
                if item.hardware and item.at <= at < item.repaired_at]


def synthesize(model: FailureModel, nodes: int, gpus_per_node: int, horizon_s: float,
               seed: int, *, noise: Noise = Noise(),
               shape: BurstShape = BurstShape()) -> FaultTrace:
    """The signals of `model.sample(nodes, gpus_per_node, horizon_s, seed)` plus `noise`;
    the same arguments give the same trace."""
    _check_noise(noise)
    faults = model.sample(nodes, gpus_per_node, horizon_s, seed)
    burst = _Bursts(np.random.default_rng([seed, 1]), nodes, gpus_per_node, shape)
    items = [burst.fault(fault) for fault in faults]
    items += burst.noise(noise, horizon_s)
    return FaultTrace.of(items, nodes, gpus_per_node, horizon_s)


def cause_shape(component: str, category: str) -> str:
    """Which burst a root cause shows as: a key of `TRUTH`."""
    name = component.lower()
    for key, words in _COMPONENT_WORDS:
        if any(word in name for word in words):
            return key
    return _CATEGORY_SHAPE.get(category, "host")


TRUTH: dict[str, tuple[bool, Remedy]] = {
    "faulty_gpu": (True, Remedy.REPAIR), "hbm": (True, Remedy.RESET_GPU),
    "sram": (True, Remedy.RESET_GPU), "gsp": (True, Remedy.RESET_GPU),
    "sdc": (True, Remedy.REPAIR), "thermal": (True, Remedy.REPAIR),
    "host": (True, Remedy.REPAIR), "network": (True, Remedy.REPAIR),
    "app": (False, Remedy.RESTART_APP), "watchdog": (False, Remedy.RESTART_APP),
}
"""(hardware, mildest remedy) by burst shape."""

_COMPONENT_WORDS = (
    ("hbm", ("hbm",)), ("sram", ("sram",)), ("gsp", ("gsp", "system processor")),
    ("sdc", ("silent data",)), ("thermal", ("thermal",)), ("watchdog", ("watchdog",)),
    ("faulty_gpu", ("faulty gpu", "nvlink")),
)
_NODE_SHAPES = frozenset({"host", "network"})
"""Shapes that take the whole node (the rest name one GPU)."""
_CATEGORY_SHAPE = {"GPU": "faulty_gpu", "Host": "host", "Network": "network",
                   "Unplanned maintenance": "host", "Dependency": "app",
                   "Unknown": "watchdog"}


class _Bursts:
    """Builds the signals of faults and noise, drawing choices from one generator."""

    def __init__(self, rng: np.random.Generator, nodes: int, gpus_per_node: int,
                 shape: BurstShape) -> None:
        self.rng = rng
        self.nodes = nodes
        self.gpus = gpus_per_node
        self.shape = shape
        self._jobs = 0
        self._shapes: dict[str, Callable[[float, int, int], list[Signal]]] = {
            "faulty_gpu": self._faulty_gpu, "hbm": self._hbm, "sram": self._sram,
            "gsp": self._gsp, "sdc": self._sdc, "thermal": self._thermal,
            "host": self._host, "network": self._network, "app": self._app,
            "watchdog": self._watchdog}

    def job(self) -> str:
        self._jobs += 1
        return f"j{self._jobs}"

    def fault(self, fault: Fault) -> TracedFault:
        key = cause_shape(fault.component, fault.category)
        hardware, remedy = TRUTH[key]
        node = node_name(fault.node_index)
        gpu = fault.gpu_index
        if gpu is None and key not in _NODE_SHAPES:
            gpu = int(self.rng.integers(self.gpus))
        signals = self._shapes[key](fault.at_s, fault.node_index, -1 if gpu is None else gpu)
        repaired = fault.at_s + fault.downtime_s if hardware else fault.at_s
        return TracedFault(fault, tuple(signals), hardware, node, gpu, fault.at_s, remedy,
                           repaired, fault.component or fault.category)

    # -- one method per burst shape: (onset, node index, gpu or -1) -> signals --

    def _faulty_gpu(self, at: float, n: int, gpu: int) -> list[Signal]:
        node = node_name(n)
        if self.rng.random() >= self.shape.nvlink_share:
            return [_xid(at, node, gpu, 79, "GPU has fallen off the bus")]
        peer = self._peer(n, gpu)
        if peer is None:
            return [_xid(at, node, gpu, 74, "NVLink error")]
        peer_node, peer_gpu = peer
        return [_xid(at, node, gpu, 74, "NVLink error", peer=f"{peer_node}/{peer_gpu}"),
                _xid(at + 1.0, peer_node, peer_gpu, 74, "NVLink error",
                     peer=f"{node}/{gpu}")]

    def _peer(self, n: int, gpu: int) -> tuple[str, int] | None:
        """Another GPU of the node, or the same GPU of the next node, half and half."""
        same = self.gpus > 1 and (self.nodes == 1 or self.rng.random() < 0.5)
        if same:
            other = int(self.rng.integers(self.gpus - 1))
            return node_name(n), other if other < gpu else other + 1
        if self.nodes > 1:
            return node_name((n + 1) % self.nodes), gpu
        return None

    def _hbm(self, at: float, n: int, gpu: int) -> list[Signal]:
        return self._with_teardown(at, n, gpu, 48, "DBE (double bit error)")

    def _sram(self, at: float, n: int, gpu: int) -> list[Signal]:
        return self._with_teardown(at, n, gpu, 95, "uncontained ECC error")

    def _with_teardown(self, at: float, n: int, gpu: int, code: int,
                       detail: str) -> list[Signal]:
        node, job = node_name(n), self.job()
        return [_xid(at, node, gpu, code, detail, job=job),
                _xid(at + 1.0, node, gpu, 45, "preemptive cleanup", job=job)]

    def _gsp(self, at: float, n: int, gpu: int) -> list[Signal]:
        return [_xid(at, node_name(n), gpu, 119, "GSP RPC timeout", job=self.job())]

    def _sdc(self, at: float, n: int, gpu: int) -> list[Signal]:
        every = self.shape.sdc_every_s
        return [_xid(at + k * every, node_name(n), gpu, 13, "graphics engine exception",
                     job=self.job()) for k in range(self.shape.sdc_jobs)]

    def _thermal(self, at: float, n: int, gpu: int) -> list[Signal]:
        every = self.shape.thermal_every_s
        count = max(1, int(self.shape.thermal_s // every))
        return [Signal(at + k * every, node_name(n), SignalKind.THERMAL, gpu=gpu,
                       value=95.0 + min(k, 10) * 0.5, detail="over slowdown temperature",
                       source="telemetry") for k in range(count)]

    def _host(self, at: float, n: int, gpu: int) -> list[Signal]:
        every = self.shape.report_every_s
        count = max(1, int(self.shape.silence_s // every))
        return [Signal(at + k * every, node_name(n), SignalKind.UNREACHABLE,
                       value=k * every, detail="no report", source="telemetry")
                for k in range(1, count + 1)]

    def _network(self, at: float, n: int, gpu: int) -> list[Signal]:
        if self.rng.random() < self.shape.network_unreachable_share:
            return self._host(at, n, gpu)
        return [Signal(at + k * 60.0, node_name(n), SignalKind.PCIE,
                       value=float(self.rng.integers(50, 500)), detail="NIC link errors",
                       source="telemetry") for k in range(5)]

    def _app(self, at: float, n: int, gpu: int) -> list[Signal]:
        code = 13 if self.rng.random() < 0.5 else 31
        return [_xid(at, node_name(n), gpu, code, _APP_DETAIL[code], job=self.job())]

    def _watchdog(self, at: float, n: int, gpu: int) -> list[Signal]:
        return [_xid(at, node_name(n), gpu, 13, _APP_DETAIL[13], job=self.job())]

    # -- noise --

    def noise(self, noise: Noise, horizon_s: float) -> list[TracedFault]:
        units = self.nodes * self.gpus
        out: list[TracedFault] = []
        for kind, rate in (("app", noise.app_xid_per_gpu_day),
                           ("remap", noise.remap_per_gpu_day),
                           ("sbe", noise.sbe_per_gpu_day)):
            count = int(self.rng.poisson(rate * units * horizon_s / DAY_S))
            at = self.rng.uniform(0.0, horizon_s, count)
            unit = self.rng.integers(0, units, count)
            for t, u in zip(at.tolist(), unit.tolist(), strict=True):
                out.append(self._noise_item(kind, t, u // self.gpus, u % self.gpus))
        return out

    def _noise_item(self, kind: str, at: float, n: int, gpu: int) -> TracedFault:
        node = node_name(n)
        remedy = Remedy.NONE
        if kind == "app":
            code = int(self.rng.choice(_NOISE_APP_XIDS))
            signal = _xid(at, node, gpu, code, _APP_DETAIL[code], job=self.job())
            remedy = Remedy.NONE if code == 43 else Remedy.RESTART_APP
            cause = f"noise: xid {code}"
        elif kind == "remap":
            signal = _xid(at, node, gpu, 63, "row remapping event")
            cause = "noise: xid 63"
        else:
            signal = Signal(at, node, SignalKind.ECC_SBE, gpu=gpu,
                            value=float(self.rng.integers(1, 20)), source="telemetry")
            cause = "noise: corrected ECC"
        return TracedFault(None, (signal,), False, node, gpu, at, remedy, at, cause)


_NOISE_APP_XIDS = (13, 31, 43)
_APP_DETAIL = {13: "graphics engine exception", 31: "MMU fault",
               43: "reset channel verification error"}


def _xid(at: float, node: str, gpu: int, code: int, detail: str, *, job: str | None = None,
         peer: str | None = None) -> Signal:
    return Signal(at, node, SignalKind.XID, gpu=gpu, code=code, job=job, peer=peer,
                  detail=detail, source="kernel-log")


def _check_noise(noise: Noise) -> None:
    for name in ("app_xid_per_gpu_day", "remap_per_gpu_day", "sbe_per_gpu_day"):
        rate = getattr(noise, name)
        if not np.isfinite(rate) or rate < 0:
            raise Invalid(f"noise rate {name} = {rate}", hint="rates are 0 or more per GPU-day")
