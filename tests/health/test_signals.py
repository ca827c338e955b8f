"""Signals from telemetry batches and from kernel-log Xid lines."""

from __future__ import annotations

import time

import pytest

from dcops.core.errors import Invalid
from dcops.health.model import SignalKind
from dcops.health.signals import TelemetrySignals, parse_kernel_log, pci_key
from dcops.telemetry.model import Batch, make_labels


def gpu_series(name: str, node: str = "n1", gpu: str = "0", **extra: str) -> tuple[
        tuple[str, str], ...]:
    return make_labels(name, {"node": node, "gpu": gpu, **extra})


def batch(*samples: tuple[tuple[tuple[str, str], ...], int, float]) -> Batch:
    out = Batch()
    for labels, ts_ms, value in samples:
        out.add(labels, ts_ms, value)
    return out


ECC_DBE = gpu_series("dcops_gpu_ecc_uncorrected_errors_total")
XID_79 = gpu_series("dcops_gpu_xid_errors_total", gpu="3", xid="79")


def test_counter_first_sighting_is_a_baseline_and_increases_are_signals() -> None:
    t = TelemetrySignals()
    assert t.feed(batch((ECC_DBE, 1000, 5.0))) == []          # lifetime count, not new
    [signal] = t.feed(batch((ECC_DBE, 2000, 7.0)))
    assert (signal.kind, signal.node, signal.gpu, signal.value, signal.at) == (
        SignalKind.ECC_DBE, "n1", 0, 2.0, 2.0)
    assert t.feed(batch((ECC_DBE, 3000, 7.0))) == []          # no change
    assert t.feed(batch((ECC_DBE, 4000, 1.0))) == []          # reset: new baseline
    assert [s.value for s in t.feed(batch((ECC_DBE, 5000, 2.0)))] == [1.0]


def test_a_new_xid_series_on_a_known_node_counts_its_value() -> None:
    t = TelemetrySignals()
    t.feed(batch((ECC_DBE, 1000, 0.0)))                       # the node is now known
    [signal] = t.feed(batch((ECC_DBE, 2000, 0.0), (XID_79, 2000, 1.0)))
    assert (signal.kind, signal.code, signal.gpu, signal.value) == (SignalKind.XID, 79, 3, 1.0)


def test_series_on_a_node_first_seen_are_baselines() -> None:
    t = TelemetrySignals()
    assert t.feed(batch((XID_79, 1000, 4.0), (ECC_DBE, 1000, 9.0))) == []


def test_nvlink_counters_count_only_the_configured_kinds() -> None:
    t = TelemetrySignals()
    replay = gpu_series("dcops_gpu_nvlink_errors_total", link="2", counter="replay")
    recovery = gpu_series("dcops_gpu_nvlink_errors_total", link="2", counter="recovery")
    plain = gpu_series("dcops_gpu_nvlink_errors_total", gpu="1")
    t.feed(batch((replay, 0, 0.0), (recovery, 0, 0.0), (plain, 0, 0.0)))
    out = t.feed(batch((replay, 1000, 50.0), (recovery, 1000, 1.0), (plain, 1000, 2.0)))
    assert [(s.kind, s.gpu, s.detail, s.value) for s in out] == [
        (SignalKind.NVLINK, 0, "link 2 recovery", 1.0),
        (SignalKind.NVLINK, 1, "link ? errors", 2.0),
    ]


def test_gauges_throttle_temperature_and_remap() -> None:
    t = TelemetrySignals(temperature_limit_c=85)
    thermal = gpu_series("dcops_gpu_throttle_active", reason="hw_thermal_slowdown")
    brake = gpu_series("dcops_gpu_throttle_active", reason="hw_power_brake_slowdown")
    cap = gpu_series("dcops_gpu_throttle_active", reason="sw_power_cap")
    temp = gpu_series("dcops_gpu_temperature_celsius")
    remap = gpu_series("dcops_gpu_remapped_rows_failed")
    out = t.feed(batch((thermal, 0, 1.0), (brake, 0, 1.0), (cap, 0, 1.0), (temp, 0, 88.0),
                       (remap, 0, 0.0)))
    assert [(s.kind, s.detail) for s in out] == [
        (SignalKind.THERMAL, "hw_thermal_slowdown"), (SignalKind.POWER, "hw_power_brake_slowdown"),
        (SignalKind.THERMAL, "over 85 C")]
    out = t.feed(batch((thermal, 1000, 0.0), (remap, 1000, 1.0), (temp, 1000, 70.0)))
    assert [s.kind for s in out] == [SignalKind.ROW_REMAP_FAILURE]
    assert t.feed(batch((remap, 2000, 1.0))) == []            # still failed: no new signal


