"""The control plane's own backup, built from settings: its snapshot holds a consistent
copy of the SQLite state file (restored, it opens and holds the rows) and the rule files;
the ``backup:`` section's errors name the key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dcops.access.model import Role
from dcops.backends.backup_dir import DirectoryStorage
from dcops.backup.keys import FAST, Credential
from dcops.backup.policy import CONTROL_PLANE, RunStatus
from dcops.backup.repository import Repository
from dcops.backup.restorer import restore
from dcops.core.errors import Invalid
from dcops.core.secret import Secret
from dcops.settings import parse_settings
from dcops.wiring import build_services


def test_self_backup_restores_the_state_file_intact(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path / "repo")
    Repository.init(storage, Credential(password=Secret("pw")), cost=FAST)
    (tmp_path / "pw").write_text("pw\n")
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n")
    settings = parse_settings({
        "storage": {"data_dir": str(tmp_path / "data")}, "rules": {"paths": [str(rules)]},
        "detection": {"enabled": False}, "remediation": {"enabled": False},
        "backup": {"repository": str(tmp_path / "repo"), "password_file": str(tmp_path / "pw"),
                   "workers": 1}})
    services = build_services(settings)
    try:
        services.tokens.create("kept-token", Role.VIEWER, services.clock.now())
        service = services.backup
        assert service is not None and list(service.policies) == [CONTROL_PLANE]
        (run,) = service.tick()
        assert run.status is RunStatus.SUCCEEDED, run.error
        assert service.runs.get(run.id).snapshot_id == run.snapshot_id  # in the SQL store
    finally:
        services.close()
    assert not (tmp_path / "data" / "backup-staging" / CONTROL_PLANE).exists()

    repo = Repository.open(storage, Credential(password=Secret("pw")))
    snapshot = repo.find_snapshot("latest")
    assert snapshot.id == run.snapshot_id and CONTROL_PLANE in snapshot.tags
    restore(repo, snapshot, tmp_path / "out", workers=1)
    copied = list((tmp_path / "out").rglob("state.db"))
    assert len(copied) == 1
    with sqlite3.connect(copied[0]) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        names = [r[0] for r in db.execute("SELECT name FROM tokens")]
    assert names == ["kept-token"]
    assert [p.read_text() for p in (tmp_path / "out").rglob("rules.yml")] == ["groups: []\n"]


def test_self_backup_of_memory_state_fails_saying_why(tmp_path: Path) -> None:
    from dcops.wiring import build_memory_services

    storage = DirectoryStorage(tmp_path / "repo")
    Repository.init(storage, Credential(password=Secret("pw")), cost=FAST)
    (tmp_path / "pw").write_text("pw")
    services = build_memory_services(parse_settings({"backup": {
        "repository": str(tmp_path / "repo"), "password_file": str(tmp_path / "pw")}}))
    assert services.backup is not None
    (run,) = services.backup.tick()
    assert run.status is RunStatus.FAILED and "only a SQLite state file" in run.error
    services.close()


def test_api_restores_go_under_the_data_directory_by_default(tmp_path: Path) -> None:
    from dcops.wiring import build_memory_services

    Repository.init(DirectoryStorage(tmp_path / "repo"), Credential(password=Secret("pw")),
                    cost=FAST)
    (tmp_path / "pw").write_text("pw")
    services = build_memory_services(parse_settings({
        "storage": {"data_dir": str(tmp_path / "data")},
        "backup": {"repository": str(tmp_path / "repo"), "password_file": str(tmp_path / "pw")}}))
    assert services.backup is not None
    tasks = services.backup.tasks
    assert tasks.restore_roots == [tmp_path / "data" / "restores"]
    with pytest.raises(Invalid, match="outside the restore roots"):
        tasks.restore_target(str(tmp_path / "elsewhere"))
    assert tasks.restore_target(str(tmp_path / "data" / "restores" / "x")) == (
        tmp_path / "data" / "restores" / "x").resolve()
    services.close()


def test_backups_are_off_by_default() -> None:
    settings = parse_settings({})
    assert settings.backup.enabled is False and settings.backup.policies == []


@pytest.mark.parametrize(("backup", "where", "says"), [
    ({"policies": [{"name": "a", "paths": ["/a"]}]}, "backup", "need backup.repository"),
    ({"repository": "/r"}, "backup", "password_file"),
    ({"repository": "s3:bucket", "password_file": "p"}, "backup.repository", "s3:http"),
    ({"repository": "ftp://host/x", "password_file": "p"}, "backup.repository", "s3: URL"),
    ({"repository": "/r", "password_file": "p", "policies": [{"name": "a", "paths": []}]},
     "backup.policies.0.paths", "at least 1"),
    ({"repository": "/r", "password_file": "p",
      "policies": [{"name": "a", "paths": ["/a"], "retention": {"keep_all": 1}}]},
     "backup.policies.0.retention", "keep_all"),
    ({"repository": "/r", "password_file": "p",
      "policies": [{"name": "control-plane", "paths": ["/a"]}]},
     "backup.policies.0.name", "self_backup"),
    ({"repository": "/r", "password_file": "p", "policies": [
        {"name": "a", "paths": ["/a"]}, {"name": "a", "paths": ["/b"]}]},
     "backup.policies", "more than once"),
    ({"repository": "/r", "password_file": "p", "self_backup": {"every_s": 0}},
     "backup.self_backup.every_s", "greater than 0"),
    ({"repository": "/r", "password_file": "p", "restore_roots": ["restores"]},
     "backup.restore_roots", "not an absolute path"),
])
def test_backup_settings_errors_name_file_and_key(backup: dict[str, object], where: str,
                                                  says: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_settings({"backup": backup}, "dcops.yml")
    assert err.value.where == f"dcops.yml: {where}"
    assert says in err.value.message
