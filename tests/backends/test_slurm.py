"""The Slurm executor: command lines and event tracking on recorded answers, then the same
executor against a real Slurm on loopback (tests.fixtures.slurm)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcops.backends.slurm import (
    SlurmCommandFailed,
    SlurmExecutor,
    SlurmUnavailable,
    tasks_per_node,
)
from dcops.core.clock import FakeClock
from dcops.core.errors import Conflict, Invalid, NotFound
from dcops.scheduling.cluster import NodeInfo
from dcops.scheduling.executor import JobEvent
from dcops.scheduling.model import Job, JobSpec, JobState, Placement
from tests.fixtures.slurm import NODE_CPUS, NODE_GPUS, NODE_MEMORY_MB, FakeSlurm, SlurmCluster

T0 = 1_700_000_000.0


def job(job_id: str = "j1", *, gpus_per_task: int = 1, tasks: int = 1,
        command: tuple[str, ...] = ("python", "train.py", "--lr", "3e-4 x")) -> Job:
    spec = JobSpec(name=f"train-{job_id}", gpus_per_task=gpus_per_task, tasks=tasks,
                   cpus_per_task=4, memory_mb_per_task=8000, command=command)
    return Job(id=job_id, spec=spec, submit_s=T0)


def one_node(gpus: int = 1) -> Placement:
    return Placement((("gpu01", gpus),))


def squeue(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


@pytest.fixture
def fake() -> FakeSlurm:
    return FakeSlurm()


@pytest.fixture
def executor(fake: FakeSlurm) -> SlurmExecutor:
    return SlurmExecutor(slurm_conf="/etc/slurm-test/slurm.conf", bin_dir="/opt/slurm/bin",
                         clock=FakeClock(T0), runner=fake)


def started(executor: SlurmExecutor, fake: FakeSlurm, slurm_id: str = "41",
            the_job: Job | None = None) -> Job:
    the_job = the_job or job()
    fake.answer("sbatch", f"{slurm_id}\n")
    executor.start(the_job, one_node())
    return the_job


# -- command lines ------------------------------------------------------------------------


def test_sbatch_for_one_node_names_the_node_gpus_and_the_dcops_id(
        executor: SlurmExecutor) -> None:
    assert executor.sbatch_args(job(gpus_per_task=2), one_node(2)) == [
        "sbatch", "--parsable", "--job-name=train-j1", "--comment=dcops:j1", "--requeue",
        "--ntasks=1", "--cpus-per-task=4", "--nodes=1", "--nodelist=gpu01",
        "--ntasks-per-node=1", "--gres=gpu:2", "--mem=8000",
        "--wrap=python train.py --lr '3e-4 x'"]


def test_sbatch_for_whole_nodes_asks_per_node(executor: SlurmExecutor) -> None:
    args = executor.sbatch_args(job(tasks=16), Placement((("gpu01", 8), ("gpu02", 8))))
    assert "--nodelist=gpu01,gpu02" in args
    assert args[7:12] == ["--nodes=2", "--nodelist=gpu01,gpu02", "--ntasks-per-node=8",
                          "--gres=gpu:8", "--mem=64000"]


def test_uneven_placement_asks_per_task(executor: SlurmExecutor) -> None:
    args = executor.sbatch_args(job(tasks=3), Placement((("gpu01", 2), ("gpu02", 1))))
    assert args[7:] == ["--nodes=2", "--nodelist=gpu01,gpu02", "--gpus-per-task=1",
                        "--mem-per-cpu=2000", args[-1]]


def test_slurm_may_choose_the_nodes_and_site_flags_are_kept(fake: FakeSlurm) -> None:
    executor = SlurmExecutor(slurm_places=True, partition="a100", output="/logs/%x-%j.out",
                             extra_sbatch_args=["--account=ml"], runner=fake)
    args = executor.sbatch_args(job(), one_node())
    assert not any(a.startswith("--nodelist") for a in args)
    assert args[-4:-1] == ["--partition=a100", "--output=/logs/%x-%j.out", "--account=ml"]


def test_a_job_without_a_command_is_refused(executor: SlurmExecutor,
                                            fake: FakeSlurm) -> None:
    with pytest.raises(Invalid, match="no command"):
        executor.start(job(command=()), one_node())
    assert fake.calls == []


@pytest.mark.parametrize(("gpus_per_task", "tasks", "nodes", "expected"), [
    (1, 1, (1,), 1), (2, 8, (8, 8), 4), (1, 3, (2, 1), None), (3, 2, (4,), None),
    (0, 4, (0, 0), 2), (0, 3, (0, 0), None), (1, 4, (2, 2), 2),
])
def test_tasks_per_node(gpus_per_task: int, tasks: int, nodes: tuple[int, ...],
                        expected: int | None) -> None:
    placement = Placement(tuple((f"n{i}", g) for i, g in enumerate(nodes)))
    assert tasks_per_node(gpus_per_task, tasks, placement) == expected


def test_commands_run_from_bin_dir_with_slurm_conf(executor: SlurmExecutor,
                                                   fake: FakeSlurm) -> None:
    started(executor, fake)
    assert fake.calls[0][0] == "/opt/slurm/bin/sbatch"
    assert fake.envs[0]["SLURM_CONF"] == "/etc/slurm-test/slurm.conf"
    assert executor.slurm_id("j1") == "41"


def test_parsable_answer_with_a_cluster_name(executor: SlurmExecutor, fake: FakeSlurm) -> None:
    fake.answer("sbatch", "77;west\n")
    executor.start(job(), one_node())
    assert executor.slurm_id("j1") == "77"


# -- failures -----------------------------------------------------------------------------


def test_a_refused_submission_says_the_command_and_slurms_words(
        executor: SlurmExecutor, fake: FakeSlurm) -> None:
    fake.answer("sbatch", returncode=1, stderr="sbatch: error: Batch job submission failed: "
                "Requested node configuration is not available\n")
    with pytest.raises(SlurmCommandFailed) as caught:
        executor.start(job(), one_node())
    text = str(caught.value)
    assert text.startswith("slurm: `/opt/slurm/bin/sbatch --parsable --job-name=train-j1")
    assert "exited with 1: sbatch: error: Batch job submission failed" in text
    assert caught.value.status == 502
    assert executor.slurm_id("j1") is None


def test_an_answer_that_is_not_a_job_id_is_a_failure(executor: SlurmExecutor,
                                                     fake: FakeSlurm) -> None:
    fake.answer("sbatch", "Submitted batch job 5\n")
    with pytest.raises(SlurmCommandFailed, match="not a job id"):
        executor.start(job(), one_node())


def test_a_command_that_hangs_is_unavailable(executor: SlurmExecutor, fake: FakeSlurm) -> None:
    fake.fail_with("sinfo", subprocess.TimeoutExpired(["sinfo"], 30))
    with pytest.raises(SlurmUnavailable, match=r"`/opt/slurm/bin/sinfo --Node .*` did not "
                                               r"answer within 30s") as caught:
        executor.nodes()
    assert caught.value.status == 503


def test_a_missing_binary_is_unavailable_with_what_to_do(tmp_path: Path) -> None:
    executor = SlurmExecutor(bin_dir=tmp_path)  # the real runner, nothing there
    with pytest.raises(SlurmUnavailable, match=r"cannot run .*sinfo.*set the executor's bin_dir"):
        executor.nodes()


# -- poll ---------------------------------------------------------------------------------


def test_each_transition_is_reported_once(executor: SlurmExecutor, fake: FakeSlurm) -> None:
    started(executor, fake)
    fake.answer("squeue", squeue("41|PENDING|0|Priority|dcops:j1"))
    fake.answer("squeue", squeue("41|RUNNING|0|None|dcops:j1"))
    fake.answer("squeue", squeue("41|RUNNING|0|None|dcops:j1"))
    fake.answer("squeue", squeue("41|COMPLETING|0|None|dcops:j1"))
    fake.answer("squeue", squeue("41|COMPLETED|0|None|dcops:j1"))
    log = [executor.poll() for _ in range(5)]
    assert log == [[], [JobEvent("j1", T0, JobState.RUNNING)], [], [],
                   [JobEvent("j1", T0, JobState.COMPLETED)]]
    assert executor.poll() == []  # a reported end is forgotten: squeue is not asked again
    assert fake.commands().count("squeue --noheader --states=all") == 5
    assert "--jobs=41" in fake.calls[1]


def test_a_job_that_ran_between_polls_is_reported_running_then_done(
        executor: SlurmExecutor, fake: FakeSlurm) -> None:
    started(executor, fake)
    fake.answer("squeue", squeue("41|COMPLETED|0|None|dcops:j1"))
    assert [e.state for e in executor.poll()] == [JobState.RUNNING, JobState.COMPLETED]


def test_a_failure_carries_the_exit_code_from_scontrol(executor: SlurmExecutor,
                                                       fake: FakeSlurm) -> None:
    started(executor, fake)
    fake.answer("squeue", squeue("41|FAILED|0|NonZeroExitCode|dcops:j1"))
    fake.answer("scontrol", "JobId=41 JobName=train-j1 JobState=FAILED "
                            "Reason=NonZeroExitCode ExitCode=3:0 RunTime=00:00:01\n")
    assert executor.poll() == [JobEvent("j1", T0, JobState.RUNNING),
                               JobEvent("j1", T0, JobState.FAILED,
                                        "Slurm job 41 FAILED: exit code 3")]
    assert fake.calls[-1][1:] == ["show", "job", "--oneliner", "41"]


def test_a_requeue_between_polls_shows_in_the_restart_count(executor: SlurmExecutor,
                                                            fake: FakeSlurm) -> None:
    started(executor, fake)
    fake.answer("squeue", squeue("41|RUNNING|0|None|dcops:j1"))
    fake.answer("squeue", squeue("41|RUNNING|1|None|dcops:j1"))  # node failed, ran again
    executor.poll()
    assert [(e.state, e.reason) for e in executor.poll()] == [
        (JobState.REQUEUED, "Slurm job 41 requeued"), (JobState.RUNNING, "")]


def test_jobs_squeue_has_forgotten_are_read_from_sacct(executor: SlurmExecutor,
                                                       fake: FakeSlurm) -> None:
    started(executor, fake, "41", job("j1"))
    started(executor, fake, "42", job("j2"))
    fake.answer("squeue", squeue("42|RUNNING|0|None|dcops:j2"))
    fake.answer("sacct", "41|TIMEOUT|0:15|TimeLimit\n")
    assert executor.poll() == [
        JobEvent("j1", T0, JobState.RUNNING),
        JobEvent("j1", T0, JobState.FAILED,
                 "Slurm job 41 TIMEOUT: killed by signal 15, TimeLimit"),
        JobEvent("j2", T0, JobState.RUNNING)]
    assert fake.calls[-1][1:] == ["--noheader", "--parsable2", "--allocations", "--jobs=41",
                                  "--format=JobIDRaw,State,ExitCode,Reason"]


def test_a_job_gone_from_squeue_without_accounting_is_reported_lost(
        executor: SlurmExecutor, fake: FakeSlurm) -> None:
    started(executor, fake)
    fake.answer("squeue", returncode=1,
                stderr="slurm_load_jobs error: Invalid job id specified\n")
    fake.answer("sacct", returncode=1, stderr="Slurm accounting storage is disabled\n")
    (event,) = executor.poll()
    assert (event.state, event.reason) == (
        JobState.FAILED, "Slurm job 41 is gone from squeue and sacct (no accounting?)")
    assert executor.slurm_id("j1") is None


def test_squeue_failing_otherwise_is_an_error(executor: SlurmExecutor, fake: FakeSlurm) -> None:
    started(executor, fake)
    fake.answer("squeue", returncode=1, stderr="squeue: error: Invalid user: nobody\n")
    with pytest.raises(SlurmCommandFailed, match="Invalid user"):
        executor.poll()
    assert executor.slurm_id("j1") == "41"  # still tracked: the next poll asks again


def test_an_unreachable_controller_is_unavailable(executor: SlurmExecutor,
                                                  fake: FakeSlurm) -> None:
    started(executor, fake)
    fake.answer("squeue", returncode=1, stderr="slurm_load_jobs error: Unable to contact "
                                               "slurm controller (connect failure)\n")
    with pytest.raises(SlurmUnavailable, match="could not reach slurmctld: slurm_load_jobs"):
        executor.poll()
    assert executor.slurm_id("j1") == "41"  # still tracked: the next poll asks again


def test_preempted_by_slurm_itself_goes_back_to_the_queue(executor: SlurmExecutor,
                                                          fake: FakeSlurm) -> None:
    started(executor, fake)
    fake.answer("squeue", squeue("41|PREEMPTED|0|None|dcops:j1"))
    assert [(e.state, e.reason) for e in executor.poll()] == [
        (JobState.REQUEUED, "Slurm job 41 preempted by Slurm")]


def test_nothing_started_nothing_asked(executor: SlurmExecutor, fake: FakeSlurm) -> None:
    assert executor.poll() == []
    assert fake.calls == []


# -- preempt, start again, cancel -----------------------------------------------------------


def test_preempt_requeues_and_start_makes_it_eligible_on_its_new_node(
        executor: SlurmExecutor, fake: FakeSlurm) -> None:
    the_job = started(executor, fake)
    fake.answer("squeue", squeue("41|RUNNING|0|None|dcops:j1"))
    executor.poll()
    fake.answer("scontrol")
    executor.preempt(the_job)
    assert fake.calls[-1][1:] == ["requeue", "41"]
    fake.answer("squeue", squeue("41|PENDING|1|BeginTime|dcops:j1"))
    assert [e.state for e in executor.poll()] == [JobState.REQUEUED]
    fake.answer("scontrol")
    executor.start(the_job, Placement((("gpu07", 1),)))
    assert fake.calls[-1][1:] == ["update", "JobId=41", "StartTime=now", "NodeList=gpu07"]
    fake.answer("squeue", squeue("41|RUNNING|1|None|dcops:j1"))
    assert [e.state for e in executor.poll()] == [JobState.RUNNING]


def test_a_job_still_completing_is_started_again_once_pending(
        executor: SlurmExecutor, fake: FakeSlurm) -> None:
    the_job = started(executor, fake)
    fake.answer("squeue", squeue("41|RUNNING|0|None|dcops:j1"))
    fake.answer("squeue", squeue("41|COMPLETING|1|None|dcops:j1"))
    executor.poll()
    fake.answer("scontrol")
    executor.preempt(the_job)
    assert [e.state for e in executor.poll()] == [JobState.REQUEUED]
    calls = len(fake.calls)
    executor.start(the_job, one_node())
    assert len(fake.calls) == calls  # nothing yet: an update now would be undone
    fake.answer("squeue", squeue("41|PENDING|1|BeginTime|dcops:j1"))
    fake.answer("scontrol")
    assert executor.poll() == []
    assert fake.calls[-1][1:] == ["update", "JobId=41", "StartTime=now", "NodeList=gpu01"]
    fake.answer("squeue", squeue("41|PENDING|1|None|dcops:j1"))
    assert executor.poll() == []
    assert fake.calls[-1][0].endswith("squeue")  # done once, not at every poll


def test_starting_a_running_job_again_is_a_conflict(executor: SlurmExecutor,
                                                    fake: FakeSlurm) -> None:
    the_job = started(executor, fake)
    fake.answer("squeue", squeue("41|RUNNING|0|None|dcops:j1"))
    executor.poll()
    with pytest.raises(Conflict, match="already running as Slurm job 41"):
        executor.start(the_job, one_node())


def test_preempting_a_job_never_started_here_is_not_found(executor: SlurmExecutor,
                                                          fake: FakeSlurm) -> None:
    with pytest.raises(NotFound, match="'j1' not found"):
        executor.preempt(job())
    assert fake.calls == []


def test_cancel_runs_scancel_and_the_end_is_reported(executor: SlurmExecutor,
                                                     fake: FakeSlurm) -> None:
    the_job = started(executor, fake)
    fake.answer("scancel")
    executor.cancel(the_job)
    assert fake.calls[-1] == ["/opt/slurm/bin/scancel", "41"]
    fake.answer("squeue", squeue("41|CANCELLED|0|None|dcops:j1"))
    assert executor.poll() == [JobEvent("j1", T0, JobState.CANCELLED,
                                        "Slurm job 41 cancelled")]


def test_cancelling_a_job_never_started_runs_nothing(executor: SlurmExecutor,
                                                     fake: FakeSlurm) -> None:
    executor.cancel(job())
    assert fake.calls == []


def test_adopt_finds_dcops_jobs_after_a_restart(executor: SlurmExecutor,
                                                fake: FakeSlurm) -> None:
    fake.answer("squeue", squeue("50|RUNNING|0|None|dcops:j1", "51|PENDING|2|BeginTime|dcops:j2",
                                 "52|RUNNING|0|None|", "53|PENDING|0|Priority|dcops:j3"))
    assert executor.adopt() == {"j1": "50", "j2": "51", "j3": "53"}
    assert fake.calls[0][1:] == ["--noheader", "--states=all",
                                 "--Format=JobID:|,State:|,RestartCnt:|,Reason:|,Comment:"]
    fake.answer("squeue", squeue("50|RUNNING|0|None|dcops:j1", "51|PENDING|2|BeginTime|dcops:j2",
                                 "53|RUNNING|0|None|dcops:j3"))
    assert executor.poll() == [JobEvent("j3", T0, JobState.RUNNING)]


def test_adopt_skips_finished_jobs_unless_asked_for_them(fake: FakeSlurm) -> None:
    recorded = squeue("60|COMPLETED|0|None|dcops:j1", "61|RUNNING|0|None|dcops:j2",
                      "62|FAILED|0|NonZeroExitCode|dcops:j3")
    fake.answer("squeue", recorded)
    assert SlurmExecutor(runner=fake).adopt() == {"j2": "61"}
    fake.answer("squeue", recorded)
    executor = SlurmExecutor(runner=fake, clock=FakeClock(T0))
    assert executor.adopt(["j1", "j2"]) == {"j1": "60", "j2": "61"}
    fake.answer("squeue", squeue("60|COMPLETED|0|None|dcops:j1", "61|RUNNING|0|None|dcops:j2"))
    assert executor.poll() == [JobEvent("j1", T0, JobState.COMPLETED)]


# -- nodes --------------------------------------------------------------------------------


def test_nodes_from_sinfo(executor: SlurmExecutor, fake: FakeSlurm) -> None:
    fake.answer("sinfo", "gpu01|64|512000|gpu:h100:8(S:0-1)|drained|xid 79\n")
    assert executor.nodes() == [NodeInfo(name="gpu01", gpus=8, cpus=64, memory_mb=512000,
                                         schedulable=False, reason="xid 79")]
    assert fake.calls[0][1:] == ["--Node", "--noheader", "--format=%N|%c|%m|%G|%T|%E"]


# -- against a real Slurm -----------------------------------------------------------------


@pytest.fixture
def real(slurm_cluster: SlurmCluster, tmp_path: Path) -> Iterator[SlurmExecutor]:
    """An executor on the session's Slurm; whatever a test leaves running is cancelled."""
    executor = SlurmExecutor(slurm_conf=slurm_cluster.conf, bin_dir=slurm_cluster.bin_dir,
                             output=str(tmp_path / "%x-%j.out"), timeout_s=20)
    try:
        yield executor
    finally:
        slurm_cluster.cancel_all()


