"""GPU metrics from NVIDIA's management library (NVML, through nvidia-ml-py's ``pynvml``).

`NvmlCollector.open(nvml)` takes the nvml module as a parameter: production passes nothing
and gets the real ``pynvml``; tests pass an object that replays recorded NVML responses.

Every sample is labelled ``node``, ``gpu`` (index), ``uuid`` and ``model``. A call a device
does not support (``NVMLError_NotSupported``) is skipped quietly for that metric and never
asked again; with no driver, no library or no GPU, `open` logs one INFO line and returns None.
Xid errors arrive through an NVML event set polled without waiting at each collection.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dcops.telemetry.model import Batch, Labels, make_labels

log = logging.getLogger(__name__)

# NVML return codes (stable across driver versions; see nvml.h).
ERROR_INVALID_ARGUMENT = 2
ERROR_NOT_SUPPORTED = 3
ERROR_NOT_FOUND = 6
ERROR_DRIVER_NOT_LOADED = 9
ERROR_TIMEOUT = 10
ERROR_LIBRARY_NOT_FOUND = 12
ERROR_FUNCTION_NOT_FOUND = 13
QUIET_ERRORS = frozenset({ERROR_INVALID_ARGUMENT, ERROR_NOT_SUPPORTED, ERROR_NOT_FOUND,
                          ERROR_FUNCTION_NOT_FOUND})
"""Answers meaning "this device has no such thing": skip the metric for good, say nothing."""
ABSENT_ERRORS = frozenset({ERROR_DRIVER_NOT_LOADED, ERROR_LIBRARY_NOT_FOUND})

EVENT_XID_CRITICAL = 0x8
TEMPERATURE_GPU = 0
CLOCK_SM = 1
CLOCK_MEM = 2
FEATURE_ENABLED = 1
DEFAULT_NVLINK_LINKS = 18
MAX_EVENTS_PER_POLL = 1000

ECC_COUNTERS = (("corrected", 0, "volatile", 0), ("corrected", 0, "aggregate", 1),
                ("uncorrected", 1, "volatile", 0), ("uncorrected", 1, "aggregate", 1))
"""(error kind, NVML memory error type, scope, NVML ECC counter type).

The lifetime (aggregate) count is ``dcops_gpu_ecc_<kind>_errors_total``; the count since
the last driver reload (volatile) is ``dcops_gpu_ecc_<kind>_errors_since_reset_total``.
"""
RETIREMENT_CAUSES = (("single_bit", 0), ("double_bit", 1))
THROTTLE_REASONS = (
    ("gpu_idle", 0x1), ("applications_clocks_setting", 0x2), ("sw_power_cap", 0x4),
    ("hw_slowdown", 0x8), ("sync_boost", 0x10), ("sw_thermal_slowdown", 0x20),
    ("hw_thermal_slowdown", 0x40), ("hw_power_brake_slowdown", 0x80),
    ("display_clock_setting", 0x100),
)
"""Clock event (throttle) reasons: label and bit in nvmlDeviceGetCurrentClocksEventReasons."""
NVLINK_COUNTERS = (("replay", 0), ("recovery", 1), ("crc_flit", 2), ("crc_data", 3),
                   ("ecc_data", 4))


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """One GPU in a server, as the fleet inventory records it."""

    index: int
    uuid: str
    model: str

    def to_push(self) -> dict[str, Any]:
        """The entry for the push body's ``gpus`` list."""
        return {"index": self.index, "uuid": self.uuid, "model": self.model}


@dataclass(frozen=True, slots=True)
class XidEvent:
    """One Xid error the NVIDIA driver reported for a GPU (e.g. 79: fallen off the bus)."""

    gpu: int
    uuid: str
    xid: int
    ts_ms: int


class _AddSample(Protocol):
    def __call__(self, name: str, value: float, extra: Mapping[str, str] | None = None) -> None:
        ...


