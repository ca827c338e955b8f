"""The Slurm actuator: node states and idempotent actions on recorded answers, an unreachable
or slow slurmctld, then drain, hard drain, requeue and resume on a real Slurm on loopback."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from dcops.backends.slurm_admin import NodeState, SlurmActuator, parse_node_state
from dcops.backends.slurm_commands import (
    CommandResult,
    Runner,
    SlurmCommandFailed,
    SlurmUnavailable,
    subprocess_runner,
)
from dcops.core.errors import Invalid, NotFound, Unavailable
from dcops.remediation.actuator import Actuator, NodeStatus
from tests.fixtures.engines import free_port
from tests.fixtures.slurm import FakeSlurm, SlurmCluster, job_field, sbatch_sleep

SINFO_IDLE = "gpu01|idle|none\n"
SINFO_DRAINED = "gpu01|idle+drain|xid 79\n"


@pytest.fixture
def fake() -> FakeSlurm:
    return FakeSlurm()


@pytest.fixture
def actuator(fake: FakeSlurm) -> SlurmActuator:
    return SlurmActuator(bin_dir="/opt/slurm/bin", runner=fake)


def args(fake: FakeSlurm) -> list[list[str]]:
    return [[Path(c[0]).name, *c[1:]] for c in fake.calls]


# -- node states --------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "drained", "down"), [
    ("idle", False, False), ("mixed", False, False), ("allocated", False, False),
    ("idle+drain", True, False), ("mixed+drain", True, False),
    ("allocated+drain", True, False), ("drained", True, False), ("draining", True, False),
    ("down", False, True), ("idle+not_responding", False, True), ("idle*", False, True),
    ("down+drain+not_responding", True, True), ("idle+fail", True, False),
])
def test_node_state_flags(state: str, drained: bool, down: bool) -> None:
    parsed = parse_node_state(f"gpu01|{state}|none\n", "gpu01")
    assert parsed is not None and (parsed.drained, parsed.down) == (drained, down)


def test_node_state_keeps_a_reason_with_bars_and_skips_other_nodes() -> None:
    text = "gpu010|idle|none\ngpu01|mixed+drain|dcops: xid 79 | gpu 3\n"
    assert parse_node_state(text, "gpu01") == NodeState(
        "gpu01", frozenset({"mixed", "drain"}), "dcops: xid 79 | gpu 3")
    assert parse_node_state(text, "gpu02") is None


def test_status_maps_jobs_to_dcops_ids(actuator: SlurmActuator, fake: FakeSlurm) -> None:
    fake.answer("sinfo", SINFO_DRAINED)
    fake.answer("squeue", "41|RUNNING|0|None|dcops:train-7\n42|RUNNING|1|None|(null)\n")
    assert actuator.status("gpu01") == NodeStatus("gpu01", drained=True, reason="xid 79",
                                                  jobs=("train-7", "42"))
    assert args(fake) == [
        ["sinfo", "--Node", "--noheader", "--nodes=gpu01",
         "--Format=NodeList:|,StateComplete:|,Reason:"],
        ["squeue", "--noheader", "--states=RUNNING", "--nodelist=gpu01",
         "--Format=JobID:|,State:|,RestartCnt:|,Reason:|,Comment:"]]


def test_an_unknown_node_is_not_found(actuator: SlurmActuator, fake: FakeSlurm) -> None:
    fake.answer("sinfo", "")
    with pytest.raises(NotFound, match="node 'gpu99' not found"):
        actuator.status("gpu99")


# -- actions, each once -------------------------------------------------------------------


def test_drain_runs_scontrol_update_with_the_reason(actuator: SlurmActuator,
                                                    fake: FakeSlurm) -> None:
    fake.answer("sinfo", SINFO_IDLE)
    fake.answer("scontrol")
    actuator.drain("gpu01", "xid 79 on gpu 3")
    assert args(fake)[-1] == ["scontrol", "update", "NodeName=gpu01", "State=DRAIN",
                              "Reason=xid 79 on gpu 3"]


def test_draining_again_with_the_same_reason_runs_nothing(actuator: SlurmActuator,
                                                          fake: FakeSlurm) -> None:
    fake.answer("sinfo", SINFO_DRAINED)
    actuator.drain("gpu01", "xid 79")
    assert [c[0] for c in args(fake)] == ["sinfo"]


def test_draining_with_another_reason_updates_it(actuator: SlurmActuator,
                                                 fake: FakeSlurm) -> None:
    fake.answer("sinfo", SINFO_DRAINED)
    fake.answer("scontrol")
    actuator.drain("gpu01", "ecc storm")
    assert args(fake)[-1][-1] == "Reason=ecc storm"


def test_drain_needs_a_reason(actuator: SlurmActuator, fake: FakeSlurm) -> None:
    with pytest.raises(Invalid, match="needs a reason"):
        actuator.drain("gpu01", " ")
    assert fake.calls == []


def test_hard_drain_requeues_the_running_jobs_in_one_command(actuator: SlurmActuator,
                                                             fake: FakeSlurm) -> None:
    fake.answer("sinfo", SINFO_DRAINED)
    fake.answer("squeue", "41|RUNNING|0|None|dcops:a\n42|RUNNING|0|None|(null)\n")
    fake.answer("scontrol")
    actuator.drain("gpu01", "xid 79", hard=True)
    assert args(fake)[-1] == ["scontrol", "requeue", "41,42"]


def test_resume_of_a_node_in_service_runs_nothing(actuator: SlurmActuator,
                                                  fake: FakeSlurm) -> None:
    fake.answer("sinfo", SINFO_IDLE)
    actuator.resume("gpu01")
    assert [c[0] for c in args(fake)] == ["sinfo"]


@pytest.mark.parametrize("state", ["idle+drain", "down", "down+not_responding"])
def test_resume_of_a_drained_or_down_node(actuator: SlurmActuator, fake: FakeSlurm,
                                          state: str) -> None:
    fake.answer("sinfo", f"gpu01|{state}|none\n")
    fake.answer("scontrol")
    actuator.resume("gpu01")
    assert args(fake)[-1] == ["scontrol", "update", "NodeName=gpu01", "State=RESUME"]


def test_requeue_only_running_jobs_by_either_id(actuator: SlurmActuator,
                                                fake: FakeSlurm) -> None:
    fake.answer("squeue", "41|RUNNING|0|None|dcops:a\n42|PENDING|1|BeginTime|dcops:b\n"
                          "43|RUNNING|0|None|(null)\n44|COMPLETED|0|None|dcops:d\n")
    fake.answer("scontrol")
    assert actuator.requeue(["a", "b", "43", "d", "gone"]) == ["a", "43"]
    assert args(fake)[-1] == ["scontrol", "requeue", "41,43"]


def test_requeue_of_nothing_running_runs_no_scontrol(actuator: SlurmActuator,
                                                     fake: FakeSlurm) -> None:
    fake.answer("squeue", "42|PENDING|1|BeginTime|dcops:b\n")
    assert actuator.requeue(["b"]) == []
    assert actuator.requeue([]) == []
    assert [c[0] for c in args(fake)] == ["squeue"]


def test_reset_needs_a_configured_command(actuator: SlurmActuator, fake: FakeSlurm) -> None:
    with pytest.raises(Invalid, match="GPU reset needs `reset_command` configured"):
        actuator.reset_gpu("gpu01", 3)
    assert fake.calls == []


def test_reset_runs_the_configured_command(fake: FakeSlurm) -> None:
    actuator = SlurmActuator(runner=fake, reset_command=(
        "ssh", "{node}", "nvidia-smi", "--gpu-reset", "-i", "{gpu}"))
    fake.answer("sinfo", SINFO_DRAINED)
    fake.answer("ssh")
    actuator.reset_gpu("gpu01", 3)
    assert fake.calls[-1] == ["ssh", "gpu01", "nvidia-smi", "--gpu-reset", "-i", "3"]


def test_a_reset_whose_host_is_unreachable_is_unavailable(fake: FakeSlurm) -> None:
    actuator = SlurmActuator(runner=fake, reset_command=("ssh", "{node}", "nvidia-smi", "-r"))
    fake.answer("sinfo", SINFO_DRAINED)
    fake.answer("ssh", returncode=255,
                stderr="ssh: connect to host gpu01 port 22: Connection refused\n")
    with pytest.raises(Unavailable, match="could not reach gpu01"):
        actuator.reset_gpu("gpu01", 0)


def test_reboot_is_slurms_own_by_default(actuator: SlurmActuator, fake: FakeSlurm) -> None:
    fake.answer("sinfo", SINFO_DRAINED)
    fake.answer("scontrol")
    actuator.reboot("gpu01")
    assert fake.calls[-1] == ["/opt/slurm/bin/scontrol", "reboot", "ASAP", "nextstate=resume",
                              "reason=dcops: reboot", "gpu01"]


def test_a_reboot_under_way_is_not_asked_again(actuator: SlurmActuator,
                                               fake: FakeSlurm) -> None:
    fake.answer("sinfo", "gpu01|idle+drain+reboot_requested|dcops: reboot\n")
    actuator.reboot("gpu01")
    assert [c[0] for c in args(fake)] == ["sinfo"]


def test_a_refusal_carries_slurms_words(actuator: SlurmActuator, fake: FakeSlurm) -> None:
    fake.answer("sinfo", SINFO_DRAINED)
    fake.answer("scontrol", returncode=1, stderr="scontrol: error: RebootProgram isn't "
                                                 "defined\n")
    with pytest.raises(SlurmCommandFailed, match="RebootProgram isn't defined"):
        actuator.reboot("gpu01")


# -- slurmctld down or slow ---------------------------------------------------------------


def test_an_unreachable_controller_is_unavailable(actuator: SlurmActuator,
                                                  fake: FakeSlurm) -> None:
    fake.answer("sinfo", returncode=1, stderr="slurm_load_partitions: Unable to contact "
                                              "slurm controller (connect failure)\n")
    with pytest.raises(Unavailable, match="could not reach slurmctld: slurm_load_partitions"):
        actuator.drain("gpu01", "xid 79")
    assert [c[0] for c in args(fake)] == ["sinfo"]  # nothing was tried without the state


def sleeping_runner(delay_s: float) -> Runner:
    """A slow slurmctld: every command starts `delay_s` late (a real process, killed at the
    timeout)."""

    def run(argv: Sequence[str], *, env: Mapping[str, str],
            timeout_s: float) -> CommandResult:
        return subprocess_runner(["sh", "-c", f'sleep {delay_s}; exec "$0" "$@"', *argv],
                                 env=env, timeout_s=timeout_s)

    return run


def test_a_slow_controller_is_unavailable_at_the_timeout() -> None:
    runner = sleeping_runner(10)
    actuator = SlurmActuator(timeout_s=0.5, runner=runner)
    started = time.monotonic()
    with pytest.raises(SlurmUnavailable, match=r"did not answer within 0.5s"):
        actuator.status("gpu01")
    assert time.monotonic() - started < 3


def dead_conf(cluster: SlurmCluster, tmp_path: Path, extra: str = "") -> Path:
    """The session's slurm.conf with slurmctld on a port nothing listens on."""
    text = re.sub(r"SlurmctldPort=\d+", f"SlurmctldPort={free_port()}", cluster.conf.read_text())
    conf = tmp_path / "dead.conf"
    conf.write_text(text + extra)
    return conf