def real_job(job_id: str, *command: str) -> Job:
    spec = JobSpec(name=f"dcops-test-{job_id}", gpus_per_task=1, cpus_per_task=1,
                   memory_mb_per_task=100, command=command)
    return Job(id=job_id, spec=spec, submit_s=time.time())


def events_until(executor: SlurmExecutor, job_id: str, state: JobState,
                 cluster: SlurmCluster, timeout_s: float = 30.0) -> list[JobEvent]:
    """Poll until `job_id` is reported in `state`; all of its events up to then."""
    seen: list[JobEvent] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen.extend(e for e in executor.poll() if e.job_id == job_id)
        if any(e.state is state for e in seen):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{job_id} not {state} after {timeout_s}s (events: {seen})\n"
                         f"{cluster.command('squeue', '--states=all')}\n{cluster.logs()}")


def placement_on(cluster: SlurmCluster) -> Placement:
    return Placement(((cluster.node, 1),))


@pytest.mark.engines
def test_a_job_runs_and_completes(real: SlurmExecutor, slurm_cluster: SlurmCluster,
                                  tmp_path: Path) -> None:
    real.start(real_job("ok", "sh", "-c", "echo hello from $SLURM_JOB_ID"),
               placement_on(slurm_cluster))
    slurm_id = real.slurm_id("ok")
    events = events_until(real, "ok", JobState.COMPLETED, slurm_cluster)
    assert [e.state for e in events] == [JobState.RUNNING, JobState.COMPLETED]
    output = (tmp_path / f"dcops-test-ok-{slurm_id}.out").read_text()
    assert output == f"hello from {slurm_id}\n"
    assert real.poll() == []


