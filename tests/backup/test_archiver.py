"""Backing up: what a snapshot records, what is not read again, and what survives an
unreadable file, an interruption or a full disk."""

from __future__ import annotations

import builtins
import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from dcops.backends.backup_dir import DirectoryStorage
from dcops.backup import archiver
from dcops.backup.archiver import backup, walk
from dcops.backup.checker import check
from dcops.backup.errors import StorageFull
from dcops.backup.model import NodeType
from dcops.backup.repository import Repository
from dcops.backup.restorer import restore
from dcops.backup.storage import MemoryStorage
from tests.backup.conftest import PASSWORD, WORKERS, make_repo, noise


def rel(root: Path, path: str) -> str:
    return os.path.relpath(path, root)


def test_snapshot_records_every_kind_of_entry(memory_repo: Repository,
                                               tree: tuple[Path, dict[str, bytes]]) -> None:
    root, files = tree
    snap = backup(memory_repo, [root], tags=["nightly", "ckpt"], workers=WORKERS)
    assert snap.tags == ("nightly", "ckpt")
    assert snap.paths == (str(root),)
    entries = {rel(root, e.path): e for e in memory_repo.load_tree(snap)}
    assert {k for k, e in entries.items() if e.type is NodeType.FILE} == set(files)
    assert {k for k, e in entries.items() if e.type is NodeType.DIR} == {
        ".", "a", "a/b", "a/b/c", "a/empty-dir"}
    assert entries["link"].type is NodeType.SYMLINK and entries["link"].target == "a/b/mid.bin"
    assert entries["empty"].size == 0 and entries["empty"].chunks == ()
    assert entries["a/b/mid.bin"].mode == 0o640
    assert len(entries["a/big.bin"].chunks) > 3
    summary = snap.summary
    assert (summary.files, summary.dirs, summary.files_new) == (5, 5, 5)
    assert summary.bytes == summary.bytes_read == sum(len(d) for d in files.values())
    assert summary.bytes_added == summary.bytes  # nothing repeats in the tree
    assert summary.errors == ()
    assert memory_repo.find_snapshot("latest").id == snap.id
    assert memory_repo.find_snapshot(snap.id[:10]).id == snap.id


def test_unchanged_files_are_not_read_again(memory_repo: Repository,
                                            tree: tuple[Path, dict[str, bytes]]) -> None:
    root, files = tree
    first = backup(memory_repo, [root], workers=WORKERS)
    second = backup(memory_repo, [root], workers=WORKERS)
    assert second.parent == first.id
    assert second.summary.bytes_read == 0 and second.summary.bytes_added == 0
    assert second.summary.files_unchanged == len(files)
    (root / "small.txt").write_bytes(b"changed!")
    third = backup(memory_repo, [root], workers=WORKERS)
    assert (third.summary.files_changed, third.summary.bytes_read) == (1, 8)
    forced = backup(memory_repo, [root], force=True, workers=WORKERS)
    assert forced.parent is None and forced.summary.bytes_read == third.summary.bytes
    assert forced.summary.bytes_added == 0  # read again, but every chunk was stored