@pytest.mark.engines
def test_a_controller_that_is_down_is_unavailable(slurm_cluster: SlurmCluster,
                                                  tmp_path: Path) -> None:
    conf = dead_conf(slurm_cluster, tmp_path, "MessageTimeout=1\n")  # no retries: at once
    actuator = SlurmActuator(slurm_conf=conf, bin_dir=slurm_cluster.bin_dir, timeout_s=5)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="Unable to contact slurm controller"):
        actuator.drain(slurm_cluster.node, "dcops test")
    assert time.monotonic() - started < 5


@pytest.mark.engines
def test_a_controller_retrying_past_the_timeout_is_unavailable(slurm_cluster: SlurmCluster,
                                                               tmp_path: Path) -> None:
    conf = dead_conf(slurm_cluster, tmp_path)  # Slurm's clients retry for about 9 s
    actuator = SlurmActuator(slurm_conf=conf, bin_dir=slurm_cluster.bin_dir, timeout_s=1)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="did not answer within 1s"):
        actuator.resume(slurm_cluster.node)
    assert time.monotonic() - started < 4


# -- against a real Slurm -----------------------------------------------------------------


@pytest.fixture
def real(slurm_cluster: SlurmCluster) -> Iterator[SlurmActuator]:
    """An actuator on the session's Slurm; the node is resumed and every job cancelled after."""
    actuator = SlurmActuator(slurm_conf=slurm_cluster.conf, bin_dir=slurm_cluster.bin_dir,
                             timeout_s=20)
    try:
        yield actuator
    finally:
        slurm_cluster.cancel_all()
        with contextlib.suppress(RuntimeError):  # in service already
            slurm_cluster.command("scontrol", "update", f"NodeName={slurm_cluster.node}",
                                  "State=RESUME")
        slurm_cluster.wait_idle()


