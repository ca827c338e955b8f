"""``/api/v1/backup/...`` over a real directory repository: a run asked for through the API
ends in a snapshot; a failing policy and an unreadable repository end in failed runs and
``BackupFailed``; a policy past its window raises ``BackupOverdue``; snapshots listed and
diffed, restored, checked (and damage found), forgotten and pruned, keys added and removed,
all through the API; metrics, roles and clear errors for bad input and for backups not
configured."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dcops.access.model import Role
from dcops.backends.backup_dir import DirectoryStorage
from dcops.backup.checker import check
from dcops.backup.keys import FAST, Credential
from dcops.backup.repository import Repository
from dcops.core.secret import Secret
from dcops.settings import parse_settings
from tests.api.conftest import Api, running_api

PASSWORD = "correct horse battery staple"


def wait_for(what: Callable[[], Any], deadline_s: float = 60.0) -> Any:
    """Poll until `what` answers something true; fail after a generous deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        got = what()
        if got:
            return got
        time.sleep(0.02)
    pytest.fail(f"gave up waiting for {what}")


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    Repository.init(DirectoryStorage(path), Credential(password=Secret(PASSWORD)), cost=FAST)
    return path


@pytest.fixture
def files(tmp_path: Path) -> Path:
    data = tmp_path / "ckpt"
    (data / "step-100").mkdir(parents=True)
    (data / "step-100" / "model.bin").write_bytes(bytes(range(256)) * 400)
    (data / "step-100" / "meta.json").write_text('{"step": 100}')
    return data


def start(tmp_path: Path, repo: Path, policies: list[dict[str, Any]],
          password: str = PASSWORD) -> Iterator[Api]:
    secret = tmp_path / "password"
    secret.write_text(password + "\n")
    settings = parse_settings({"backup": {
        "repository": str(repo), "password_file": str(secret), "tick_s": 0.05, "workers": 1,
        "policies": policies, "self_backup": {"enabled": False},
        "restore_roots": [str(tmp_path / "restores")]}})
    for api in running_api(settings):
        service = api.services.backup
        assert service is not None
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        try:
            yield api
        finally:
            stop.set()
            thread.join(timeout=30)


@pytest.fixture
def bk(tmp_path: Path, repo_dir: Path, files: Path) -> Iterator[Api]:
    yield from start(tmp_path, repo_dir, [
        {"name": "ckpt", "paths": [str(files)], "every_s": 3600, "tags": ["train"],
         "retention": {"keep_last": 3}},
        {"name": "missing", "paths": [str(tmp_path / "nowhere")], "every_s": 60,
         "window_s": 120}])


def finished(api: Api, run_id: str) -> Callable[[], dict[str, Any] | None]:
    def poll() -> dict[str, Any] | None:
        got = api.client.get(f"/api/v1/backup/runs/{run_id}", headers=api.auth(Role.VIEWER))
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body if body["status"] in ("succeeded", "failed") else None
    return poll


def run_now(api: Api, policy: str) -> dict[str, Any]:
    """Ask for a run (waiting out a scheduled one still going) and wait for its end."""
    def ask() -> Any:
        got = api.client.post(f"/api/v1/backup/policies/{policy}/run",
                              headers=api.auth(Role.OPERATOR))
        assert got.status_code in (202, 409), got.text
        return got if got.status_code == 202 else None
    got = wait_for(ask)
    assert got.json()["status"] == "planned" and got.headers["location"] == got.json()["url"]
    body: dict[str, Any] = wait_for(finished(api, got.json()["id"]))
    return body


def alerts(api: Api) -> dict[tuple[str, str], str]:
    return {(v.alert.labels["alertname"], v.alert.labels["policy"]): v.alert.status.value
            for v in api.services.pipeline.alerts(api.clock.now())
            if v.alert.labels.get("source") == "backup"}