def test_excludes(memory_repo: Repository, tree: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = tree
    snap = backup(memory_repo, [root], excludes=["*.txt", str(root / "a" / "b")],
                  workers=WORKERS)
    paths = {rel(root, e.path) for e in memory_repo.load_tree(snap)}
    assert paths == {".", "a", "a/big.bin", "a/empty-dir", "empty", "link"}


def test_vanished_and_unreadable_files_are_errors_not_failures(
        memory_repo: Repository, tree: tuple[Path, dict[str, bytes]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    root, files = tree
    secret, gone = str(root / "a" / "big.bin"), str(root / "small.txt")
    real_walk, real_open = walk, builtins.open

    def walk_then_delete(*args: Any, **kwargs: Any) -> Any:
        for path, st in real_walk(*args, **kwargs):
            yield path, st
            if path == str(root / "link"):  # listed, then deleted before it is read
                os.unlink(gone)

    def refusing_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if file == secret:
            raise PermissionError(errno.EACCES, "Permission denied", file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(archiver, "walk", walk_then_delete)
    monkeypatch.setattr(archiver, "open", refusing_open, raising=False)
    snap = backup(memory_repo, [root], workers=WORKERS)
    assert sorted(snap.summary.errors) == sorted([f"{secret}: Permission denied",
                                                  f"{gone}: No such file or directory"])
    recorded = {rel(root, e.path) for e in memory_repo.load_tree(snap)
                if e.type is NodeType.FILE}
    assert recorded == set(files) - {"a/big.bin", "small.txt"}
    assert check(memory_repo, read_data=True).ok


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_chmod_000_file_is_an_error(memory_repo: Repository,
                                    tree: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = tree
    (root / "small.txt").chmod(0)
    snap = backup(memory_repo, [root], workers=WORKERS)
    assert snap.summary.errors == (f"{root / 'small.txt'}: Permission denied",)


def test_a_file_larger_than_many_blocks_round_trips(memory_repo: Repository, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archiver, "BLOCK", 65_536)  # the largest chunk: 20 blocks a file
    src = tmp_path / "src"
    src.mkdir()
    data = noise(1_300_000, 9)
    (src / "big").write_bytes(data)
    snap = backup(memory_repo, [src], workers=WORKERS)
    assert snap.summary.bytes_read == len(data)
    out = tmp_path / "out"
    result = restore(memory_repo, snap, out, workers=WORKERS)
    assert result.failed == {}
    assert (out / str(src / "big").lstrip("/")).read_bytes() == data


class FailingStorage(MemoryStorage):
    """Refuses data saves after `allowed` of them, as a dropped connection would."""

    def __init__(self) -> None:
        super().__init__()
        self.allowed: int | None = None

    def save(self, kind: str, name: str, data: bytes) -> None:
        if kind == "data" and self.allowed is not None:
            if self.allowed <= 0:
                raise ConnectionError("storage went away")
            self.allowed -= 1
        super().save(kind, name, data)


def test_interrupted_backup_leaves_a_valid_repository_and_is_resumed(tmp_path: Path) -> None:
    storage = FailingStorage()
    repo = make_repo(storage)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"part{i}").write_bytes(noise(900_000, 20 + i))
    storage.allowed = 2
    with pytest.raises(ConnectionError):
        backup(repo, [src], workers=WORKERS)
    assert len(list(storage.list("data"))) == 2
    assert list(storage.list("snapshots")) == [] and list(storage.list("locks")) == []
    reopened = Repository.open(storage, PASSWORD)
    result = check(reopened, read_data=True)
    assert result.ok, result.problems
    assert {p.kind for p in result.problems} <= {"unindexed_pack"}
    uploaded = sum(size for _, size in storage.list("data"))
    storage.allowed = None
    snap = backup(reopened, [src], workers=WORKERS)
    total = sum(size for _, size in storage.list("data"))
    assert snap.summary.bytes_stored == total - uploaded < total
    assert snap.summary.bytes_added < snap.summary.bytes
    assert check(Repository.open(storage, PASSWORD), read_data=True).problems == []
    out = tmp_path / "out"
    assert restore(reopened, snap, out, workers=WORKERS).failed == {}
    for i in range(4):
        assert (out / str(src / f"part{i}").lstrip("/")).read_bytes() == (
            src / f"part{i}").read_bytes()


def test_full_disk_raises_storage_full_and_the_repository_recovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = DirectoryStorage(tmp_path / "repo")
    repo = make_repo(storage)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"part{i}").write_bytes(noise(800_000, 40 + i))
    room = {"bytes": 1_500_000}
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        if room["bytes"] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, data[:room["bytes"]])
        room["bytes"] -= n
        return n

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(StorageFull) as caught:
        backup(repo, [src], workers=WORKERS)
    assert "no space left" in str(caught.value) and str(storage.path) in str(caught.value)
    leftovers = [p for p in storage.path.rglob(".tmp-*")]
    assert leftovers == []  # nothing half-written is kept
    monkeypatch.setattr(os, "write", real_write)
    reopened = Repository.open(storage, PASSWORD)
    assert check(reopened, read_data=True).ok
    snap = backup(reopened, [src], workers=WORKERS)
    assert snap.summary.errors == ()
    assert check(Repository.open(storage, PASSWORD), read_data=True).problems == []
    out = tmp_path / "out"
    assert restore(reopened, snap, out, workers=WORKERS).failed == {}
    assert (out / str(src / "part2").lstrip("/")).read_bytes() == (src / "part2").read_bytes()


def test_walk_is_sorted_and_does_not_follow_links(tree: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = tree
    listed = [(rel(root, p), stat.S_ISLNK(st.st_mode)) for p, st in walk([root])]
    paths = [p for p, _ in listed]
    assert sorted(paths) == [".", "a", "a/b", "a/b/c", "a/b/c/text.txt", "a/b/mid.bin",
                             "a/big.bin", "a/empty-dir", "empty", "link", "small.txt"]
    assert paths == [rel(root, p) for p, _ in walk([root])]  # the same order every time
    for i, path in enumerate(paths):  # a directory comes before what it holds
        assert all(paths.index(parent) < i for parent in map(str, Path(path).parents)
                   if parent in paths and path != ".")
    assert dict(listed)["link"] is True
    errors: list[str] = []
    assert list(walk([root / "nope"], errors=errors)) == []
    assert errors == [f"{root / 'nope'}: No such file or directory"]
