"""The non-Xid rules: ECC, throttling, PCIe, reachability and disks."""

from __future__ import annotations

from dcops.health.diagnose import Diagnoser
from dcops.health.model import Health, Remedy, SignalKind
from dcops.health.state import DiagnoserConfig
from tests.health.helpers import brief, sig, xid


def test_dbe_resets_then_repairs_after_a_reset() -> None:
    d = Diagnoser()
    log = [brief(d.observe(s)) for s in [
        sig(0, SignalKind.ECC_DBE),
        xid(0.5, 48),                                # the same incident, from the kernel log
        sig(300, SignalKind.CHECK_PASSED),           # reset, re-checked clean
        sig(4000, SignalKind.ECC_DBE),
    ]]
    assert log == [
        [("n1/0", "failed", "reset_gpu")],
        [],                                          # nothing new: one DBE finding
        [("n1/0", "healthy", "none")],
        [("n1/0", "failed", "repair")],
    ]
    assert d.gpu("n1", 0).cause.startswith("uncorrectable (double-bit) ECC error on gpu 0 again")


def test_row_remap_failure_is_repair() -> None:
    [diagnosis] = Diagnoser().observe(sig(0, SignalKind.ROW_REMAP_FAILURE, gpu=4))
    assert (diagnosis.health, diagnosis.remedy) == (Health.FAILED, Remedy.REPAIR)
    assert diagnosis.cause == "row remapping failed on gpu 4 (no spare rows): repair (RMA)"


def test_sbe_rate_over_the_threshold_is_watch() -> None:
    d = Diagnoser(config=DiagnoserConfig(sbe_per_hour=50))
    assert d.observe(sig(0, SignalKind.ECC_SBE, value=30)) == []
    assert d.observe(sig(7200, SignalKind.ECC_SBE, value=30)) == []   # the first hour is gone
    [diagnosis] = d.observe(sig(7300, SignalKind.ECC_SBE, value=30))
    assert (diagnosis.health, diagnosis.remedy) == (Health.SUSPECT, Remedy.WATCH)
    assert diagnosis.cause == ("60 corrected ECC errors per hour on gpu 0 (over 50): watch")


def test_sustained_thermal_throttling_is_degraded_watch() -> None:
    d = Diagnoser()
    log = [(s.at, brief(d.observe(s))) for s in [
        sig(0, SignalKind.THERMAL, value=91), sig(60, SignalKind.THERMAL, value=92),
        sig(120, SignalKind.THERMAL, value=93),
    ]]
    assert log == [(0, []), (60, []), (120, [("n1/0", "degraded", "watch")])]
    assert d.gpu("n1", 0).cause == ("sustained thermal throttling on gpu 0 (3 signals within "
                                    "300 s); remediation notifies: watch")


def test_spread_out_throttling_is_not_sustained() -> None:
    d = Diagnoser()
    for t in (0, 400, 800, 1200):
        assert d.observe(sig(t, SignalKind.POWER)) == []
    assert d.gpu("n1", 0).health is Health.HEALTHY
    assert len(d.gpu("n1", 0).evidence) == 4


def test_sustained_power_throttling_is_degraded_watch() -> None:
    d = Diagnoser(config=DiagnoserConfig(throttle_signals=2, throttle_window_s=60))
    d.observe(sig(0, SignalKind.POWER, gpu=1))
    [diagnosis] = d.observe(sig(30, SignalKind.POWER, gpu=1))
    assert (diagnosis.health, diagnosis.remedy) == (Health.DEGRADED, Remedy.WATCH)


def test_pcie_replays_over_the_rate_are_suspect() -> None:
    d = Diagnoser()
    assert d.observe(sig(0, SignalKind.PCIE, value=60)) == []
    assert brief(d.observe(sig(60, SignalKind.PCIE, value=60))) == [("n1/0", "suspect", "watch")]


def test_unreachable_over_the_threshold_is_a_node_reboot() -> None:
    d = Diagnoser()
    assert d.observe(sig(0, SignalKind.UNREACHABLE, gpu=None, value=60)) == []
    [diagnosis] = d.observe(sig(90, SignalKind.UNREACHABLE, gpu=None, value=150))
    assert (diagnosis.target, diagnosis.health, diagnosis.remedy) == (
        "n1", Health.FAILED, Remedy.REBOOT)
    assert diagnosis.cause == "node silent for 150 s (over 120 s): reboot"
    assert brief(d.clear("n1", 600)) == [("n1", "healthy", "none")]


def test_disk_full_is_degraded_watch_until_space_returns() -> None:
    d = Diagnoser()
    [full] = d.observe(sig(0, SignalKind.DISK_FULL, gpu=None, value=0.02, detail="/var"))
    assert (full.target, full.health, full.remedy) == ("n1", Health.DEGRADED, Remedy.WATCH)
    assert "remediation runs the disk cleanup playbook" in full.cause
    assert d.observe(sig(10, SignalKind.DISK_FULL, gpu=None, value=0.03, detail="/var")) == []
    assert brief(d.observe(sig(20, SignalKind.DISK_FULL, gpu=None, value=0.4, detail="/var"))) \
        == [("n1", "healthy", "none")]