def test_disk_full_on_going_low_and_on_recovering() -> None:
    t = TelemetrySignals()
    free = make_labels("dcops_host_disk_free_bytes", {"node": "n1", "mountpoint": "/var"})
    total = make_labels("dcops_host_disk_total_bytes", {"node": "n1", "mountpoint": "/var"})
    assert t.feed(batch((free, 0, 50.0), (total, 0, 100.0))) == []
    [low] = t.feed(batch((free, 1000, 3.0), (total, 1000, 100.0)))
    assert (low.kind, low.node, low.gpu, low.value, low.detail) == (
        SignalKind.DISK_FULL, "n1", None, 0.03, "/var")
    assert t.feed(batch((free, 2000, 2.0), (total, 2000, 100.0))) == []
    [back] = t.feed(batch((free, 3000, 40.0), (total, 3000, 100.0)))
    assert back.value == 0.4


def test_a_large_batch_without_fault_series_is_cheap() -> None:
    big = Batch()
    for n in range(12_500):
        for g in range(8):
            big.add(gpu_series("dcops_gpu_utilization_percent", node=f"n{n}", gpu=str(g)), 0, 50.0)
    assert len(big) == 100_000
    t = TelemetrySignals()
    started = time.perf_counter()
    assert t.feed(big) == []
    assert time.perf_counter() - started < 1.0   # about 0.02 s here


# -- kernel log -----------------------------------------------------------------------------

GPUS = {"00000000:3B:00.0": 3, "0000:18:00": 1, "0000:cb:00": 5}


def test_xid_79_line() -> None:
    signal = parse_kernel_log(
        "[1234.5] NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off "
        "the bus.", GPUS, node="n1", at=10.0, jobs={1234: "job-9"})
    assert signal is not None
    assert (signal.kind, signal.code, signal.gpu, signal.job, signal.detail, signal.source) == (
        SignalKind.XID, 79, 3, "job-9", "GPU has fallen off the bus.", "kernel-log")


def test_xid_154_line_carries_the_recovery_action() -> None:
    signal = parse_kernel_log("NVRM: Xid (PCI:0000:18:00): 154, GPU recovery action changed "
                              "from 0x0 (None) to 0x2 (Node Reboot Required)", GPUS,
                              node="n1", at=0.0)
    assert signal is not None
    assert (signal.code, signal.gpu, signal.detail) == (154, 1, "Node Reboot Required")


@pytest.mark.parametrize(("line", "code", "detail"), [
    ("NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp "
     "Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter", 13,
     "Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter"),
    ("kernel: NVRM: Xid (PCI:0000:cb:00): 31, pid=2512125, name=python3.10, Ch 00000008, "
     "intr 00000000. MMU Fault: ENGINE GRAPHICS", 31,
     "Ch 00000008, intr 00000000. MMU Fault: ENGINE GRAPHICS"),
    ("NVRM: Xid (PCI:0000:cb:00): 48, pid=9, name=x, An uncorrectable double bit error (DBE) "
     "has been detected on GPU in the framebuffer at partition 6, subpartition 0.", 48,
     "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at "
     "partition 6, subpartition 0."),
    ("NVRM: Xid (PCI:0000:cb:00): 74, pid=<unknown>, name=<unknown>, NVLink: fatal error "
     "detected on link 14(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)", 74,
     "NVLink: fatal error detected on link 14(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)"),
    ("NVRM: Xid (PCI:0000:cb:00): 13, Graphics Exception: ESR 0x5067b0=0x9", 13,
     "Graphics Exception: ESR 0x5067b0=0x9"),
])
def test_real_xid_line_formats(line: str, code: int, detail: str) -> None:
    signal = parse_kernel_log(line, GPUS, node="n1", at=0.0)
    assert signal is not None
    assert (signal.code, signal.gpu, signal.detail, signal.job) == (code, 5, detail, None)


def test_unmapped_pci_id_gives_a_node_level_signal() -> None:
    signal = parse_kernel_log("NVRM: Xid (PCI:0000:99:00): 79, GPU has fallen off the bus.",
                              GPUS, node="n1", at=0.0)
    assert signal is not None
    assert signal.gpu is None and "PCI 0000:99:00 not in the GPU map" in signal.detail


def test_other_lines_are_none_and_a_bad_xid_number_is_invalid() -> None:
    assert parse_kernel_log("NVRM: loading NVIDIA UNIX x86_64 Kernel Module", GPUS,
                            node="n1", at=0.0) is None
    assert parse_kernel_log("", GPUS, node="n1", at=0.0) is None
    with pytest.raises(Invalid) as caught:
        parse_kernel_log("NVRM: Xid (PCI:0000:3b:00): 7x9, pid=1, name=a, text", GPUS,
                         node="n1", at=0.0)
    assert "'7x9'" in caught.value.message


def test_pci_key_reads_every_form() -> None:
    assert pci_key("00000000:3B:00.0") == pci_key("0000:3b:00") == pci_key("3b:00") == \
        "0000:3b:00"
