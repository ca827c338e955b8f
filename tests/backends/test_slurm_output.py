"""Reading Slurm's command output: recorded squeue, sacct, scontrol and sinfo lines."""

from __future__ import annotations

import pytest

from dcops.backends.slurm_output import (
    Phase,
    SlurmJob,
    exit_code_of_show_job,
    failure_reason,
    gres_gpus,
    parse_exit_code,
    parse_sacct,
    parse_sinfo,
    parse_squeue,
    phase,
)
from dcops.scheduling.cluster import NodeInfo


def test_squeue_lines_become_jobs_by_id() -> None:
    text = ("1|COMPLETED|0|None|dcops:j1\n"
            "\n"
            "2|FAILED|0|NonZeroExitCode|dcops:j2\n"
            "3|PENDING|1|BeginTime|(null)\n")
    assert parse_squeue(text) == {
        "1": SlurmJob("1", "COMPLETED", 0, "", "dcops:j1"),
        "2": SlurmJob("2", "FAILED", 0, "NonZeroExitCode", "dcops:j2"),
        "3": SlurmJob("3", "PENDING", 1, "BeginTime", ""),
    }


def test_a_bar_in_the_comment_stays_in_the_comment() -> None:
    (job,) = parse_squeue("7|RUNNING|0|None|dcops:a|b\n").values()
    assert job.comment == "dcops:a|b"
    assert job.dcops_id == "a|b"


def test_squeue_skips_lines_that_are_not_jobs() -> None:
    assert parse_squeue("squeue: warning: something\n5|RUNNING|0|None|x\n").keys() == {"5"}


def test_a_job_without_the_dcops_comment_has_no_dcops_id() -> None:
    assert SlurmJob("9", "RUNNING", comment="someone else's").dcops_id is None


@pytest.mark.parametrize(("state", "expected"), [
    ("PENDING", Phase.PENDING), ("CONFIGURING", Phase.PENDING), ("RUNNING", Phase.RUNNING),
    ("REQUEUED", Phase.REQUEUED), ("REQUEUE_HOLD", Phase.REQUEUED),
    ("COMPLETED", Phase.COMPLETED), ("FAILED", Phase.FAILED), ("TIMEOUT", Phase.FAILED),
    ("NODE_FAIL", Phase.FAILED), ("OUT_OF_MEMORY", Phase.FAILED),
    ("CANCELLED by 0", Phase.CANCELLED), ("PREEMPTED", Phase.PREEMPTED),
    ("COMPLETING", Phase.OTHER), ("SUSPENDED", Phase.OTHER), ("", Phase.OTHER),
])
def test_slurm_states_by_phase(state: str, expected: Phase) -> None:
    assert phase(state) is expected


def test_sacct_keeps_the_latest_run_and_reads_exit_codes() -> None:
    text = ("4|REQUEUED|0:0|None\n"
            "4|TIMEOUT|0:15|TimeLimit\n"
            "5|CANCELLED by 0|0:0|None\n"
            "6|FAILED|2:0|NonZeroExitCode\n")
    jobs = parse_sacct(text)
    assert jobs["4"] == SlurmJob("4", "TIMEOUT", reason="TimeLimit", exit_code=0, signal=15)
    assert jobs["5"].phase is Phase.CANCELLED
    assert (jobs["6"].exit_code, jobs["6"].signal) == (2, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("3:0", (3, 0)), ("0:15", (0, 15)), ("1", (1, 0)), ("", (None, None)),
    ("n/a", (None, None)),
])
def test_exit_codes(text: str, expected: tuple[int | None, int | None]) -> None:
    assert parse_exit_code(text) == expected


def test_the_exit_code_of_scontrol_show_job() -> None:
    line = ("JobId=2 JobName=bad JobState=FAILED Reason=NonZeroExitCode Requeue=1 "
            "Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 RunTime=00:00:00 DerivedExitCode=0:0")
    assert exit_code_of_show_job(line) == (3, 0)
    assert exit_code_of_show_job("JobId=2 JobState=FAILED") == (None, None)


def test_failure_reasons_say_the_state_and_the_exit() -> None:
    assert failure_reason(SlurmJob("2", "FAILED", reason="NonZeroExitCode", exit_code=3,
                                   signal=0)) == "Slurm job 2 FAILED: exit code 3"
    assert failure_reason(SlurmJob("4", "TIMEOUT", reason="TimeLimit", exit_code=0,
                                   signal=15)) == ("Slurm job 4 TIMEOUT: killed by signal 15, "
                                                   "TimeLimit")
    assert failure_reason(SlurmJob("8", "NODE_FAIL")) == "Slurm job 8 NODE_FAIL"


@pytest.mark.parametrize(("gres", "gpus"), [
    ("gpu:2", 2), ("gpu:a100:8(S:0-1)", 8), ("gpu:a100:4,gpu:v100:4", 8),
    ("gpu:2,shard:8", 2), ("shard:8,gpu:h100:8(S:0-1)", 8), ("(null)", 0), ("", 0),
    ("mps:100", 0),
])
def test_gpus_from_gres(gres: str, gpus: int) -> None:
    assert gres_gpus(gres) == gpus


def test_sinfo_nodes_with_their_state_and_reason() -> None:
    text = ("gpu01|64|512000|gpu:h100:8(S:0-1)|idle|none\n"
            "gpu01|64|512000|gpu:h100:8(S:0-1)|idle|none\n"  # in a second partition
            "gpu02|64|512000|gpu:h100:8(S:0-1)|drained|xid 79 on gpu 3 | dcops\n"
            "gpu03|64|512000|gpu:h100:8|mixed|none\n"
            "gpu04|64|512000|gpu:h100:8|idle*|none\n"
            "gpu05|64|512000|gpu:h100:8|down*|Not responding\n"
            "gpu06|64|512000|gpu:h100:8|draining|maintenance\n"
            "gpu07|64|512000|gpu:h100:8|allocated+|none\n")
    nodes = parse_sinfo(text)
    assert [n.name for n in nodes] == [f"gpu0{i}" for i in range(1, 8)]
    assert nodes[0] == NodeInfo(name="gpu01", gpus=8, cpus=64, memory_mb=512000)
    assert [(n.schedulable, n.reason) for n in nodes[1:]] == [
        (False, "xid 79 on gpu 3 | dcops"), (True, ""), (False, "not responding"),
        (False, "Not responding"), (False, "maintenance"), (True, "")]