def test_a_run_asked_for_ends_in_a_snapshot(bk: Api, files: Path) -> None:
    run = run_now(bk, "ckpt")
    assert run["status"] == "succeeded", run
    assert run["files"] == 2 and run["bytes"] == 256 * 400 + len('{"step": 100}')
    assert run["trigger"] == "token:operator" and run["progress"] is None

    got = bk.client.get("/api/v1/backup/snapshots", params={"policy": "ckpt"},
                        headers=bk.auth(Role.VIEWER))
    assert got.status_code == 200, got.text
    snaps = got.json()["snapshots"]
    assert run["snapshot_id"] in [s["id"] for s in snaps]
    mine = next(s for s in snaps if s["id"] == run["snapshot_id"])
    assert mine["paths"] == [str(files)] and "train" in mine["tags"]
    assert "dcops-policy=ckpt" in mine["tags"]

    got = bk.client.get("/api/v1/backup/runs", params={"policy": "ckpt"},
                        headers=bk.auth(Role.VIEWER))
    assert run["id"] in [r["id"] for r in got.json()["runs"]]
    assert {r["policy"] for r in got.json()["runs"]} == {"ckpt"}

    policies = bk.client.get("/api/v1/backup/policies", headers=bk.auth(Role.VIEWER)).json()
    ckpt = next(p for p in policies["policies"] if p["name"] == "ckpt")
    assert ckpt["last_success_at"] == bk.clock.now() and ckpt["overdue"] is False
    assert ckpt["retention"] == {"keep_last": 3} and ckpt["window_s"] == 7200

    metrics = bk.client.get("/metrics").text
    assert 'dcops_backup_last_run_status{policy="ckpt"} 1.0' in metrics
    assert f'dcops_backup_last_bytes{{policy="ckpt"}} {float(run["bytes"])}' in metrics
    assert 'dcops_backup_last_success_timestamp_seconds{policy="ckpt"}' in metrics
    audited = [a for a in bk.services.audit.list(limit=100) if a.action == "backup.run"
               and a.details.get("policy") == "ckpt"]
    assert any(a.actor == "token:operator" and a.details["status"] == "succeeded"
               for a in audited)


def test_a_missing_path_fails_the_run_and_fires_backup_failed(bk: Api, tmp_path: Path
                                                              ) -> None:
    run = run_now(bk, "missing")
    assert run["status"] == "failed" and "nowhere" in run["error"]
    assert alerts(bk)[("BackupFailed", "missing")] == "firing"
    metrics = bk.client.get("/metrics").text
    assert 'dcops_backup_last_run_status{policy="missing"} 0.0' in metrics
    assert 'dcops_backup_last_success_timestamp_seconds{policy="missing"}' not in metrics

    (tmp_path / "nowhere").mkdir()
    (tmp_path / "nowhere" / "f").write_text("here now")
    run = run_now(bk, "missing")
    assert run["status"] == "succeeded", run
    assert alerts(bk)[("BackupFailed", "missing")] == "resolved"


def test_a_policy_past_its_window_fires_backup_overdue(bk: Api, tmp_path: Path) -> None:
    service = bk.services.backup
    assert service is not None
    assert ("BackupOverdue", "missing") not in alerts(bk)
    bk.clock.advance(121)
    wait_for(lambda: alerts(bk).get(("BackupOverdue", "missing")) == "firing")
    assert ("BackupOverdue", "ckpt") not in alerts(bk)  # its window is two hours
    policies = bk.client.get("/api/v1/backup/policies", headers=bk.auth(Role.VIEWER)).json()
    assert next(p for p in policies["policies"] if p["name"] == "missing")["overdue"] is True

    (tmp_path / "nowhere").mkdir()
    assert run_now(bk, "missing")["status"] == "succeeded"
    assert alerts(bk)[("BackupOverdue", "missing")] == "resolved"


def test_a_repository_that_does_not_open_fails_runs(tmp_path: Path, repo_dir: Path,
                                                    files: Path) -> None:
    for api in start(tmp_path, repo_dir, [{"name": "ckpt", "paths": [str(files)]}],
                     password="wrong"):
        run = run_now(api, "ckpt")
        assert run["status"] == "failed" and "wrong password" in run["error"]
        assert alerts(api)[("BackupFailed", "ckpt")] == "firing"
        got = api.client.get("/api/v1/backup/snapshots", headers=api.auth(Role.VIEWER))
        assert got.status_code == 503 and "wrong password" in got.json()["message"]


def test_bad_input_is_a_clear_4xx(bk: Api) -> None:
    viewer, operator = bk.auth(Role.VIEWER), bk.auth(Role.OPERATOR)
    got = bk.client.post("/api/v1/backup/policies/ckpt/run", headers=viewer)
    assert got.status_code == 403 and "operator" in got.json()["message"]
    got = bk.client.post("/api/v1/backup/policies/nope/run", headers=operator)
    assert got.status_code == 404 and "nope" in got.json()["message"]
    got = bk.client.post("/api/v1/backup/policies/bad%20name/run", headers=operator)
    assert got.status_code == 400
    got = bk.client.get("/api/v1/backup/runs", params={"status": "exploded"}, headers=viewer)
    assert got.status_code == 400 and got.json()["where"] == "query.status"
    got = bk.client.get("/api/v1/backup/runs", params={"policy": "nope"}, headers=viewer)
    assert got.status_code == 404
    got = bk.client.get("/api/v1/backup/runs/0123abc", headers=viewer)
    assert got.status_code == 404 and "0123abc" in got.json()["message"]
    got = bk.client.get("/api/v1/backup/snapshots", params={"policy": "nope"}, headers=viewer)
    assert got.status_code == 404
    assert bk.client.get("/api/v1/backup/policies").status_code == 401


