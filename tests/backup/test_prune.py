"""Forget and prune on a real (in-memory) repository: three backups, forget, prune, and
every remaining snapshot's data still reads, whatever step a prune is interrupted at."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from dcops.backup import locks
from dcops.backup.archiver import backup
from dcops.backup.codec import BlobType
from dcops.backup.config import RepoConfig
from dcops.backup.errors import Corrupt, StorageError
from dcops.backup.keys import FAST, Credential
from dcops.backup.model import NodeType
from dcops.backup.prune import forget, prune
from dcops.backup.repository import Repository
from dcops.backup.retention import RetentionPolicy
from dcops.backup.storage import MemoryStorage
from dcops.core.secret import Secret

CRED = Credential(password=Secret("pw"))
CONFIG = RepoConfig(chunk_min=4 * 1024, chunk_avg=16 * 1024, chunk_max=64 * 1024,
                    pack_size=1024 * 1024, zstd_level=1)
KiB = 1024


@dataclass
class World:
    """A repository after three backups and `forget --keep-last 1`, and the bytes each
    file of the kept snapshot had."""

    storage: MemoryStorage
    files: dict[str, bytes]  # path -> contents in the kept snapshot


def _write(root: Path, name: str, nbytes: int) -> None:
    (root / name).write_bytes(os.urandom(nbytes))


def _copy(storage: MemoryStorage) -> MemoryStorage:
    other = MemoryStorage()
    other.files = dict(storage.files)
    return other


def _data_bytes(storage: MemoryStorage) -> int:
    return sum(len(d) for (kind, _), d in storage.files.items() if kind == "data")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("src")
    storage = MemoryStorage()
    repo = Repository.init(storage, CRED, FAST, CONFIG)
    for name in ("a", "b", "c"):
        _write(root, name, 400 * KiB)
    backup(repo, [root], host="h", workers=2)
    _write(root, "b", 400 * KiB)  # changed
    _write(root, "d", 300 * KiB)  # new
    backup(repo, [root], host="h", workers=2)
    _write(root, "c", 350 * KiB)  # "a" is kept: its pack holds used and unused blobs
    backup(repo, [root], host="h", workers=2)
    files = {str(p): p.read_bytes() for p in root.iterdir()}
    return World(storage, files)


@pytest.fixture()
def forgotten(world: World) -> MemoryStorage:
    """A copy of the world's storage with the two older snapshots forgotten."""
    storage = _copy(world.storage)
    result = forget(Repository.open(storage, CRED), RetentionPolicy(keep_last=1),
                    dry_run=False)
    assert len(result.removed) == 2 and len(result.kept) == 1
    return storage


def assert_snapshots_read(storage: MemoryStorage, files: dict[str, bytes]) -> None:
    """Every chunk of every file of every snapshot loads and matches the bytes written."""
    repo = Repository.open(storage, CRED)
    snaps = repo.snapshots()
    assert len(snaps) == 1
    seen = {}
    for entry in repo.load_tree(snaps[0]):
        if entry.type is NodeType.FILE:
            seen[entry.path] = b"".join(repo.load_blob(c, BlobType.DATA) for c in entry.chunks)
    assert seen == files


def _pack_usage(storage: MemoryStorage) -> list[tuple[int, int]]:
    """(used, total) blob copies per pack in storage, used by the remaining snapshots."""
    repo = Repository.open(storage, CRED)
    used: set[bytes] = set()
    for s in repo.snapshots():
        used.update(s.tree)
        for e in repo.load_tree(s):
            used.update(e.chunks)
    return [(sum(1 for e in entries if e.blob_id in used), len(entries))
            for name, entries in repo.index.packs.items()]


def test_forget_removes_the_snapshot_files_and_dry_run_does_not(world: World) -> None:
    storage = _copy(world.storage)
    repo = Repository.open(storage, CRED)
    before = [s.id for s in repo.snapshots()]
    dry = forget(repo, RetentionPolicy(keep_last=1), dry_run=True)
    assert [s.id for s in dry.removed] == before[1::-1]
    assert [s.id for s in repo.snapshots()] == before
    done = forget(repo, RetentionPolicy(keep_last=1), dry_run=False)
    assert [s.id for s in done.removed] == [s.id for s in dry.removed]
    assert [s.id for s in repo.snapshots()] == before[-1:]
    assert not any(kind == "locks" for kind, _ in storage.files)


def test_prune_frees_space_and_keeps_every_used_blob(world: World,
                                                     forgotten: MemoryStorage) -> None:
    before = _data_bytes(forgotten)
    result = prune(Repository.open(forgotten, CRED), max_unused_fraction=0.0)
    assert result.snapshots == 1
    assert result.packs_deleted + result.packs_repacked > 0 and result.blobs_removed > 0
    assert _data_bytes(forgotten) < before
    assert before - _data_bytes(forgotten) >= result.bytes_freed  # headers come on top
    assert_snapshots_read(forgotten, world.files)
    usage = _pack_usage(forgotten)
    assert usage and all(used == total for used, total in usage)  # nothing unused is left
    repo = Repository.open(forgotten, CRED)
    assert repo.unindexed_packs() == []
    assert not any(kind == "locks" for kind, _ in forgotten.files)
    again = prune(repo, max_unused_fraction=0.0)  # nothing left to do
    assert (again.packs_deleted, again.packs_repacked, again.blobs_removed) == (0, 0, 0)


