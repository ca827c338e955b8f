"""The Xid rules: sympathetic Xid 45, application-class Xids, NVLink attribution, Xid 154."""

from __future__ import annotations

import pytest

from dcops.health.diagnose import Diagnoser
from dcops.health.model import Health, Remedy, SignalKind
from dcops.health.state import DiagnoserConfig
from tests.health.helpers import brief, sig, xid

# -- sympathetic Xid 45 -------------------------------------------------------------------

@pytest.mark.parametrize("trigger", [48, 94, 95])
def test_xid_45_after_a_trigger_is_sympathetic_and_changes_nothing(trigger: int) -> None:
    d = Diagnoser()
    d.observe(xid(100, trigger))
    before = d.gpu("n1", 0)
    assert d.observe(xid(103, 45)) == []
    after = d.gpu("n1", 0)
    assert (after.health, after.remedy, after.cause) == (before.health, before.remedy,
                                                         before.cause)
    last = after.evidence[-1]
    assert last.counted is False
    assert last.summary == (f"Xid 45 after Xid {trigger} on the same GPU 3 s earlier: "
                            "sympathetic, ignored")


def test_solo_xid_45_is_watch() -> None:
    [diagnosis] = Diagnoser().observe(xid(0, 45, gpu=2))
    assert (diagnosis.health, diagnosis.remedy) == (Health.SUSPECT, Remedy.WATCH)
    assert diagnosis.cause == ("solo Xid 45 ROBUST_CHANNEL_PREEMPTIVE_REMOVAL on gpu 2 "
                               "(no Xid 48/94/95 within 60 s): watch")


def test_sympathetic_window_is_configurable_and_per_gpu() -> None:
    d = Diagnoser(config=DiagnoserConfig(sympathetic_s=5))
    d.observe(xid(0, 94))
    assert brief(d.observe(xid(10, 45))) == [("n1/0", "suspect", "watch")]  # too late
    d.observe(xid(20, 48, gpu=1))
    assert brief(d.observe(xid(21, 45, gpu=2))) == [("n1/2", "suspect", "watch")]  # other GPU


def test_xid_45_naming_its_previous_xid_is_sympathetic() -> None:
    d = Diagnoser()
    assert d.observe(xid(0, 45, detail="Ch 00000001 caused by previous Xid 149")) == []
    assert d.gpu("n1", 0).evidence[-1].counted is False


# -- application-class Xids ---------------------------------------------------------------

def test_application_xids_restart_the_job_and_escalate_across_jobs() -> None:
    d = Diagnoser()
    log = [(s.at, brief(out), [x.jobs for x in out]) for s in [
        xid(0, 13, job="a"), xid(10, 31, job="a"), xid(20, 43, job="a"),  # one job: no escalation
        xid(100, 13, job="b"),
        xid(200, 94, job="c"),
    ] for out in [d.observe(s)]]
    assert log == [
        (0, [("n1/0", "healthy", "restart_app")], [("a",)]),
        (10, [], []),
        (20, [], []),
        (100, [("n1/0", "suspect", "restart_app")], [("b",)]),
        (200, [("n1/0", "degraded", "reset_gpu")], [("c",)]),
    ]
    view = d.gpu("n1", 0)
    assert (view.health, view.remedy) == (Health.DEGRADED, Remedy.RESET_GPU)
    assert view.cause == ("application-class Xids on gpu 0 in 3 different jobs within 24 h: "
                          "reset the GPU")


def test_a_single_application_fault_leaves_the_gpu_healthy() -> None:
    d = Diagnoser()
    [diagnosis] = d.observe(xid(0, 13, job="j7"))
    assert diagnosis.cause == ("Xid 13 ROBUST_CHANNEL_GR_EXCEPTION on gpu 0 in j7: restart the "
                               "job (application fault; hardware healthy)")
    assert (d.gpu("n1", 0).health, d.gpu("n1", 0).remedy) == (Health.HEALTHY, Remedy.NONE)


def test_application_escalation_counts_jobs_within_the_window_only() -> None:
    d = Diagnoser(config=DiagnoserConfig(app_window_s=3600))
    d.observe(xid(0, 13, job="a"))
    d.observe(xid(4000, 13, job="b"))
    d.observe(xid(8000, 13, job="c"))
    assert d.gpu("n1", 0).health is Health.HEALTHY


def test_application_thresholds_are_configurable() -> None:
    d = Diagnoser(config=DiagnoserConfig(app_suspect_jobs=3, app_degraded_jobs=4))
    for n, job in enumerate("abc"):
        d.observe(xid(n, 31, job=job))
    assert d.gpu("n1", 0).health is Health.SUSPECT


def test_a_burst_of_unnamed_reports_is_one_job() -> None:
    d = Diagnoser()
    out = [x for t in (0.0, 0.001, 0.002, 0.5) for x in d.observe(xid(t, 13))]
    assert brief(out) == [("n1/0", "healthy", "restart_app")]
    assert brief(d.observe(xid(600, 13))) == [("n1/0", "suspect", "restart_app")]


# -- NVLink ---------------------------------------------------------------------------------

def test_one_nvlink_error_makes_both_ends_suspect() -> None:
    d = Diagnoser()
    out = d.observe(sig(0, SignalKind.NVLINK, gpu=0, peer="n2/5"))
    assert brief(out) == [("n1/0", "suspect", "watch"), ("n2/5", "suspect", "watch")]
    assert d.gpu("n2", 5).evidence[0].summary == "NVLink error reported by n1/0"
    assert d.gpu("n1", 0).evidence[0].summary == "NVLink error on n1/0 to n2/5"