@pytest.mark.engines
def test_a_failing_command_is_failed_with_its_exit_code(real: SlurmExecutor,
                                                        slurm_cluster: SlurmCluster) -> None:
    real.start(real_job("bad", "sh", "-c", "exit 3"), placement_on(slurm_cluster))
    slurm_id = real.slurm_id("bad")
    events = events_until(real, "bad", JobState.FAILED, slurm_cluster)
    assert events[-1].reason == f"Slurm job {slurm_id} FAILED: exit code 3"


@pytest.mark.engines
def test_cancel_a_running_job(real: SlurmExecutor, slurm_cluster: SlurmCluster) -> None:
    the_job = real_job("long", "sleep", "120")
    real.start(the_job, placement_on(slurm_cluster))
    events_until(real, "long", JobState.RUNNING, slurm_cluster)
    real.cancel(the_job)
    events = events_until(real, "long", JobState.CANCELLED, slurm_cluster)
    assert [e.state for e in events] == [JobState.CANCELLED]


@pytest.mark.engines
def test_preempt_requeues_and_start_runs_it_again(real: SlurmExecutor,
                                                  slurm_cluster: SlurmCluster) -> None:
    the_job = real_job("pre", "sleep", "120")
    real.start(the_job, placement_on(slurm_cluster))
    slurm_id = real.slurm_id("pre")
    events_until(real, "pre", JobState.RUNNING, slurm_cluster)
    real.preempt(the_job)
    events = events_until(real, "pre", JobState.REQUEUED, slurm_cluster)
    assert [e.state for e in events] == [JobState.REQUEUED]
    state = slurm_cluster.command("squeue", "--noheader", f"--jobs={slurm_id}", "--format=%T")
    assert state.strip() in {"PENDING", "COMPLETING"}  # waiting: Slurm delays a requeued job
    real.start(the_job, placement_on(slurm_cluster))
    events = events_until(real, "pre", JobState.RUNNING, slurm_cluster)
    assert [e.state for e in events] == [JobState.RUNNING]
    assert real.slurm_id("pre") == slurm_id  # the same Slurm job, not a second copy