@pytest.mark.engines
def test_drain_keeps_dcops_reason_and_again_is_a_no_op(real: SlurmActuator,
                                                       slurm_cluster: SlurmCluster) -> None:
    node = slurm_cluster.node
    actuator: Actuator = real
    actuator.drain(node, "dcops: xid 79 on gpu 1")
    assert actuator.status(node) == NodeStatus(node, drained=True,
                                               reason="dcops: xid 79 on gpu 1")
    assert slurm_cluster.command("sinfo", "--list-reasons", "--noheader",
                                 "--format=%E|%N") == f"dcops: xid 79 on gpu 1|{node}\n"
    shown = slurm_cluster.command("scontrol", "show", "node", node, "--oneliner")
    assert "Reason=dcops: xid 79 on gpu 1 [" in shown
    actuator.drain(node, "dcops: xid 79 on gpu 1")
    assert slurm_cluster.command("scontrol", "show", "node", node, "--oneliner") == shown
    actuator.resume(node)
    slurm_cluster.wait_idle()
    assert actuator.status(node) == NodeStatus(node, drained=False)
    actuator.resume(node)  # in service: nothing to do, no "Invalid node state" from Slurm


@pytest.mark.engines
def test_hard_drain_requeues_the_running_job(real: SlurmActuator,
                                             slurm_cluster: SlurmCluster) -> None:
    node = slurm_cluster.node
    slurm_id = sbatch_sleep(slurm_cluster, "train-hard")
    assert real.status(node).jobs == ("train-hard",)
    real.drain(node, "dcops: nvlink down", hard=True)
    assert job_field(slurm_cluster, slurm_id, "Restarts") == "1"
    assert job_field(slurm_cluster, slurm_id, "JobState") in {"PENDING", "COMPLETING",
                                                             "REQUEUED"}
    status = real.status(node)
    assert (status.drained, status.reason, status.jobs) == (True, "dcops: nvlink down", ())
    real.drain(node, "dcops: nvlink down", hard=True)  # retried: no second requeue
    assert job_field(slurm_cluster, slurm_id, "Restarts") == "1"