def test_repeat_with_no_report_from_the_peer_blames_the_reporter() -> None:
    d = Diagnoser()
    d.observe(xid(0, 74, peer="n1/1"))
    out = d.observe(xid(30, 74, peer="n1/1"))
    assert brief(out) == [("n1/0", "degraded", "reset_gpu")]
    assert d.gpu("n1", 1).health is Health.SUSPECT
    assert d.gpu("n1", 0).cause == ("2 NVLink errors on gpu 0 to n1/1 within 600 s with no "
                                    "report from the peer: reset the GPU")


def test_reports_from_both_ends_blame_the_link_not_a_gpu() -> None:
    d = Diagnoser()
    first = d.observe(sig(0, SignalKind.NVLINK, gpu=0, peer="n1/1"))
    assert {(x.gpu, x.health, x.remedy) for x in first} == {
        (0, Health.SUSPECT, Remedy.WATCH), (1, Health.SUSPECT, Remedy.WATCH)}
    for t in range(1, 100, 10):
        d.observe(sig(t, SignalKind.NVLINK, gpu=1, peer="n1/0"))
        d.observe(sig(t + 1, SignalKind.NVLINK, gpu=0, peer="n1/1"))
    for index in (0, 1):
        view = d.gpu("n1", index)
        assert (view.health, view.remedy) == (Health.DEGRADED, Remedy.REBOOT)
    assert "the link (cable or NVSwitch) is at fault" in d.gpu("n1", 0).cause
    d.observe(sig(200, SignalKind.CHECK_PASSED))
    d.observe(sig(300, SignalKind.NVLINK, gpu=0, peer="n1/1"))
    out = d.observe(sig(301, SignalKind.NVLINK, gpu=1, peer="n1/0"))
    assert all(x.remedy is not Remedy.REPAIR for x in out)  # no strike against a GPU


def test_errors_with_two_distinct_peers_blame_the_gpu() -> None:
    d = Diagnoser()
    d.observe(sig(0, SignalKind.NVLINK, gpu=3, peer="n1/1"))
    out = d.observe(sig(5, SignalKind.NVLINK, gpu=3, peer="n1/2"))
    assert ("n1/3", "degraded", "reset_gpu") in brief(out)
    assert d.gpu("n1", 3).cause.startswith("NVLink errors on gpu 3 with 2 different peers")
    assert (d.gpu("n1", 1).health, d.gpu("n1", 2).health) == (Health.SUSPECT, Health.SUSPECT)


def test_blamed_again_after_a_recheck_is_repair() -> None:
    d = Diagnoser()
    log = [brief(d.observe(s)) for s in [
        xid(0, 74), xid(10, 74), xid(20, 74),    # unknown peer, repeated: blamed once
        sig(100, SignalKind.CHECK_PASSED, gpu=0),
        xid(200, 74), xid(210, 74),
    ]]
    assert log == [
        [("n1/0", "suspect", "watch")],
        [("n1/0", "degraded", "reset_gpu")],
        [],
        [("n1/0", "healthy", "none")],
        [("n1/0", "suspect", "watch")],
        [("n1/0", "failed", "repair")],
    ]


def test_nvlink_reports_outside_the_window_do_not_add_up() -> None:
    d = Diagnoser(config=DiagnoserConfig(nvlink_window_s=60))
    d.observe(xid(0, 74, peer="n1/1"))
    d.observe(xid(120, 74, peer="n1/1"))
    assert d.gpu("n1", 0).health is Health.SUSPECT


def test_a_malformed_peer_is_an_unknown_peer_with_a_note() -> None:
    [diagnosis] = Diagnoser().observe(xid(0, 74, peer="switch-7"))
    assert diagnosis.health is Health.SUSPECT
    assert "peer 'switch-7' is not 'node/gpu'" in diagnosis.cause


# -- Xid 154 ------------------------------------------------------------------------------

@pytest.mark.parametrize(("detail", "health", "remedy"), [
    ("Drain P2P", Health.DEGRADED, Remedy.WATCH),
    ("drain and reset", Health.DEGRADED, Remedy.RESET_GPU),
    ("DRAIN_AND_RESET", Health.DEGRADED, Remedy.RESET_GPU),
    ("GPU Reset Required", Health.DEGRADED, Remedy.RESET_GPU),
    ("gpu_reset_required", Health.DEGRADED, Remedy.RESET_GPU),
    ("Node Reboot Required", Health.FAILED, Remedy.REBOOT),
    ("NODE_REBOOT_REQUIRED", Health.FAILED, Remedy.REBOOT),
    ("GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)",
     Health.FAILED, Remedy.REBOOT),
])
def test_xid_154_states_the_recovery(detail: str, health: Health, remedy: Remedy) -> None:
    [diagnosis] = Diagnoser().observe(xid(0, 154, detail=detail))
    assert (diagnosis.health, diagnosis.remedy) == (health, remedy)


def test_xid_154_is_authoritative_over_the_catalogue() -> None:
    d = Diagnoser()
    d.observe(xid(0, 95))                        # catalogue: reset the GPU
    [reboot] = d.observe(xid(1, 154, detail="Node Reboot Required"))
    assert (reboot.health, reboot.remedy) == (Health.FAILED, Remedy.REBOOT)
    [recovered] = d.observe(xid(50, 154, detail="None"))
    assert (recovered.health, recovered.remedy) == (Health.HEALTHY, Remedy.NONE)


def test_unknown_recovery_action_is_watch_with_the_text() -> None:
    [diagnosis] = Diagnoser().observe(xid(0, 154, detail="Replace Datacenter"))
    assert (diagnosis.health, diagnosis.remedy) == (Health.SUSPECT, Remedy.WATCH)
    assert "'Replace Datacenter'" in diagnosis.cause