@pytest.mark.engines
def test_a_new_executor_adopts_the_running_job(real: SlurmExecutor,
                                               slurm_cluster: SlurmCluster) -> None:
    the_job = real_job("kept", "sleep", "120")
    real.start(the_job, placement_on(slurm_cluster))
    events_until(real, "kept", JobState.RUNNING, slurm_cluster)
    restarted = SlurmExecutor(slurm_conf=slurm_cluster.conf, bin_dir=slurm_cluster.bin_dir)
    assert restarted.adopt() == {"kept": real.slurm_id("kept")}
    assert restarted.poll() == []  # running already, as the scheduler knew
    restarted.cancel(the_job)
    events = events_until(restarted, "kept", JobState.CANCELLED, slurm_cluster)
    assert [e.state for e in events] == [JobState.CANCELLED]


@pytest.mark.engines
def test_slurm_refusing_a_job_says_why(real: SlurmExecutor,
                                       slurm_cluster: SlurmCluster) -> None:
    spec = JobSpec(name="too-big", memory_mb_per_task=NODE_MEMORY_MB * 10, command=("true",))
    with pytest.raises(SlurmCommandFailed, match="Requested node configuration is not available"):
        real.start(Job(id="big", spec=spec, submit_s=time.time()), placement_on(slurm_cluster))
    assert real.slurm_id("big") is None


@pytest.mark.engines
def test_nodes_reads_the_node_and_its_fake_gpus(real: SlurmExecutor,
                                                slurm_cluster: SlurmCluster) -> None:
    assert real.nodes() == [NodeInfo(name=slurm_cluster.node, gpus=NODE_GPUS, cpus=NODE_CPUS,
                                     memory_mb=NODE_MEMORY_MB)]