def test_prune_with_the_default_threshold_deletes_unused_packs(
        world: World, forgotten: MemoryStorage) -> None:
    before = _data_bytes(forgotten)
    result = prune(Repository.open(forgotten, CRED))
    assert _data_bytes(forgotten) < before and result.bytes_freed > 0
    assert_snapshots_read(forgotten, world.files)
    assert all(used > 0 for used, _ in _pack_usage(forgotten))  # no wholly unused pack


def test_unlimited_unused_only_deletes_wholly_unused_packs(forgotten: MemoryStorage) -> None:
    result = prune(Repository.open(forgotten, CRED), max_unused_fraction=1.0, dry_run=True)
    assert result.packs_repacked == 0 and result.bytes_repacked == 0


def test_dry_run_changes_nothing_and_reports_the_same_plan(forgotten: MemoryStorage) -> None:
    before = dict(forgotten.files)
    dry = prune(Repository.open(forgotten, CRED), dry_run=True, max_unused_fraction=0.0)
    assert forgotten.files == before
    real = prune(Repository.open(forgotten, CRED), max_unused_fraction=0.0)
    assert replace(dry, dry_run=False) == real


def test_prune_refuses_when_a_used_blob_is_in_no_index(forgotten: MemoryStorage) -> None:
    for kind, name in [k for k in forgotten.files if k[0] == "index"]:
        forgotten.remove(kind, name)
    before = dict(forgotten.files)
    with pytest.raises(Corrupt, match="in no index"):
        prune(Repository.open(forgotten, CRED))
    assert forgotten.files == before
    # reading the packs' own headers finds them again
    result = prune(Repository.open(forgotten, CRED), unindexed=True, max_unused_fraction=0.0)
    assert result.packs_unindexed == 0


def _count_calls(storage: MemoryStorage) -> tuple[int, int]:
    calls = {"save": 0, "remove": 0}
    for method in calls:
        original = getattr(storage, method)

        def counting(*args: Any, _m: str = method, _f: Callable[..., None] = original) -> None:
            calls[_m] += 1
            _f(*args)
        setattr(storage, method, counting)
    prune(Repository.open(storage, CRED), max_unused_fraction=0.0)
    return calls["save"], calls["remove"]


def _fail_after(storage: MemoryStorage, method: str, n: int) -> None:
    original = getattr(storage, method)
    done = [0]

    def failing(*args: Any) -> None:
        if done[0] >= n:
            raise StorageError(f"injected: {method} number {n + 1} fails")
        done[0] += 1
        original(*args)
    setattr(storage, method, failing)


@pytest.mark.parametrize("method", ["save", "remove"])
def test_prune_interrupted_at_any_step_leaves_a_valid_repository(
        world: World, forgotten: MemoryStorage, method: str) -> None:
    assert prune(Repository.open(_copy(forgotten), CRED), dry_run=True,
                 max_unused_fraction=0.0).packs_repacked > 0  # every kind of step is taken
    saves, removes = _count_calls(_copy(forgotten))
    total = saves if method == "save" else removes
    assert total >= 3
    for n in range(total):
        storage = _copy(forgotten)
        _fail_after(storage, method, n)
        with pytest.raises(StorageError, match="injected"):
            prune(Repository.open(storage, CRED), max_unused_fraction=0.0)
        delattr(storage, method)  # the storage works again
        assert_snapshots_read(storage, world.files)
        # a later prune (after `unlock`) finishes the job
        locks.remove_stale(storage, Repository.open(storage, CRED).master, all_locks=True)
        prune(Repository.open(storage, CRED), max_unused_fraction=0.0, unindexed=True)
        assert_snapshots_read(storage, world.files)
        assert Repository.open(storage, CRED).unindexed_packs() == []
        assert all(used == count for used, count in _pack_usage(storage))


def test_a_repository_held_open_sees_a_prune_made_elsewhere(tmp_path: Path) -> None:
    """The server holds its repository open between runs; a prune from the CLI meanwhile
    deletes packs, and the next run must store their chunks again, not count them as
    stored."""
    root = tmp_path / "src"
    root.mkdir()
    _write(root, "a", 300 * KiB)
    storage = MemoryStorage()
    held = Repository.init(storage, CRED, FAST, CONFIG)
    backup(held, [root], host="h", workers=2)
    contents = (root / "a").read_bytes()
    (root / "a").unlink()
    _write(root, "b", 100 * KiB)
    backup(held, [root], host="h", workers=2)
    other = Repository.open(storage, CRED)  # another process: forget the first, prune
    forget(other, RetentionPolicy(keep_last=1))
    assert prune(other, max_unused_fraction=0).packs_deleted > 0
    (root / "a").write_bytes(contents)  # back again, in the repository held open
    again = backup(held, [root], host="h", workers=2)
    assert again.summary.bytes_added >= len(contents)
    fresh = Repository.open(storage, CRED)
    entry = next(e for e in fresh.load_tree(again) if e.path.endswith("/a"))
    assert b"".join(fresh.load_blob(c, BlobType.DATA) for c in entry.chunks) == contents