@pytest.mark.engines
def test_requeue_by_dcops_id_then_again_returns_nothing(real: SlurmActuator,
                                                        slurm_cluster: SlurmCluster) -> None:
    slurm_id = sbatch_sleep(slurm_cluster, "train-rq")
    real.drain(slurm_cluster.node, "dcops: keep the requeued job off the node")
    assert real.requeue(["train-rq"]) == ["train-rq"]
    assert job_field(slurm_cluster, slurm_id, "Restarts") == "1"
    assert real.requeue(["train-rq", slurm_id]) == []  # pending now: left alone
    assert job_field(slurm_cluster, slurm_id, "Restarts") == "1"


@pytest.mark.engines
def test_status_of_a_node_slurm_does_not_have(real: SlurmActuator) -> None:
    with pytest.raises(NotFound, match="node 'no-such-node' not found"):
        real.status("no-such-node")
    with pytest.raises(NotFound):
        real.drain("no-such-node", "dcops test")


@pytest.mark.engines
def test_reboot_without_a_reboot_program_says_so(real: SlurmActuator,
                                                 slurm_cluster: SlurmCluster) -> None:
    """The test slurm.conf has no RebootProgram: Slurm refuses, and nothing changes."""
    node = slurm_cluster.node
    with pytest.raises(SlurmCommandFailed, match="RebootProgram isn't defined"):
        real.reboot(node)
    assert real.status(node) == NodeStatus(node, drained=False)


def test_commands_see_the_slurm_conf(tmp_path: Path) -> None:
    seen: list[Mapping[str, str]] = []

    def runner(argv: Sequence[str], *, env: Mapping[str, str],
               timeout_s: float) -> CommandResult:
        seen.append(env)
        return CommandResult(0, "gpu01|idle|none\n" if "sinfo" in argv[0] else "", "")

    SlurmActuator(slurm_conf=tmp_path / "slurm.conf", runner=runner).status("gpu01")
    assert {e["SLURM_CONF"] for e in seen} == {str(tmp_path / "slurm.conf")}
