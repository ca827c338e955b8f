"""The local executor runs real processes: exit codes become events, cancel and preempt
signal the process group, each job sees only its devices."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcops.backends.local_executor import LocalExecutor
from dcops.core.errors import Invalid
from dcops.scheduling.executor import JobEvent
from dcops.scheduling.model import Job, JobSpec, JobState, Placement

PY = sys.executable


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    made = LocalExecutor(tmp_path / "jobs", gpus_per_node=4, grace_s=2.0, workdir=tmp_path)
    yield made
    made.close()


def _job(job_id: str, *command: str, gpus: int = 1) -> Job:
    return Job(job_id, JobSpec(name=f"job-{job_id}", gpus_per_task=gpus, command=command), 0.0)


def _wait(executor: LocalExecutor, count: int = 1, timeout_s: float = 20.0) -> list[JobEvent]:
    events: list[JobEvent] = []
    deadline = time.monotonic() + timeout_s
    while len(events) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {events} after {timeout_s}s")
        events += executor.poll()
        time.sleep(0.02)
    return events


def test_one_node_named_local_with_the_configured_gpus(executor: LocalExecutor) -> None:
    assert [(n.name, n.gpus) for n in executor.nodes()] == [("local", 4)]
    several = LocalExecutor(Path("unused"), nodes=2, gpus_per_node=2)
    assert [(n.name, n.gpus) for n in several.nodes()] == [("local-0", 2), ("local-1", 2)]


def test_exit_zero_completes_and_the_output_is_in_the_log(executor: LocalExecutor) -> None:
    job = _job("1", PY, "-c", "import time; time.sleep(0.2); print('trained')")
    executor.start(job, Placement((("local", 1),)))
    assert executor.poll() == []  # still sleeping
    [event] = _wait(executor)
    assert (event.job_id, event.state, event.reason) == ("1", JobState.COMPLETED, "")
    assert "trained" in executor.log_path("1").read_text()


def test_a_non_zero_exit_fails_with_its_code(executor: LocalExecutor) -> None:
    executor.start(_job("2", PY, "-c", "import sys; sys.exit(3)"), Placement((("local", 1),)))
    [event] = _wait(executor)
    assert (event.state, event.reason) == (JobState.FAILED, "exit code 3")


def test_a_command_that_does_not_exist_fails_at_the_next_poll(executor: LocalExecutor) -> None:
    executor.start(_job("3", "/no/such/program"), Placement((("local", 2),)))
    [event] = executor.poll()
    assert event.state is JobState.FAILED and "/no/such/program" in event.reason
    executor.start(_job("4", PY, "-c", "pass", gpus=4), Placement((("local", 4),)))
    assert _wait(executor)[0].state is JobState.COMPLETED  # its GPUs were given back


def test_cuda_visible_devices_and_job_id_are_set(executor: LocalExecutor,
                                                 tmp_path: Path) -> None:
    script = ("import os; print(os.environ['CUDA_VISIBLE_DEVICES'], "
              "os.environ['DCOPS_JOB_ID'], os.getcwd())")
    executor.start(_job("5", PY, "-c", "import time; time.sleep(5)", gpus=1),
                   Placement((("local", 1),)))
    executor.start(_job("6", PY, "-c", script, gpus=2), Placement((("local", 2),)))
    events = _wait(executor)
    assert [(e.job_id, e.state) for e in events] == [("6", JobState.COMPLETED)]
    last = executor.log_path("6").read_text().splitlines()[-1]
    assert last == f"1,2 6 {tmp_path}"  # device 0 is job 5's


def test_devices_of_a_second_node_follow_the_first(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "jobs", nodes=2, gpus_per_node=2)
    script = "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"
    executor.start(_job("7", PY, "-c", script, gpus=3),
                   Placement((("local-0", 2), ("local-1", 1))))
    _wait(executor)
    assert executor.log_path("7").read_text().splitlines()[-1] == "0,1,2"


def test_cancel_kills_the_process_group(executor: LocalExecutor) -> None:
    # the job's child ignores nothing; both must go when the job is cancelled
    script = ("import subprocess, sys, time; "
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              "time.sleep(60)")
    job = _job("8", PY, "-c", script)
    executor.start(job, Placement((("local", 1),)))
    pgid = executor.pid("8")
    assert pgid is not None
    time.sleep(0.3)
    executor.cancel(job)
    deadline = time.monotonic() + 10
    while _group_alive(pgid):
        assert time.monotonic() < deadline, "the job's process group outlived cancel"
        assert executor.poll() == []  # a cancelled job reports nothing more
        time.sleep(0.05)
    assert executor.pid("8") is None


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace_period(
        executor: LocalExecutor) -> None:
    script = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "print('ready', flush=True); time.sleep(60)")
    job = _job("9", PY, "-c", script)
    executor.start(job, Placement((("local", 1),)))
    pid = executor.pid("9")
    assert pid is not None
    _wait_for_line(executor.log_path("9"), "ready")
    started = time.monotonic()
    executor.preempt(job)
    while _group_alive(pid):
        executor.poll()
        assert time.monotonic() - started < 10
        time.sleep(0.05)
    assert time.monotonic() - started >= 1.9  # SIGTERM was ignored until SIGKILL


def test_preempt_sends_sigterm_so_the_job_can_checkpoint(executor: LocalExecutor) -> None:
    script = ("import os, signal, sys, time\n"
              "def stop(*_):\n"
              "    open(os.path.join(os.environ['DCOPS_JOB_DIR'], 'ckpt'), 'w').write('42')\n"
              "    sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, stop)\n"
              "print('ready', flush=True)\n"
              "time.sleep(60)\n")
    job = _job("10", PY, "-c", script)
    executor.start(job, Placement((("local", 1),)))
    _wait_for_line(executor.log_path("10"), "ready")
    executor.preempt(job)
    checkpoint = executor.jobs_dir / "10" / "ckpt"
    deadline = time.monotonic() + 10
    while not checkpoint.exists():
        assert time.monotonic() < deadline
        assert executor.poll() == []
        time.sleep(0.05)
    assert checkpoint.read_text() == "42"


def test_a_job_without_a_command_is_refused(executor: LocalExecutor) -> None:
    with pytest.raises(Invalid, match="needs a command"):
        executor.check(_job("11"))


def test_close_stops_every_running_job(tmp_path: Path) -> None:
    executor = LocalExecutor(tmp_path / "jobs", grace_s=2.0)
    executor.start(_job("12", PY, "-c", "import time; time.sleep(60)"),
                   Placement((("local", 1),)))
    pid = executor.pid("12")
    assert pid is not None
    executor.close()
    assert not _group_alive(pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # a zombie leader counts as gone once reaped; ask ps-free: /proc of the members
    return any(_pgid_of(pid) == pgid for pid in _pids())


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _pgid_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[2]) if fields[0] != "Z" else None


def _wait_for_line(path: Path, text: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.02)
