"""The NVML GPU collector, on recorded answers of an 8 x H100 node (and on a real GPU if any)."""

from __future__ import annotations

import copy
import json
import logging

import pynvml
import pytest

from dcops.backends.nvml import GpuInfo, NvmlCollector, XidEvent
from dcops.telemetry.model import Batch, labels_dict, metric_name
from tests.agent.recorded_nvml import H100_NODE, RecordedNvml

NODE = "gpu-node-17"
TS = 1_700_000_000_000


def samples(batch: Batch, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of metric `name`, keyed by their labels minus node/uuid/model/__name__."""
    out = {}
    for labels, ts, value in batch.samples():
        if metric_name(labels) != name:
            continue
        assert ts == TS
        key = tuple((k, v) for k, v in labels if k not in ("__name__", "node", "uuid", "model"))
        out[key] = value
    return out


def value(batch: Batch, name: str, **labels: str) -> float:
    matches = [v for k, v in samples(batch, name).items() if dict(k) == labels]
    assert len(matches) == 1, f"{name}{labels}: {len(matches)} samples"
    return matches[0]


@pytest.fixture
def nvml() -> RecordedNvml:
    return RecordedNvml(H100_NODE)


@pytest.fixture
def collector(nvml: RecordedNvml) -> NvmlCollector:
    opened = NvmlCollector.open(nvml)
    assert opened is not None
    return opened


def collect(collector: NvmlCollector) -> tuple[Batch, list[XidEvent]]:
    batch = Batch()
    events = collector.collect(batch, TS, NODE)
    return batch, events


def test_inventory_lists_eight_h100s_and_registers_xid_events(
        collector: NvmlCollector, nvml: RecordedNvml) -> None:
    gpus = collector.inventory()
    assert [g.index for g in gpus] == list(range(8))
    assert gpus[0] == GpuInfo(0, "GPU-5c1f2a6e-0b9d-4f3e-9a41-6d2b8e0c7f11",
                              "NVIDIA H100 80GB HBM3")
    assert gpus[0].to_push() == {"index": 0, "uuid": gpus[0].uuid, "model": gpus[0].model}
    assert nvml.registered == list(range(8))


def test_every_sample_has_node_gpu_uuid_model_labels(collector: NvmlCollector) -> None:
    batch, _ = collect(collector)
    uuids = {g.index: g.uuid for g in collector.inventory()}
    assert len(batch) > 8 * 20
    for labels in batch.labels:
        names = labels_dict(labels)
        assert names["node"] == NODE
        assert names["model"] == "NVIDIA H100 80GB HBM3"
        assert names["uuid"] == uuids[int(names["gpu"])]


def test_core_gauges_match_the_recording(collector: NvmlCollector) -> None:
    batch, _ = collect(collector)
    assert value(batch, "dcops_gpu_utilization_percent", gpu="0") == 97
    assert value(batch, "dcops_gpu_memory_utilization_percent", gpu="0") == 64
    assert value(batch, "dcops_gpu_memory_used_bytes", gpu="0") == 78123417600
    assert value(batch, "dcops_gpu_memory_total_bytes", gpu="3") == 85520809984
    assert value(batch, "dcops_gpu_temperature_celsius", gpu="6") == 68
    assert value(batch, "dcops_gpu_power_watts", gpu="0") == pytest.approx(612.345)
    assert value(batch, "dcops_gpu_power_limit_watts", gpu="0") == 700
    assert value(batch, "dcops_gpu_sm_clock_hertz", gpu="4") == 1755e6
    assert value(batch, "dcops_gpu_memory_clock_hertz", gpu="4") == 2619e6
    assert set(samples(batch, "dcops_gpu_up").values()) == {1.0}


def test_ecc_and_row_remapping(collector: NvmlCollector) -> None:
    batch, _ = collect(collector)
    corrected, uncorrected = ("dcops_gpu_ecc_corrected_errors", "dcops_gpu_ecc_uncorrected_errors")
    assert value(batch, f"{corrected}_since_reset_total", gpu="2") == 3
    assert value(batch, f"{corrected}_total", gpu="2") == 12
    assert value(batch, f"{uncorrected}_total", gpu="5") == 1
    assert value(batch, f"{uncorrected}_since_reset_total", gpu="0") == 0
    for name in (corrected, uncorrected):
        assert len(samples(batch, f"{name}_total")) == 8
        assert len(samples(batch, f"{name}_since_reset_total")) == 8
    assert value(batch, "dcops_gpu_remapped_rows", gpu="2", cause="correctable") == 1
    assert value(batch, "dcops_gpu_remapped_rows_pending", gpu="2") == 0
    # H100 has no page retirement (NotSupported): no series at all, no error.
    assert samples(batch, "dcops_gpu_retired_pages") == {}
    assert samples(batch, "dcops_gpu_retired_pages_pending") == {}


def test_throttle_reasons_one_gauge_per_reason(collector: NvmlCollector) -> None:
    batch, _ = collect(collector)
    reasons = "dcops_gpu_throttle_active"
    assert len(samples(batch, reasons)) == 8 * 9
    assert value(batch, reasons, gpu="4", reason="sw_power_cap") == 1
    assert value(batch, reasons, gpu="4", reason="hw_slowdown") == 0
    hot = {dict(k)["reason"] for k, v in samples(batch, reasons).items()
           if dict(k)["gpu"] == "6" and v == 1}
    assert hot == {"sw_thermal_slowdown", "hw_thermal_slowdown"}
    assert value(batch, reasons, gpu="7", reason="gpu_idle") == 1


def test_nvlink_and_pcie(collector: NvmlCollector) -> None:
    batch, _ = collect(collector)
    up = samples(batch, "dcops_gpu_nvlink_up")
    assert len(up) == 8 * 18
    assert value(batch, "dcops_gpu_nvlink_up", gpu="1", link="7") == 0
    assert value(batch, "dcops_gpu_nvlink_up", gpu="1", link="6") == 1
    errors = "dcops_gpu_nvlink_errors_total"
    assert value(batch, errors, gpu="1", link="3", counter="replay") == 12
    assert value(batch, errors, gpu="1", link="3", counter="crc_flit") == 3
    assert {dict(k)["counter"] for k in samples(batch, errors)} == {
        "replay", "recovery", "crc_flit", "crc_data"}  # ecc_data is NotSupported
    assert value(batch, "dcops_gpu_pcie_replay_total", gpu="3") == 17
    assert "7" not in {dict(k)["gpu"] for k in samples(batch, "dcops_gpu_pcie_replay_total")}


def test_xid_79_is_counted_once_and_returned_as_an_event(collector: NvmlCollector) -> None:
    first, events = collect(collector)
    assert events == []
    assert samples(first, "dcops_gpu_xid_errors_total") == {}
    second, events = collect(collector)
    assert events == [XidEvent(gpu=5, uuid=collector.inventory()[5].uuid, xid=79, ts_ms=TS)]
    assert samples(second, "dcops_gpu_xid_errors_total") == {(("gpu", "5"), ("xid", "79")): 1}
    third, events = collect(collector)
    assert events == []
    assert samples(third, "dcops_gpu_xid_errors_total") == {(("gpu", "5"), ("xid", "79")): 1}


def test_unsupported_calls_are_not_asked_again(
        collector: NvmlCollector, nvml: RecordedNvml, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="dcops.backends.nvml")
    collect(collector)
    first = list(nvml.calls)
    nvml.calls.clear()
    collect(collector)
    second = nvml.calls
    assert sum("nvmlDeviceGetRetiredPages/" in c for c in first) == 16
    assert not any("nvmlDeviceGetRetiredPages" in c for c in second)
    assert any("NvLinkState/35" in c for c in first)
    assert not any("NvLinkState/18" in c for c in second)  # absent links are remembered
    assert not any(c.endswith("ErrorCounter/0/4") for c in second)
    assert len(second) < len(first)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["gpu 5 (GPU-3f4a5b6c-7d8e-4f9a-b0c1-d2e3f4a5b655): Xid 79"]


@pytest.mark.parametrize("error", ["LIBRARY_NOT_FOUND", "DRIVER_NOT_LOADED"])
def test_no_driver_skips_gpu_collection_with_one_info_line(
        error: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="dcops.backends.nvml")
    assert NvmlCollector.open(RecordedNvml(H100_NODE, init_error=error)) is None
    records = [r for r in caplog.records if r.name == "dcops.backends.nvml"]
    assert [r.levelno for r in records] == [logging.INFO]
    assert "no NVIDIA driver" in records[0].getMessage()


def test_zero_gpus_skips_gpu_collection_with_one_info_line(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="dcops.backends.nvml")
    recording = json.loads(H100_NODE.read_text())
    recording["devices"] = []
    nvml = RecordedNvml(recording)
    assert NvmlCollector.open(nvml) is None
    records = [r for r in caplog.records if r.name == "dcops.backends.nvml"]
    assert [r.levelno for r in records] == [logging.INFO]
    assert not nvml.initialised  # shut down again


def test_lost_gpu_reports_down_and_warns_once_per_metric(
        caplog: pytest.LogCaptureFixture) -> None:
    recording = copy.deepcopy(json.loads(H100_NODE.read_text()))
    lost = {"error": "GPU_IS_LOST"}
    recording["devices"][3]["calls"] = {
        f"{fn}{suffix}": lost for fn, suffix in [
            ("nvmlDeviceGetUtilizationRates", ""), ("nvmlDeviceGetMemoryInfo", ""),
            ("nvmlDeviceGetTemperature", "/*"), ("nvmlDeviceGetPowerUsage", "")]}
    collector = NvmlCollector.open(RecordedNvml(recording))
    assert collector is not None
    caplog.set_level(logging.WARNING, logger="dcops.backends.nvml")
    batch, _ = collect(collector)
    assert value(batch, "dcops_gpu_up", gpu="3") == 0
    assert value(batch, "dcops_gpu_up", gpu="2") == 1
    assert samples(batch, "dcops_gpu_temperature_celsius").get((("gpu", "3"),)) is None
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 4
    assert "gpu 3" in failures[0] and "GPU is lost" in failures[0]
    caplog.clear()
    collect(collector)
    assert not [r for r in caplog.records if "failed" in r.getMessage()]


def test_close_shuts_nvml_down(collector: NvmlCollector, nvml: RecordedNvml) -> None:
    assert nvml.initialised
    collector.close()
    assert not nvml.initialised


def test_real_nvml_when_a_gpu_is_present() -> None:
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
    except pynvml.NVMLError as exc:
        pytest.skip(f"no NVIDIA driver or GPU here: {exc}")
    if count == 0:
        pytest.skip("NVML reports no GPUs")
    collector = NvmlCollector.open()
    assert collector is not None
    try:
        batch, _ = collect(collector)
        assert len(collector.inventory()) == count
        assert len(samples(batch, "dcops_gpu_up")) == count
        assert all(0 <= v <= 100 for v in samples(batch, "dcops_gpu_utilization_percent").values())
    finally:
        collector.close()


def test_names_match_the_simulated_fleet(collector: NvmlCollector) -> None:
    """A dashboard or rule written against the demo fleet works on real GPUs, and back."""
    from dcops.simulation.fleet import SimulatedFleet

    batch, _ = collect(collector)
    real = {metric_name(labels) for labels in batch.labels}
    simulated = {metric_name(labels)
                 for labels in SimulatedFleet(racks=1, nodes_per_rack=1).tick(0).labels
                 if metric_name(labels).startswith("dcops_gpu_")}
    assert simulated <= real, simulated - real