@dataclass(slots=True)
class _Device:
    info: GpuInfo
    handle: Any
    labels: dict[str, str]
    unsupported: set[str] = field(default_factory=set)
    warned: set[str] = field(default_factory=set)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


class NvmlCollector:
    """Reads every GPU of this host through NVML; one `collect()` per agent interval."""

    def __init__(self, nvml: Any, devices: list[_Device]) -> None:
        self._nvml = nvml
        self._devices = devices
        self._by_index = {d.info.index: d for d in devices}
        self._labels: dict[tuple[str, str, tuple[tuple[str, str], ...]], Labels] = {}
        self._xid_counts: dict[tuple[int, int], int] = {}
        self._event_set: Any = None
        self._max_links = int(getattr(nvml, "NVML_NVLINK_MAX_LINKS", DEFAULT_NVLINK_LINKS))
        self._reasons_fn = ("nvmlDeviceGetCurrentClocksEventReasons"
                            if hasattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons")
                            else "nvmlDeviceGetCurrentClocksThrottleReasons")

    @classmethod
    def open(cls, nvml: Any | None = None) -> NvmlCollector | None:
        """Initialise NVML and list the GPUs; None (after one INFO line) when there are none."""
        if nvml is None:
            try:
                import pynvml
            except ImportError:
                log.info("GPU collection off: nvidia-ml-py (pynvml) is not installed")
                return None
            nvml = pynvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            if _code(exc) in ABSENT_ERRORS:
                log.info("GPU collection off: no NVIDIA driver on this host (%s)", exc)
            else:
                log.warning("GPU collection off: NVML failed to start: %s", exc)
            return None
        try:
            devices = cls._list_devices(nvml)
        except nvml.NVMLError as exc:
            log.warning("GPU collection off: NVML cannot list GPUs: %s", exc)
            devices = []
        if not devices:
            log.info("GPU collection off: NVML reports no GPUs on this host")
            cls._shutdown(nvml)
            return None
        collector = cls(nvml, devices)
        collector._register_events()
        log.info("GPU collection on: %d x %s", len(devices), devices[0].info.model)
        return collector

    @staticmethod
    def _list_devices(nvml: Any) -> list[_Device]:
        devices = []
        for i in range(int(nvml.nvmlDeviceGetCount())):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
                info = GpuInfo(i, _text(nvml.nvmlDeviceGetUUID(handle)),
                               _text(nvml.nvmlDeviceGetName(handle)))
            except nvml.NVMLError as exc:
                log.warning("gpu %d: skipped, NVML cannot open it: %s", i, exc)
                continue
            labels = {"gpu": str(i), "uuid": info.uuid, "model": info.model}
            devices.append(_Device(info, handle, labels))
        return devices

    @staticmethod
    def _shutdown(nvml: Any) -> None:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError as exc:
            log.debug("nvmlShutdown failed: %s", exc)

    def _register_events(self) -> None:
        nvml = self._nvml
        try:
            self._event_set = nvml.nvmlEventSetCreate()
        except nvml.NVMLError as exc:
            log.warning("Xid events off: cannot create an NVML event set: %s", exc)
            return
        for dev in self._devices:
            try:
                nvml.nvmlDeviceRegisterEvents(dev.handle, EVENT_XID_CRITICAL, self._event_set)
            except nvml.NVMLError as exc:
                log.debug("gpu %d: Xid events not available: %s", dev.info.index, exc)

    def inventory(self) -> list[GpuInfo]:
        """The GPUs found at start, in index order."""
        return [d.info for d in self._devices]

    def close(self) -> None:
        """Release the event set and NVML."""
        if self._event_set is not None:
            try:
                self._nvml.nvmlEventSetFree(self._event_set)
            except self._nvml.NVMLError as exc:
                log.debug("nvmlEventSetFree failed: %s", exc)
            self._event_set = None
        self._shutdown(self._nvml)

    # -- collection ---------------------------------------------------------------------

    def collect(self, batch: Batch, ts_ms: int, node: str) -> list[XidEvent]:
        """Add one sample of every supported GPU metric to `batch`; return new Xid events."""
        for dev in self._devices:
            ok = self._collect_device(dev, batch, ts_ms, node)
            self._add(batch, ts_ms, node, dev, "dcops_gpu_up", 1.0 if ok else 0.0)
        events = self._poll_events(ts_ms)
        for (index, xid), count in sorted(self._xid_counts.items()):
            dev = self._by_index[index]
            self._add(batch, ts_ms, node, dev, "dcops_gpu_xid_errors_total", count,
                      {"xid": str(xid)})
        return events

    def _add(self, batch: Batch, ts_ms: int, node: str, dev: _Device, name: str,
             value: float, extra: Mapping[str, str] | None = None) -> None:
        if not math.isfinite(value):
            return
        items = tuple(extra.items()) if extra else ()
        key = (name, dev.labels["gpu"], items)
        labels = self._labels.get(key)
        if labels is None:
            labels = make_labels(name, {"node": node, **dev.labels, **dict(items)})
            self._labels[key] = labels
        batch.add(labels, ts_ms, float(value))

    def _call(self, dev: _Device, key: str, fn_name: str, *args: Any) -> Any:
        """One NVML query for `dev`; None when unsupported (remembered) or failing (warned once)."""
        if key in dev.unsupported:
            return None
        fn = getattr(self._nvml, fn_name, None)
        if fn is None:
            dev.unsupported.add(key)
            return None
        try:
            result = fn(dev.handle, *args)
        except self._nvml.NVMLError as exc:
            if _code(exc) in QUIET_ERRORS:
                dev.unsupported.add(key)
                log.debug("gpu %d: %s not supported: %s", dev.info.index, key, exc)
            elif key not in dev.warned:
                dev.warned.add(key)
                log.warning("gpu %d (%s): reading %s failed: %s", dev.info.index,
                            dev.info.uuid, key, exc)
            return None
        dev.warned.discard(key)
        return result

    def _collect_device(self, dev: _Device, batch: Batch, ts_ms: int, node: str) -> bool:
        """Read one GPU; False when not even utilization or memory could be read."""

        def add(name: str, value: float, extra: Mapping[str, str] | None = None) -> None:
            self._add(batch, ts_ms, node, dev, name, value, extra)

        util = self._call(dev, "utilization", "nvmlDeviceGetUtilizationRates")
        if util is not None:
            add("dcops_gpu_utilization_percent", util.gpu)
            add("dcops_gpu_memory_utilization_percent", util.memory)
        mem = self._call(dev, "memory", "nvmlDeviceGetMemoryInfo")
        if mem is not None:
            add("dcops_gpu_memory_used_bytes", mem.used)
            add("dcops_gpu_memory_total_bytes", mem.total)
        temp = self._call(dev, "temperature", "nvmlDeviceGetTemperature", TEMPERATURE_GPU)
        if temp is not None:
            add("dcops_gpu_temperature_celsius", temp)
        power = self._call(dev, "power", "nvmlDeviceGetPowerUsage")
        if power is not None:
            add("dcops_gpu_power_watts", power / 1000.0)
        limit = self._call(dev, "power_limit", "nvmlDeviceGetEnforcedPowerLimit")
        if limit is not None:
            add("dcops_gpu_power_limit_watts", limit / 1000.0)
        for clock_name, clock_id in (("sm", CLOCK_SM), ("memory", CLOCK_MEM)):
            mhz = self._call(dev, f"clock_{clock_name}", "nvmlDeviceGetClockInfo", clock_id)
            if mhz is not None:
                add(f"dcops_gpu_{clock_name}_clock_hertz", mhz * 1e6)
        self._collect_memory_health(dev, add)
        reasons = self._call(dev, "clock_event_reasons", self._reasons_fn)
        if reasons is not None:
            for reason, bit in THROTTLE_REASONS:
                add("dcops_gpu_throttle_active", 1.0 if int(reasons) & bit else 0.0,
                    {"reason": reason})
        replays = self._call(dev, "pcie_replay", "nvmlDeviceGetPcieReplayCounter")
        if replays is not None:
            add("dcops_gpu_pcie_replay_total", replays)
        self._collect_nvlink(dev, add)
        return util is not None or mem is not None

    def _collect_memory_health(self, dev: _Device, add: _AddSample) -> None:
        for error, error_type, scope, counter_type in ECC_COUNTERS:
            count = self._call(dev, f"ecc_{error}_{scope}", "nvmlDeviceGetTotalEccErrors",
                               error_type, counter_type)
            if count is not None:
                suffix = "total" if scope == "aggregate" else "since_reset_total"
                add(f"dcops_gpu_ecc_{error}_errors_{suffix}", count)
        for cause, cause_id in RETIREMENT_CAUSES:
            pages = self._call(dev, f"retired_{cause}", "nvmlDeviceGetRetiredPages", cause_id)
            if pages is not None:
                add("dcops_gpu_retired_pages", len(pages), {"cause": cause})
        pending = self._call(dev, "retired_pending", "nvmlDeviceGetRetiredPagesPendingStatus")
        if pending is not None:
            add("dcops_gpu_retired_pages_pending", 1.0 if pending == FEATURE_ENABLED else 0.0)
        rows = self._call(dev, "remapped_rows", "nvmlDeviceGetRemappedRows")
        if rows is not None:
            correctable, uncorrectable, is_pending, failed = rows
            add("dcops_gpu_remapped_rows", correctable, {"cause": "correctable"})
            add("dcops_gpu_remapped_rows", uncorrectable, {"cause": "uncorrectable"})
            add("dcops_gpu_remapped_rows_pending", 1.0 if is_pending else 0.0)
            add("dcops_gpu_remapped_rows_failed", 1.0 if failed else 0.0)

    def _collect_nvlink(self, dev: _Device, add: _AddSample) -> None:
        for link in range(self._max_links):
            state = self._call(dev, f"nvlink_state_{link}", "nvmlDeviceGetNvLinkState", link)
            if state is None:
                continue
            link_label = str(link)
            add("dcops_gpu_nvlink_up", 1.0 if state == FEATURE_ENABLED else 0.0,
                {"link": link_label})
            for counter, counter_id in NVLINK_COUNTERS:
                value = self._call(dev, f"nvlink_errors_{counter}",
                                   "nvmlDeviceGetNvLinkErrorCounter", link, counter_id)
                if value is not None:
                    add("dcops_gpu_nvlink_errors_total", value,
                        {"link": link_label, "counter": counter})

    def _poll_events(self, ts_ms: int) -> list[XidEvent]:
        """Drain the event set without waiting; count and log each Xid."""
        if self._event_set is None:
            return []
        nvml = self._nvml
        events: list[XidEvent] = []
        for _ in range(MAX_EVENTS_PER_POLL):
            try:
                data = nvml.nvmlEventSetWait(self._event_set, 0)
            except nvml.NVMLError as exc:
                if _code(exc) != ERROR_TIMEOUT:
                    log.warning("Xid event poll failed: %s", exc)
                break
            if not int(data.eventType) & EVENT_XID_CRITICAL:
                continue
            dev = self._device_of(data.device)
            if dev is None:
                continue
            event = XidEvent(dev.info.index, dev.info.uuid, int(data.eventData), ts_ms)
            key = (event.gpu, event.xid)
            self._xid_counts[key] = self._xid_counts.get(key, 0) + 1
            log.warning("gpu %d (%s): Xid %d", event.gpu, event.uuid, event.xid)
            events.append(event)
        return events

    def _device_of(self, handle: Any) -> _Device | None:
        try:
            return self._by_index.get(int(self._nvml.nvmlDeviceGetIndex(handle)))
        except self._nvml.NVMLError as exc:
            log.warning("Xid event for an unknown GPU: %s", exc)
            return None