def test_without_a_repository_backups_answer_how_to_configure_them(api: Api) -> None:
    assert api.services.backup is None
    for path in ("/api/v1/backup/policies", "/api/v1/backup/runs", "/api/v1/backup/snapshots",
                 "/api/v1/backup/runs/x"):
        got = api.client.get(path, headers=api.auth(Role.VIEWER))
        assert got.status_code == 409, path
        assert got.json()["where"] == "backup.repository"
        assert "backup.password_file" in got.json()["hint"]
    got = api.client.post("/api/v1/backup/policies/x/run", headers=api.auth(Role.OPERATOR))
    assert got.status_code == 409
    assert "dcops_backup_" not in api.client.get("/metrics").text


def test_a_policy_keeps_only_what_its_retention_keeps(bk: Api, files: Path,
                                                      repo_dir: Path) -> None:
    runs = []
    for step in range(5):
        (files / "step-100" / "meta.json").write_text(f'{{"step": {100 + step}}}')
        run = run_now(bk, "ckpt")
        assert run["status"] == "succeeded", run
        runs.append(run["snapshot_id"])
    got = bk.client.get("/api/v1/backup/snapshots", params={"policy": "ckpt"},
                        headers=bk.auth(Role.VIEWER))
    kept = {s["id"] for s in got.json()["snapshots"]}
    assert kept == set(runs[-3:])  # keep_last: 3, the newest three
    repo = Repository.open(DirectoryStorage(repo_dir), Credential(password=Secret(PASSWORD)))
    assert check(repo, read_data=True).ok  # what the forgotten ones held is pruned safely


def task_done(api: Api, accepted: Any) -> dict[str, Any]:
    """Wait for the task a 202 answer started; its final state."""
    assert accepted.status_code == 202, accepted.text
    url = accepted.headers["location"]
    assert url == accepted.json()["url"]

    def poll() -> dict[str, Any] | None:
        got = api.client.get(url, headers=api.auth(Role.VIEWER))
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body if body["status"] != "running" else None
    body: dict[str, Any] = wait_for(poll)
    return body


def test_list_diff_restore_check_forget_and_prune_through_the_api(
        bk: Api, files: Path, tmp_path: Path) -> None:
    admin, operator, viewer = bk.auth(Role.ADMIN), bk.auth(Role.OPERATOR), bk.auth(Role.VIEWER)
    first = run_now(bk, "ckpt")["snapshot_id"]
    (files / "step-100" / "meta.json").write_text('{"step": 200}')
    second = run_now(bk, "ckpt")["snapshot_id"]

    got = bk.client.get("/api/v1/backup/snapshots/latest/files", headers=viewer)
    assert got.status_code == 200, got.text
    assert got.json()["snapshot"] == second
    listed = {f["path"]: f for f in got.json()["files"]}
    assert listed[str(files / "step-100" / "model.bin")]["size"] == 256 * 400
    got = bk.client.get("/api/v1/backup/diff", params={"from": first[:8], "to": "latest"},
                        headers=viewer)
    assert got.status_code == 200, got.text
    assert got.json()["modified"] == [str(files / "step-100" / "meta.json")]

    target = tmp_path / "restores" / "one"
    ask = {"snapshot": first, "target": str(target)}
    assert bk.client.post("/api/v1/backup/restore", json=ask,
                          headers=operator).status_code == 403
    task = task_done(bk, bk.client.post("/api/v1/backup/restore", json=ask, headers=admin))
    assert task["status"] == "succeeded", task
    assert task["result"]["files"] == 2 and task["result"]["failed"] == {}
    assert task["actor"] == "token:admin" and task["params"]["snapshot"] == first
    restored = target / str(files).lstrip("/") / "step-100"
    assert (restored / "model.bin").read_bytes() == bytes(range(256)) * 400
    assert (restored / "meta.json").read_text() == '{"step": 100}'

    task = task_done(bk, bk.client.post("/api/v1/backup/check", json={"read_data": True},
                                        headers=operator))
    assert task["status"] == "succeeded" and task["result"]["ok"] is True, task

    task = task_done(bk, bk.client.post("/api/v1/backup/forget", headers=admin, json={
        "keep_last": 1, "policy": "ckpt", "prune": True}))
    assert task["status"] == "succeeded", task
    assert first in task["result"]["removed"] and task["result"]["kept"] == [second]
    assert task["result"]["prune"]["dry_run"] is False
    got = bk.client.get("/api/v1/backup/snapshots", params={"policy": "ckpt"},
                        headers=viewer)
    assert [s["id"] for s in got.json()["snapshots"]] == [second]
    task = task_done(bk, bk.client.post("/api/v1/backup/prune", headers=admin))
    assert task["status"] == "succeeded" and task["result"]["packs_deleted"] == 0, task

    listing = bk.client.get("/api/v1/backup/tasks", headers=viewer).json()
    assert [t["kind"] for t in listing["tasks"]] == ["prune", "forget", "check", "restore"]
    audited = {a.action for a in bk.services.audit.list(limit=500)}
    assert {"backup.restore", "backup.restore.end", "backup.forget.end"} <= audited


