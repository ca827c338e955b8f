"""What health diagnosis reads and says: signals from telemetry and events, the health of
each GPU and node, and the evidence behind it.

A `Signal` is one observation (an Xid, an ECC error, a throttle, a node that stopped
answering); the diagnoser turns signals into `Diagnosis` records, each naming the GPU or
node, its `Health`, the `Remedy` the evidence calls for and the signals that led there.
Remediation decides what to do about a diagnosis; this package only says what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Health(StrEnum):
    """How fit a GPU or node is, best first: healthy; suspect (evidence short of a fault:
    keep large jobs off it); degraded (works, with a fault that needs action soon);
    failed (out of service until repaired)."""

    HEALTHY = "healthy"
    SUSPECT = "suspect"
    DEGRADED = "degraded"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return _HEALTH_ORDER.index(self)

    def worse(self, other: Health) -> Health:
        """The worse of the two."""
        return self if self.rank >= other.rank else other


_HEALTH_ORDER = (Health.HEALTHY, Health.SUSPECT, Health.DEGRADED, Health.FAILED)


class SignalKind(StrEnum):
    """What a signal reports."""

    XID = "xid"
    """An Xid error from the NVIDIA driver (`code` is the Xid; `detail` the driver's text,
    for Xid 154 the recovery action it states)."""
    ECC_SBE = "ecc_sbe"
    """Corrected (single-bit) ECC errors; `value` is the count since the last signal."""
    ECC_DBE = "ecc_dbe"
    """Uncorrected (double-bit) ECC errors; `value` is the count since the last signal."""
    ROW_REMAP_FAILURE = "row_remap_failure"
    """The GPU could not remap a faulty memory row (no spare rows left)."""
    THERMAL = "thermal"
    """Thermal throttling or a temperature over the limit; `value` is degrees C."""
    POWER = "power"
    """Power-brake or power-cap throttling."""
    NVLINK = "nvlink"
    """NVLink errors; `peer` is the remote end ("node/gpu") where known."""
    PCIE = "pcie"
    """PCIe replay or link errors; `value` is the count since the last signal."""
    UNREACHABLE = "unreachable"
    """The node stopped reporting (agent, scrape or ping); `value` is seconds silent."""
    DISK_FULL = "disk_full"
    """A file system nearly full; `value` is the free fraction, `detail` the mount."""
    CHECK_PASSED = "check_passed"
    """A health re-check of the node (or GPU) came back clean."""
    CHECK_FAILED = "check_failed"
    """A health re-check of the node (or GPU) found a fault; `detail` says which."""


@dataclass(frozen=True, slots=True)
class Signal:
    """One observation about a node or one of its GPUs, at `at` (seconds, Unix time or
    simulated time).

    `gpu` is the GPU index on the node (None: the node as a whole); `code` the Xid;
    `value` a count or measurement (see `SignalKind`); `job` the job running on the GPU
    when the driver names it; `peer` the other end of an NVLink ("node/gpu"); `source`
    where it came from ("telemetry", "kernel-log", "api", "recheck")."""

    at: float
    node: str
    kind: SignalKind
    gpu: int | None = None
    code: int | None = None
    value: float = 1.0
    job: str | None = None
    peer: str | None = None
    detail: str = ""
    source: str = ""


class Remedy(StrEnum):
    """What the evidence calls for, mildest first. Remediation policy maps a remedy to
    actions (drain, requeue, reset, reboot, playbook, incident, notify)."""

    NONE = "none"
    """Nothing: the signal is benign or explained by another (sympathetic)."""
    WATCH = "watch"
    """Keep watching; mark the node suspect so large jobs avoid it."""
    RESTART_APP = "restart_app"
    """The application failed; the hardware is fine: requeue the job."""
    RESET_GPU = "reset_gpu"
    """Drain, reset the GPU, re-check, resume."""
    REBOOT = "reboot"
    """Drain, reboot the node (through its BMC), re-check, resume."""
    REPAIR = "repair"
    """Drain and hand to a technician (reseat, replace, RMA): no automatic resume."""

    @property
    def rank(self) -> int:
        return _REMEDY_ORDER.index(self)


_REMEDY_ORDER = (Remedy.NONE, Remedy.WATCH, Remedy.RESTART_APP, Remedy.RESET_GPU,
                 Remedy.REBOOT, Remedy.REPAIR)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One signal and what the diagnoser made of it ("Xid 45 after Xid 48 on the same
    GPU 3 s earlier: sympathetic, ignored")."""

    signal: Signal
    summary: str
    counted: bool = True
    """False where the signal was explained away (sympathetic, or attributed elsewhere)."""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The diagnoser's finding about one GPU (`gpu` set) or one node (`gpu` None): its
    health, the remedy, the cause in words and the evidence, as of `at`.

    `jobs` are the jobs the signals named (the driver names the process of an Xid)."""

    node: str
    gpu: int | None
    health: Health
    remedy: Remedy
    cause: str
    at: float
    evidence: tuple[Evidence, ...] = ()
    jobs: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        """"node" or "node/gpu"."""
        return self.node if self.gpu is None else f"{self.node}/{self.gpu}"


@dataclass(frozen=True, slots=True)
class GpuHealth:
    """The diagnoser's current view of one GPU in a server: its health, the remedy it calls
    for, the cause in words, when that last changed (`since`) and the latest evidence
    (bounded; oldest first). A GPU with no signals is healthy with cause "no signals"."""

    node: str
    index: int
    health: Health
    remedy: Remedy
    cause: str
    since: float
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeHealth:
    """The diagnoser's current view of one server: the worst of its GPUs and of its own
    node-level findings (unreachable, disk full, a failed re-check), with the cause of that
    worst finding, every GPU it has seen, and its node-level evidence (bounded)."""

    node: str
    health: Health
    remedy: Remedy
    cause: str
    since: float
    gpus: tuple[GpuHealth, ...] = ()
    evidence: tuple[Evidence, ...] = ()
