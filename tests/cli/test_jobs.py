"""`dcops jobs ...` against a real server process whose local executor runs real
processes: submit to completion, failures with their exit code, cancel, the queue, fair
share, clear one-line refusals, and jobs kept across a restart."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dcops.cli.main import app
from tests.api.process import DcopsProcess

runner = CliRunner()
PY = sys.executable
CONFIG = """scheduling:
  tick_interval_s: 0.1
  local: {gpus_per_node: 4, stop_grace_s: 2}
  tenants:
    - {name: research, gpu_quota: 4, weight: 2}
    - {name: prod}
"""


def _server(data_dir: Path) -> DcopsProcess:
    config = data_dir.parent / "dcops.yaml"
    config.write_text(CONFIG)
    return DcopsProcess(data_dir, args=["--config", str(config)])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DcopsProcess]:
    proc = _server(tmp_path_factory.mktemp("jobs") / "data").start()
    yield proc
    proc.stop()


def _run(server: DcopsProcess, *args: str) -> tuple[int, str]:
    token_file = server.data_dir / "admin.token"
    result = runner.invoke(app, [args[0], args[1], "--server", server.url,
                                 "--token-file", str(token_file), *args[2:]],
                           env={"COLUMNS": "200"})
    return result.exit_code, result.output


def _job(server: DcopsProcess, job_id: str) -> Any:
    with server.client() as http:
        return http.get(f"/api/v1/jobs/{job_id}").json()


def _wait(server: DcopsProcess, job_id: str, state: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while (job := _job(server, job_id))["state"] != state:
        assert time.monotonic() < deadline, f"job {job_id} is {job['state']}, not {state}"
        time.sleep(0.1)
    return job


def _submit(server: DcopsProcess, *args: str) -> str:
    code, output = _run(server, "jobs", "submit", *args)
    assert code == 0, output
    return output.strip()


def test_a_job_runs_to_completion_on_its_gpus(server: DcopsProcess) -> None:
    script = "import os; print('devices', os.environ['CUDA_VISIBLE_DEVICES'])"
    job_id = _submit(server, "--gpus", "2", "--tasks", "1", "--tenant", "research",
                     "--name", "x", "--", PY, "-c", script)
    _wait(server, job_id, "completed")
    code, output = _run(server, "jobs", "show", job_id)
    assert code == 0, output
    assert "completed" in output and "started on local:2" in output
    code, output = _run(server, "jobs", "logs", job_id)
    assert code == 0 and "devices 0,1" in output
    code, output = _run(server, "jobs", "list", "--state", "completed")
    assert code == 0 and job_id in output and " x " in output


def test_a_failing_job_shows_its_exit_code(server: DcopsProcess) -> None:
    job_id = _submit(server, "--tenant", "prod", "--", PY, "-c", "import sys; sys.exit(3)")
    job = _wait(server, job_id, "failed")
    assert job["reason"] == "exit code 3"
    assert job["name"] == "python"  # named after the program when not given
    code, output = _run(server, "jobs", "list", "--tenant", "prod")
    assert code == 0 and "exit code 3" in output


def test_cancel_queue_and_fairness(server: DcopsProcess) -> None:
    sleeper = _submit(server, "--gpus", "4", "--tenant", "prod", "--name", "sleeper",
                      "--", PY, "-c", "import time; time.sleep(60)")
    _wait(server, sleeper, "running")
    waiting = _submit(server, "--gpus", "1", "--tenant", "research", "--name", "waiter",
                      "--", PY, "-c", "pass")
    code, output = _run(server, "jobs", "queue")
    assert code == 0, output
    assert "4 of 4 GPUs in use" in output and "waiter" in output
    code, output = _run(server, "jobs", "fairness")
    assert code == 0, output
    prod = next(line for line in output.splitlines() if " prod " in line)
    assert "100%" in prod  # all 4 GPUs are prod's
    code, output = _run(server, "jobs", "cancel", sleeper)
    assert code == 0 and f"job {sleeper} cancelled" in output
    _wait(server, waiting, "completed")  # the GPUs came free
    assert _job(server, sleeper)["state"] == "cancelled"


def test_refusals_are_one_clear_line(server: DcopsProcess) -> None:
    code, output = _run(server, "jobs", "submit", "--tenant", "nobody", "--", PY, "-c", "")
    assert code == 1 and "unknown tenant 'nobody'" in output and "Traceback" not in output
    code, output = _run(server, "jobs", "submit", "--tenant", "research")
    assert code == 1 and "needs a command" in output
    code, output = _run(server, "jobs", "submit", "--gpus", "8", "--tenant", "prod", "--",
                        PY)
    assert code == 1 and "the cluster has 4" in output
    code, output = _run(server, "jobs", "submit", "--gpus", "-1", "--", PY)
    assert code == 1 and "gpus_per_task" in output
    code, output = _run(server, "jobs", "show", "999")
    assert code == 1 and "job '999' not found" in output


def test_jobs_survive_a_restart(tmp_path: Path) -> None:
    proc = _server(tmp_path / "data").start()
    try:
        done = _submit(proc, "--tenant", "prod", "--", PY, "-c", "pass")
        _wait(proc, done, "completed")
        running = _submit(proc, "--gpus", "4", "--tenant", "prod", "--", PY, "-c",
                          "import time; time.sleep(60)")
        _wait(proc, running, "running")
        queued = _submit(proc, "--gpus", "1", "--tenant", "prod", "--", PY, "-c", "pass")
    finally:
        proc.stop()  # the running job is stopped with the server
    again = _server(tmp_path / "data").start()
    try:
        assert _job(again, done)["state"] == "completed"
        restarted = _wait(again, running, "running")
        assert restarted["restarts"] == 1
        assert "requeued: the control plane restarted while it ran" in [
            e["what"] for e in restarted["events"]]
        assert _job(again, queued)["state"] == "queued"  # behind it, FIFO
        assert _submit(again, "--tenant", "prod", "--", PY, "-c", "pass") == str(
            int(queued) + 1)
    finally:
        again.stop()
