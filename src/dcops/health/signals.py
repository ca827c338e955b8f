"""Signals from telemetry batches and from the NVIDIA driver's kernel-log lines.

`TelemetrySignals` watches the fault series of the GPU and host collectors (names as the
NVML backend and the simulated fleet write them) and turns them into `Signal`s:

- counters (`dcops_gpu_xid_errors_total{xid}`, `dcops_gpu_ecc_uncorrected_errors_total`,
  `dcops_gpu_ecc_corrected_errors_total`, `dcops_gpu_nvlink_errors_total{link,counter}`,
  `dcops_gpu_pcie_replay_total`): one signal per increase, `value` the increase. A series'
  first sighting is a baseline, not an increase, so a restart of dcops does not replay every
  lifetime count as a fresh fault; except that a series first seen with a value above 0 on a
  node already seen in an earlier batch counts its value as an increase, because collectors
  create an Xid series only when the first such Xid happens. A counter that goes down was
  reset (driver reload): its new value is the baseline.
- NVLink counters: only those in `nvlink_counters` (default "recovery": link retraining);
  replay and CRC counts rise slowly on healthy links. A series without a `counter` label (the
  simulated fleet) always counts.
- gauges: `dcops_gpu_remapped_rows_failed` going to 1 is a row remap failure;
  `dcops_gpu_throttle_active{reason}` at 1 is a thermal signal (sw/hw thermal slowdown) or a
  power signal (hardware power brake) on every sample while active, so the diagnoser can
  judge how sustained it is; the power-cap reason is ordinary at full load and is ignored;
  `dcops_gpu_temperature_celsius` over `temperature_limit_c` is a thermal signal too.
- `dcops_host_disk_free_bytes` / `dcops_host_disk_total_bytes` per mount: a DISK_FULL signal
  (value: the free fraction) when a mount goes under `disk_free_fraction`, and another when
  it comes back over.

Only series with these names are looked at: a batch of other series costs one dictionary
look-up per distinct series.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dcops.core.errors import Invalid
from dcops.health.model import Signal, SignalKind
from dcops.health.recovery import recovery_text
from dcops.telemetry.model import Batch, Labels, metric_name

THERMAL_REASONS = frozenset({"sw_thermal_slowdown", "hw_thermal_slowdown"})
POWER_REASONS = frozenset({"hw_power_brake_slowdown"})
COUNTERS = {
    "dcops_gpu_xid_errors_total": SignalKind.XID,
    "dcops_gpu_ecc_uncorrected_errors_total": SignalKind.ECC_DBE,
    "dcops_gpu_ecc_corrected_errors_total": SignalKind.ECC_SBE,
    "dcops_gpu_nvlink_errors_total": SignalKind.NVLINK,
    "dcops_gpu_pcie_replay_total": SignalKind.PCIE,
}
GAUGES = ("dcops_gpu_remapped_rows_failed", "dcops_gpu_throttle_active",
          "dcops_gpu_temperature_celsius", "dcops_host_disk_free_bytes",
          "dcops_host_disk_total_bytes")


@dataclass(frozen=True, slots=True)
class _Series:
    """A fault series, parsed once: its name, node, GPU index and other labels."""

    name: str
    node: str
    gpu: int | None
    labels: dict[str, str]


class TelemetrySignals:
    """Turns telemetry batches into health signals (see the module docstring)."""

    def __init__(self, *, temperature_limit_c: float = 90.0, disk_free_fraction: float = 0.05,
                 nvlink_counters: frozenset[str] = frozenset({"recovery"}),
                 source: str = "telemetry") -> None:
        self.temperature_limit_c = temperature_limit_c
        self.disk_free_fraction = disk_free_fraction
        self.nvlink_counters = nvlink_counters
        self.source = source
        self._watched = frozenset(COUNTERS) | frozenset(GAUGES)
        self._series: dict[Labels, _Series | None] = {}
        self._last: dict[Labels, float] = {}
        self._known_nodes: set[str] = set()
        self._disk: dict[tuple[str, str], list[float]] = {}
        self._disk_low: set[tuple[str, str]] = set()
        self._handlers: dict[str, Callable[[_Series, Labels, float, float], Signal | None]] = {
            "dcops_gpu_remapped_rows_failed": self._remap,
            "dcops_gpu_throttle_active": self._throttle,
            "dcops_gpu_temperature_celsius": self._temperature,
        }

    def feed(self, batch: Batch) -> list[Signal]:
        """The signals in one batch, in sample order (disk signals last)."""
        wanted = [self._parse(labels) for labels in batch.labels]
        if not any(wanted):
            return []
        out: list[Signal] = []
        nodes: set[str] = set()
        disks: set[tuple[str, str]] = set()
        for index, ts_ms, value in zip(batch.series_index, batch.ts_ms, batch.values,
                                       strict=True):
            series = wanted[index]
            if series is None:
                continue
            nodes.add(series.node)
            signal = self._sample(series, batch.labels[index], ts_ms / 1000.0, value, disks)
            if signal is not None:
                out.append(signal)
        out.extend(self._disk_signals(disks, batch))
        self._known_nodes |= nodes
        return out

    def _parse(self, labels: Labels) -> _Series | None:
        if not labels:
            return None
        first = labels[0]
        name = first[1] if first[0] == "__name__" else metric_name(labels)
        if name not in self._watched:
            return None
        if labels in self._series:
            return self._series[labels]
        pairs = dict(labels)
        raw_gpu = pairs.get("gpu", "")
        gpu = int(raw_gpu) if raw_gpu.isdigit() else None
        node = pairs.get("node", "")
        series = _Series(name, node, gpu, pairs) if node else None
        self._series[labels] = series
        return series

    def _sample(self, series: _Series, labels: Labels, at: float, value: float,
                disks: set[tuple[str, str]]) -> Signal | None:
        kind = COUNTERS.get(series.name)
        if kind is not None:
            return self._counter(series, labels, kind, at, value)
        if series.name.startswith("dcops_host_disk_"):
            key = (series.node, series.labels.get("mountpoint", "/"))
            slot = 0 if series.name == "dcops_host_disk_free_bytes" else 1
            self._disk.setdefault(key, [float("nan"), float("nan")])[slot] = value
            disks.add(key)
            return None
        return self._handlers[series.name](series, labels, at, value)

    def _counter(self, series: _Series, labels: Labels, kind: SignalKind, at: float,
                 value: float) -> Signal | None:
        last = self._last.get(labels)
        self._last[labels] = value
        if last is None:
            if value <= 0 or series.node not in self._known_nodes:
                return None
            delta = value
        elif value <= last:
            return None
        else:
            delta = value - last
        code: int | None = None
        detail = ""
        if kind is SignalKind.XID:
            raw = series.labels.get("xid", "")
            code = int(raw) if raw.isdigit() else None
        elif kind is SignalKind.NVLINK:
            counter = series.labels.get("counter")
            if counter is not None and counter not in self.nvlink_counters:
                return None
            detail = f"link {series.labels.get('link', '?')} {counter or 'errors'}"
        return Signal(at, series.node, kind, gpu=series.gpu, code=code, value=delta,
                      detail=detail, source=self.source)

    def _remap(self, series: _Series, labels: Labels, at: float, value: float) -> Signal | None:
        last = self._last.get(labels, 0.0)
        self._last[labels] = value
        if value >= 1 and last < 1:
            return Signal(at, series.node, SignalKind.ROW_REMAP_FAILURE, gpu=series.gpu,
                          source=self.source)
        return None

    def _throttle(self, series: _Series, labels: Labels, at: float,
                  value: float) -> Signal | None:
        if value < 1:
            return None
        reason = series.labels.get("reason", "")
        if reason in THERMAL_REASONS:
            kind = SignalKind.THERMAL
        elif reason in POWER_REASONS:
            kind = SignalKind.POWER
        else:
            return None
        return Signal(at, series.node, kind, gpu=series.gpu, value=0.0, detail=reason,
                      source=self.source)

    def _temperature(self, series: _Series, labels: Labels, at: float,
                     value: float) -> Signal | None:
        if value <= self.temperature_limit_c:
            return None
        return Signal(at, series.node, SignalKind.THERMAL, gpu=series.gpu, value=value,
                      detail=f"over {self.temperature_limit_c:g} C", source=self.source)

    def _disk_signals(self, keys: set[tuple[str, str]], batch: Batch) -> list[Signal]:
        at = max(batch.ts_ms) / 1000.0 if batch.ts_ms else 0.0
        out: list[Signal] = []
        for key in sorted(keys):
            free, total = self._disk[key]
            if not total > 0 or free != free:  # unknown yet (NaN) or no size
                continue
            fraction = free / total
            low = fraction < self.disk_free_fraction
            if low != (key in self._disk_low):
                (self._disk_low.add if low else self._disk_low.discard)(key)
                out.append(Signal(at, key[0], SignalKind.DISK_FULL, value=fraction,
                                  detail=key[1], source=self.source))
        return out


_XID_LINE_RE = re.compile(
    r"NVRM: Xid \((?:PCI:)?(?P<pci>[0-9A-Fa-f:.]+)\): (?P<xid>[^,\s]+)\s*(?:,\s*(?P<rest>.*))?$")
_PID_RE = re.compile(r"^pid=(?P<pid>'[^']*'|[^,]*),\s*name=(?P<name>[^,]*),\s*(?P<text>.*)$")


def pci_key(bus_id: str) -> str:
    """A PCI address as "dddd:bb:dd", however written: the kernel's "0000:3b:00", NVML's
    "00000000:3B:00.0", or "3b:00" (domain 0). Unparseable text is returned lower-cased."""
    text = bus_id.strip().lower().removeprefix("pci:").split(".")[0]
    parts = text.split(":")
    if len(parts) == 2:
        parts = ["0", *parts]
    try:
        domain, bus, device = (int(p, 16) for p in parts)
    except ValueError:
        return text
    return f"{domain:04x}:{bus:02x}:{device:02x}"


def parse_kernel_log(line: str, gpus: Mapping[str, int], *, node: str, at: float,
                     jobs: Mapping[int, str] | None = None) -> Signal | None:
    """The Xid signal in one kernel-log line, or None when the line is not an Xid report.

    `gpus` maps PCI bus ids (any form `pci_key` reads) to GPU indices; an id not in it gives
    a node-level signal whose detail says so. `jobs` maps process ids to job ids, where the
    caller knows them. The signal's detail is the driver's text (for Xid 154, the recovery
    action it states: "Node Reboot Required"). A line whose Xid is not a number is Invalid.
    """
    match = _XID_LINE_RE.search(line.rstrip())
    if match is None:
        return None
    raw = match.group("xid")
    if not raw.isdigit():
        raise Invalid(f"Xid {raw!r} is not a number", where=f"kernel log of {node}",
                      hint="expected 'NVRM: Xid (PCI:dddd:bb:dd): N, ...'")
    code = int(raw)
    rest = (match.group("rest") or "").strip()
    pid: int | None = None
    process = _PID_RE.match(rest)
    if process is not None:
        rest = process.group("text").strip()
        raw_pid = process.group("pid").strip("'")
        pid = int(raw_pid) if raw_pid.isdigit() else None
    pci = pci_key(match.group("pci"))
    index = {pci_key(k): v for k, v in gpus.items()}.get(pci)
    detail = recovery_text(rest) if code == 154 else rest
    if index is None:
        detail = f"{detail} (PCI {pci} not in the GPU map)".strip()
    job = jobs.get(pid) if jobs is not None and pid is not None else None
    return Signal(at, node, SignalKind.XID, gpu=index, code=code, job=job, detail=detail,
                  source="kernel-log")