def test_damage_fails_the_check_task_and_names_what_it_costs(
        bk: Api, files: Path, repo_dir: Path, tmp_path: Path) -> None:
    snap = run_now(bk, "ckpt")["snapshot_id"]
    repo = Repository.open(DirectoryStorage(repo_dir), Credential(password=Secret(PASSWORD)))
    model = next(e for e in repo.load_tree(repo.find_snapshot(snap))
                 if e.path.endswith("model.bin"))
    where = repo.index.get(model.chunks[0])
    assert where is not None
    biggest = next(p for p in (repo_dir / "data").rglob(where.pack))
    data = bytearray(biggest.read_bytes())
    data[where.offset + where.length // 2] ^= 0x01
    biggest.write_bytes(bytes(data))
    task = task_done(bk, bk.client.post("/api/v1/backup/check", json={"read_data": True},
                                        headers=bk.auth(Role.OPERATOR)))
    assert task["status"] == "failed" and "errors found" in task["error"]
    problems = task["result"]["problems"]
    assert {p["file"] for p in problems} == {f"data/{biggest.name}"}
    assert any(snap in p["snapshots"] for p in problems)
    task = task_done(bk, bk.client.post("/api/v1/backup/restore", headers=bk.auth(Role.ADMIN),
                                        json={"snapshot": "latest",
                                              "target": str(tmp_path / "restores")}))
    assert task["status"] == "failed" and "could not be restored" in task["error"]
    assert str(files / "step-100" / "model.bin") in task["result"]["failed"]


def test_keys_through_the_api(bk: Api, repo_dir: Path) -> None:
    admin = bk.auth(Role.ADMIN)
    got = bk.client.post("/api/v1/backup/keys", json={"password": "second one"}, headers=admin)
    assert got.status_code == 201, got.text
    added = got.json()["id"]
    keys = bk.client.get("/api/v1/backup/keys", headers=admin).json()["keys"]
    assert len(keys) == 2 and [k["current"] for k in keys].count(True) == 1
    Repository.open(DirectoryStorage(repo_dir), Credential(password=Secret("second one")),
                    load_index=False)
    own = next(k["id"] for k in keys if k["current"])
    got = bk.client.delete(f"/api/v1/backup/keys/{own}", headers=admin)
    assert got.status_code == 400 and "in use" in got.json()["message"]
    got = bk.client.delete(f"/api/v1/backup/keys/{added[:8]}", headers=admin)
    assert got.status_code == 200 and got.json()["removed"] == added
    assert bk.client.get("/api/v1/backup/keys",
                         headers=bk.auth(Role.OPERATOR)).status_code == 403


def test_bad_task_requests_are_clear_4xx(bk: Api, tmp_path: Path) -> None:
    admin = bk.auth(Role.ADMIN)
    run_now(bk, "ckpt")
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("restore", {"snapshot": "latest", "target": "/etc"}, 400, "outside the restore"),
        ("restore", {"snapshot": "latest", "target": "restores"}, 400, "not an absolute"),
        ("restore", {"snapshot": "latest", "target": str(tmp_path / "restores" / ".." / "x")},
         400, "outside the restore"),
        ("restore", {"snapshot": "abcdef01", "target": str(tmp_path / "restores")}, 404,
         "abcdef01"),
        ("restore", {"snapshot": "../x", "target": str(tmp_path / "restores")}, 400, ""),
        ("restore", {"target": str(tmp_path / "restores")}, 400, "snapshot"),
        ("forget", {}, 400, "keeps nothing"),
        ("forget", {"keep_last": -1}, 400, "keep_last"),
        ("forget", {"keep_within": "soon"}, 400, "soon"),
        ("forget", {"keep_last": 1, "policy": "nope"}, 404, "nope"),
        ("prune", {"max_unused": 2}, 400, "max_unused"),
        ("check", {"read_data": True, "extra": 1}, 400, "extra"),
    ]
    for verb, body, status, says in cases:
        got = bk.client.post(f"/api/v1/backup/{verb}", json=body, headers=admin)
        assert got.status_code == status, (verb, body, got.text)
        assert says in got.text, (verb, body, got.text)
    got = bk.client.get("/api/v1/backup/tasks/nope", headers=admin)
    assert got.status_code == 404
    got = bk.client.get("/api/v1/backup/diff", params={"from": "latest"}, headers=admin)
    assert got.status_code == 400 and "to" in got.json()["where"]
    got = bk.client.get("/api/v1/backup/snapshots/beef/files", headers=admin)
    assert got.status_code == 404
