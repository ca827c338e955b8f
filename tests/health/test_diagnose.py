"""The diagnoser's core: catalogue Xids, repeats, views, time order and contradictions."""

from __future__ import annotations

import time

import pytest

from dcops.core.errors import Invalid
from dcops.health.diagnose import Diagnoser
from dcops.health.model import Health, Remedy, Signal, SignalKind
from dcops.health.state import DiagnoserConfig
from tests.health.helpers import brief, sig, xid


def test_xid_79_is_a_reboot_with_a_human_cause() -> None:
    d = Diagnoser()
    [diagnosis] = d.observe(xid(100, 79, gpu=3))
    assert diagnosis.cause == "Xid 79 GPU_HAS_FALLEN_OFF_THE_BUS on gpu 3: reboot"
    assert (diagnosis.target, diagnosis.health, diagnosis.remedy, diagnosis.at) == (
        "n1/3", Health.FAILED, Remedy.REBOOT, 100)
    assert [e.summary for e in diagnosis.evidence] == [
        "Xid 79 GPU_HAS_FALLEN_OFF_THE_BUS (RESTART_BM)"]
    node = d.node("n1")
    assert (node.health, node.remedy, node.cause) == (Health.FAILED, Remedy.REBOOT,
                                                      diagnosis.cause)
    assert [g.index for g in node.gpus] == [3]


def test_xid_79_repeat_after_a_reboot_is_repair() -> None:
    d = Diagnoser()
    log = [(t, brief(d.observe(s))) for t, s in [
        (0, xid(0, 79)), (5, xid(5, 79)),           # the same incident, logged twice
        (600, sig(600, SignalKind.CHECK_PASSED)),   # rebooted, re-checked clean
        (3600, xid(3600, 79)),
    ]]
    assert log == [
        (0, [("n1/0", "failed", "reboot")]),
        (5, []),
        (600, [("n1/0", "healthy", "none")]),
        (3600, [("n1/0", "failed", "repair")]),
    ]
    assert d.gpu("n1", 0).cause.startswith("Xid 79 GPU_HAS_FALLEN_OFF_THE_BUS on gpu 0 again "
                                           "(2 incidents within 7 d)")


def test_repeat_outside_the_repair_window_is_a_first_incident() -> None:
    d = Diagnoser(config=DiagnoserConfig(repair_window_s=3600))
    d.observe(xid(0, 79))
    d.clear("n1", 100)
    assert brief(d.observe(xid(10_000, 79))) == [("n1/0", "failed", "reboot")]


def test_catalogue_xids_63_64_92_95() -> None:
    d = Diagnoser()
    assert d.observe(xid(0, 63, gpu=0)) == []
    assert d.gpu("n1", 0).evidence[0].summary.startswith("Xid 63 INFOROM_DRAM_RETIREMENT_EVENT")
    assert brief(d.observe(xid(1, 64, gpu=1))) == [("n1/1", "degraded", "reset_gpu")]
    assert brief(d.observe(xid(2, 92, gpu=2))) == [("n1/2", "suspect", "watch")]
    assert brief(d.observe(xid(3, 95, gpu=3))) == [("n1/3", "degraded", "reset_gpu")]
    d.clear("n1", 500, gpu=1)
    assert brief(d.observe(xid(900, 64, gpu=1))) == [("n1/1", "failed", "repair")]


def test_unknown_xid_is_watch_never_an_exception() -> None:
    [diagnosis] = Diagnoser().observe(xid(0, 999))
    assert diagnosis.cause == "unknown Xid 999 (not in catalogue version 1) on gpu 0: watch"
    assert (diagnosis.health, diagnosis.remedy) == (Health.SUSPECT, Remedy.WATCH)
    [no_code] = Diagnoser().observe(sig(0, SignalKind.XID))
    assert (no_code.health, no_code.cause) == (Health.SUSPECT, "Xid with no code on gpu 0: watch")


def test_node_health_is_the_worst_of_gpus_and_node_findings() -> None:
    d = Diagnoser()
    d.observe(xid(0, 92, gpu=1))
    assert d.node("n1").health is Health.SUSPECT
    [disk] = d.observe(sig(1, SignalKind.DISK_FULL, gpu=None, value=0.01, detail="/scratch"))
    assert disk.gpu is None
    node = d.node("n1")
    assert (node.health, node.remedy) == (Health.DEGRADED, Remedy.WATCH)
    assert node.cause.startswith("file system /scratch at 1.0% free")
    assert [n.node for n in d.nodes()] == ["n1"]


def test_unseen_gpu_and_node_are_healthy_views() -> None:
    d = Diagnoser()
    assert (d.gpu("x", 0).health, d.gpu("x", 0).cause) == (Health.HEALTHY, "no signals")
    assert d.node("x").health is Health.HEALTHY
    assert d.nodes() == []


