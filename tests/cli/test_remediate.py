"""`dcops health`, `dcops remediate ...` and `dcops incidents ...` against a real server
process: an Xid 79 posted for the node a real job runs on drains it and requeues the job;
the plan waits for an approval, survives `kill -9` of the server, and fails with the
reason once approved (the local executor cannot reboot); a dry run changes nothing; a
plan that does not exist is a one-line error."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcops.cli.main import app
from tests.api.process import DcopsProcess

runner = CliRunner()
CONFIG = """scheduling:
  tick_interval_s: 0.1
  local: {gpus_per_node: 4, stop_grace_s: 2}
remediation:
  tick_s: 0.2
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DcopsProcess]:
    config = tmp_path / "dcops.yaml"
    config.write_text(CONFIG)
    proc = DcopsProcess(tmp_path / "data", args=["--config", str(config)]).start()
    yield proc
    proc.stop()


def run(server: DcopsProcess, *args: str) -> tuple[int, str]:
    token_file = server.data_dir / "admin.token"
    result = runner.invoke(app, [*args, "--server", server.url, "--token-file",
                                 str(token_file)], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def wait(check: object, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_xid_79_drains_the_jobs_node_and_the_plan_survives_kill_9(server: DcopsProcess) -> None:
    with server.client() as api:
        job = api.post("/api/v1/jobs", json={"name": "train", "gpus_per_task": 4,
                                             "command": [sys.executable, "-c",
                                                         "import time; time.sleep(300)"]})
        assert job.status_code == 201, job.text
        job_id = job.json()["id"]
        wait(lambda: api.get(f"/api/v1/jobs/{job_id}").json()["state"] == "running",
             "the job to run")
        answer = api.post("/api/v1/health/signals", json={"signals": [
            {"node": "local", "kind": "xid", "code": 79, "gpu": 2}]})
        assert answer.status_code == 202
        wait(lambda: api.get(f"/api/v1/jobs/{job_id}").json()["restarts"] == 1,
             "the job to be requeued")
    code, out = run(server, "remediate", "list", "--live")
    assert code == 0 and "local" in out and "waiting" in out and "reboot" in out
    plan_id = re.search(r"plan-[0-9a-f]{12}", out)
    assert plan_id is not None
    code, out = run(server, "health", "local")
    assert code == 0 and "failed" in out and "Xid 79" in out
    code, out = run(server, "incidents", "list", "--open")
    assert code == 0 and "local" in out and "GPU_HAS_FALLEN_OFF_THE_BUS" in out

    server.kill()
    server.start()
    with server.client() as api:  # the drain outlived the crash: the job waits elsewhere
        time.sleep(1.0)
        assert api.get(f"/api/v1/jobs/{job_id}").json()["state"] in {"queued", "requeued"}
    code, out = run(server, "remediate", "show", plan_id.group(0))
    assert code == 0, out
    assert "awaiting_approval" in out and "reboot local/2" in out
    assert re.search(r"done\s+drain_now local/2", out)
    code, out = run(server, "remediate", "approve", plan_id.group(0))
    assert code == 0, out
    with server.client() as api:
        wait(lambda: api.get(f"/api/v1/remediation/plans/{plan_id.group(0)}").json()["state"]
             == "failed", "the reboot to fail")
    code, out = run(server, "remediate", "show", plan_id.group(0))
    assert "the local executor has no BMC access" in out
    code, out = run(server, "remediate", "breaker")
    assert code == 0 and "closed" in out and "local" in out


def test_a_dry_run_and_clear_errors(server: DcopsProcess) -> None:
    code, out = run(server, "remediate", "plan", "local", "--xid", "48", "--gpu", "1")
    assert code == 0, out
    assert "remedy reset_gpu" in out and "drain_now local/1" in out
    code, out = run(server, "remediate", "list")
    assert code == 0 and "plan-" not in out
    code, out = run(server, "remediate", "approve", "plan-000000000000")
    assert code == 1 and "plan 'plan-000000000000' not found" in out
    code, out = run(server, "remediate", "plan", "local", "--kind", "meltdown")
    assert code == 1 and "kind" in out
