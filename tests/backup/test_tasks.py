"""Tasks the API starts (restore, check, forget, prune): one at a time, in their own
thread on their own repository handle, audited, with their progress while they run and
their result or a clear error once they end; restores only under the restore roots."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dcops.access.store import MemoryAuditLog
from dcops.backup.archiver import backup
from dcops.backup.codec import BlobType
from dcops.backup.repository import Repository
from dcops.backup.retention import RetentionPolicy
from dcops.backup.storage import MemoryStorage
from dcops.backup.tasks import BackupTask, BackupTasks, ForgetRequest, TaskStatus
from dcops.core.clock import FakeClock
from dcops.core.errors import Conflict, Invalid, NotFound
from tests.backup.conftest import WORKERS, make_repo


class GatedStorage(MemoryStorage):
    """Memory storage whose reads of the packs in `gated` wait for `gate` (so a task can be
    caught running)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.gated: set[str] = set()

    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if kind == "data" and name in self.gated:
            assert self.gate.wait(30), "the test never opened the gate"
        return super().load(kind, name, offset, length)


def ended(tasks: BackupTasks, task: BackupTask) -> BackupTask:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = tasks.get(task.id)
        if got.status is not TaskStatus.RUNNING:
            return got
        time.sleep(0.01)
    pytest.fail(f"task {task.id} did not end")


@pytest.fixture
def world(tmp_path: Path, tree: tuple[Path, dict[str, bytes]]
          ) -> tuple[BackupTasks, GatedStorage, Repository, MemoryAuditLog]:
    root, _ = tree
    storage = GatedStorage()
    repo = make_repo(storage)
    backup(repo, [root], workers=WORKERS)
    storage.gated = {name for name, entries in repo.index.packs.items()
                     if all(e.btype is BlobType.DATA for e in entries)}
    audit = MemoryAuditLog()
    tasks = BackupTasks(lambda: repo, FakeClock(1000.0), [tmp_path / "restores"],
                        audit=audit, workers=WORKERS)
    return tasks, storage, repo, audit


def test_one_task_at_a_time_with_progress_and_an_audited_end(
        world: tuple[BackupTasks, GatedStorage, Repository, MemoryAuditLog],
        tmp_path: Path, tree: tuple[Path, dict[str, bytes]]) -> None:
    tasks, storage, _, audit = world
    root, files = tree
    storage.gate.clear()
    task = tasks.restore("latest", str(tmp_path / "restores" / "a"), [], "token:admin")
    with pytest.raises(Conflict, match=task.id):
        tasks.check(False, "token:operator")
    deadline = time.monotonic() + 30
    while tasks.progress(task.id) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    shown = tasks.progress(task.id)
    assert shown is not None and shown["bytes_total"] == sum(len(d) for d in files.values())
    storage.gate.set()
    done = ended(tasks, task)
    assert done.status is TaskStatus.SUCCEEDED and done.result is not None
    assert done.result["files"] == len(files) and tasks.progress(task.id) is None
    restored = tmp_path / "restores" / "a" / str(root).lstrip("/")
    assert (restored / "a" / "big.bin").read_bytes() == files["a/big.bin"]
    assert sorted((r.action, r.actor, r.target) for r in audit.list(limit=10)) == [
        ("backup.restore", "token:admin", f"backup-task/{task.id}"),
        ("backup.restore.end", "token:admin", f"backup-task/{task.id}")]
    again = tasks.check(True, "token:operator")  # the next one may start
    assert ended(tasks, again).status is TaskStatus.SUCCEEDED
    assert [t.kind.value for t in tasks.list()] == ["check", "restore"]


def test_restore_targets_outside_the_roots_are_refused(
        world: tuple[BackupTasks, GatedStorage, Repository, MemoryAuditLog],
        tmp_path: Path) -> None:
    tasks = world[0]
    (tmp_path / "restores").mkdir()
    (tmp_path / "restores" / "escape").symlink_to("/etc")
    (tmp_path / "restores" / "file").write_text("x")
    for target, says in [("/tmp", "outside"), ("relative/path", "not an absolute"),
                         (str(tmp_path / "restores" / "escape" / "x"), "outside"),
                         (str(tmp_path / "restores" / "file"), "not a directory")]:
        with pytest.raises(Invalid, match=says):
            tasks.restore("latest", target, [], "t")
    with pytest.raises(NotFound):
        tasks.restore("0badc0de", str(tmp_path / "restores"), [], "t")
    assert tasks.list() == []


def test_a_task_that_fails_says_why_and_the_next_can_start(
        world: tuple[BackupTasks, GatedStorage, Repository, MemoryAuditLog]) -> None:
    tasks, _, repo, _ = world
    task = tasks.forget(ForgetRequest(RetentionPolicy(keep_last=1), prune=True), "token:admin")
    done = ended(tasks, task)
    assert done.status is TaskStatus.SUCCEEDED and done.result is not None
    assert len(done.result["kept"]) == 1 and done.result["removed"] == []
    for name, _ in list(repo.storage.list("snapshots")):
        repo.storage.save("snapshots", name, b"garbage")
    failed = ended(tasks, tasks.check(False, "token:operator"))
    assert failed.status is TaskStatus.FAILED and failed.error == "1 errors found"
    assert failed.result is not None and failed.result["problems"][0]["kind"] == (
        "damaged_snapshot")