def test_check_passed_clears_and_check_failed_fails() -> None:
    d = Diagnoser()
    d.observe(xid(0, 79, gpu=1))
    d.observe(xid(0, 92, gpu=2))
    cleared = d.observe(sig(100, SignalKind.CHECK_PASSED, gpu=None))
    assert sorted(brief(cleared)) == [("n1/1", "healthy", "none"), ("n1/2", "healthy", "none")]
    assert d.node("n1").health is Health.HEALTHY
    [failed] = d.observe(sig(200, SignalKind.CHECK_FAILED, gpu=2, detail="dcgmi diag -r 3"))
    assert (failed.health, failed.remedy) == (Health.FAILED, Remedy.REPAIR)
    assert failed.cause == "health check failed on gpu 2: dcgmi diag -r 3: repair (RMA)"


def test_check_passed_in_the_same_second_as_a_fault_keeps_the_fault() -> None:
    d = Diagnoser()
    d.observe(xid(100.0, 79))
    assert d.observe(sig(100.4, SignalKind.CHECK_PASSED)) == []   # the fault stands
    view = d.gpu("n1", 0)
    assert (view.health, view.remedy) == (Health.FAILED, Remedy.REBOOT)
    assert "a clean check at the same time contradicts it: fault kept" in view.cause

    later = Diagnoser()
    later.observe(sig(200.0, SignalKind.CHECK_PASSED))
    [diagnosis] = later.observe(xid(200.5, 79))
    assert diagnosis.health is Health.FAILED
    assert "a clean check 0.5 s earlier contradicts it: fault kept" in diagnosis.cause


def test_gpu_index_beyond_the_inventory_is_flagged_in_the_cause() -> None:
    d = Diagnoser()
    d.expect("n1", 8)
    [diagnosis] = d.observe(xid(0, 79, gpu=9))
    assert diagnosis.target == "n1/9" and diagnosis.health is Health.FAILED
    assert "gpu 9 is beyond the 8 GPUs known for the node" in diagnosis.cause
    [negative] = d.observe(xid(1, 64, gpu=-1))
    assert negative.gpu is None and "GPU index -1 is invalid" in negative.cause


def test_signals_out_of_time_order_are_applied_at_the_latest_time() -> None:
    d = Diagnoser()
    d.observe(xid(1000, 92, gpu=1))
    [late] = d.observe(xid(900, 79, gpu=0))
    assert (late.at, late.health) == (1000, Health.FAILED)
    assert late.evidence[-1].signal.at == 900
    assert d.now == 1000
    stale = d.observe(xid(1000 - 7200, 79, gpu=2))
    assert stale == []
    assert d.gpu("n1", 2).health is Health.HEALTHY
    assert d.gpu("n1", 2).evidence[0].counted is False
    assert "stale" in d.gpu("n1", 2).evidence[0].summary


def test_evidence_is_bounded() -> None:
    d = Diagnoser(config=DiagnoserConfig(evidence_limit=4))
    for t in range(50):
        d.observe(xid(t * 100, 63))
    assert len(d.gpu("n1", 0).evidence) == 4
    assert d.gpu("n1", 0).evidence[-1].signal.at == 4900


def test_config_is_validated() -> None:
    with pytest.raises(Invalid):
        DiagnoserConfig(sympathetic_s=0)
    with pytest.raises(Invalid):
        DiagnoserConfig(app_suspect_jobs=3, app_degraded_jobs=2)


def test_storm_of_xid_79_on_a_thousand_nodes_is_fast() -> None:
    d = Diagnoser()
    started = time.perf_counter()
    out = [diag for n in range(1000) for g in range(8)
           for diag in d.observe(xid(n * 0.06, 79, gpu=g, node=f"node{n:04d}"))]
    elapsed = time.perf_counter() - started
    assert len(out) == 8000
    assert all(x.remedy is Remedy.REBOOT for x in out)
    assert len(d.nodes()) == 1000
    assert elapsed < 5.0  # about 0.1 s here; loose for shared machines


def test_thermal_throttling_that_lasts_is_a_repair() -> None:
    d = Diagnoser()
    found = []
    for t in range(0, 960, 60):
        found += d.observe(Signal(float(t), "n1", SignalKind.THERMAL, 2, value=95.0))
    kinds = [(x.health, x.remedy) for x in found]
    assert kinds[0] == (Health.DEGRADED, Remedy.WATCH)
    assert kinds[-1] == (Health.DEGRADED, Remedy.REPAIR)
    assert "thermal interface needs a technician" in d.gpu("n1", 2).cause
