"""Checking: a clean repository is ok; every kind of damage is found and names the file
that holds it, down to one flipped byte anywhere."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dcops.backends.backup_dir import DirectoryStorage
from dcops.backup.archiver import backup
from dcops.backup.checker import CheckResult, check
from dcops.backup.codec import BlobType
from dcops.backup.errors import Corrupt, WrongPassword
from dcops.backup.keys import FAST, Credential, add_key
from dcops.backup.repository import Repository
from dcops.backup.restorer import destination, restore
from dcops.core.secret import Secret
from tests.backup.conftest import PASSWORD, WORKERS, make_repo

OTHER = Credential(password=Secret("second key"))


def backed_up(storage: DirectoryStorage, root: Path) -> Repository:
    repo = make_repo(storage)
    add_key(storage, repo.master, OTHER, FAST)
    backup(repo, [root], workers=WORKERS)
    (root / "small.txt").write_bytes(b"second version")
    backup(repo, [root], workers=WORKERS)
    return repo


def reopen(storage: DirectoryStorage) -> Repository:
    return Repository.open(storage, PASSWORD)


def files_with_problems(result: CheckResult) -> set[str]:
    return {p.file for p in result.problems if p.severity == "error"}


def repo_file(storage: DirectoryStorage, kind: str) -> tuple[str, Path]:
    """The largest file of `kind` (for data: the first backup's pack) and its path."""
    name = max(storage.list(kind), key=lambda item: (item[1], item[0]))[0]
    sub = name[:2] if kind == "data" else ""
    return name, storage.path / kind / sub / name


def test_clean_repository_is_ok(dir_storage: DirectoryStorage,
                                tree: tuple[Path, dict[str, bytes]]) -> None:
    backed_up(dir_storage, tree[0])
    for read_data in (False, True):
        result = check(reopen(dir_storage), read_data=read_data, workers=WORKERS)
        assert result.ok and result.problems == []
        assert result.snapshots == 2 and result.packs >= 1 and result.blobs > 0
    assert result.bytes_read == sum(size for _, size in dir_storage.list("data"))


def test_missing_pack_names_the_snapshots_and_paths(dir_storage: DirectoryStorage,
                                                    tree: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = tree
    backed_up(dir_storage, root)
    name, path = repo_file(dir_storage, "data")
    path.unlink()
    result = check(reopen(dir_storage), workers=WORKERS)
    assert not result.ok
    missing = [p for p in result.problems if p.kind == "missing_pack"]
    assert [p.file for p in missing] == [f"data/{name}"]
    assert len(missing[0].snapshots) == 2 and str(root / "a" / "big.bin") in missing[0].paths


def test_truncated_pack(dir_storage: DirectoryStorage,
                        tree: tuple[Path, dict[str, bytes]]) -> None:
    backed_up(dir_storage, tree[0])
    name, path = repo_file(dir_storage, "data")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    quick = check(reopen(dir_storage), workers=WORKERS)
    # the largest pack holds file data only: the snapshots' listings are in their own
    assert {p.kind for p in quick.problems} == {"truncated_pack"}
    assert files_with_problems(quick) == {f"data/{name}"}
    assert str(tree[0] / "a" / "big.bin") in quick.problems[0].paths
    deep = check(reopen(dir_storage), read_data=True, workers=WORKERS)
    assert not deep.ok and files_with_problems(deep) == {f"data/{name}"}
    assert {p.kind for p in deep.problems} >= {"damaged_pack", "damaged_blob"}


def test_deleted_index_leaves_warnings_and_recover_restores(
        tmp_path: Path, dir_storage: DirectoryStorage,
        tree: tuple[Path, dict[str, bytes]]) -> None:
    root, files = tree
    backed_up(dir_storage, root)
    for name, _ in list(dir_storage.list("index")):
        dir_storage.remove("index", name)
    repo = reopen(dir_storage)
    result = check(repo, workers=WORKERS)
    unindexed = [p for p in result.problems if p.kind == "unindexed_pack"]
    assert unindexed and all(p.severity == "warning" for p in unindexed)
    assert {p.file for p in unindexed} == {f"data/{n}" for n, _ in dir_storage.list("data")}
    assert repo.recover() == len(unindexed)
    after = check(reopen(dir_storage), read_data=True, workers=WORKERS)
    assert after.problems == []
    out = tmp_path / "out"
    assert restore(repo, repo.find_snapshot("latest"), out, workers=WORKERS).failed == {}
    assert destination(out, str(root / "a" / "big.bin")).read_bytes() == files["a/big.bin"]


def test_damaged_snapshot(dir_storage: DirectoryStorage,
                          tree: tuple[Path, dict[str, bytes]]) -> None:
    backed_up(dir_storage, tree[0])
    name, path = repo_file(dir_storage, "snapshots")
    data = bytearray(path.read_bytes())
    data[40] ^= 0x10
    path.write_bytes(bytes(data))
    repo = reopen(dir_storage)
    assert len(repo.snapshots()) == 1  # the other still reads
    result = check(repo, workers=WORKERS)
    assert files_with_problems(result) == {f"snapshots/{name}"}
    assert {p.kind for p in result.problems} == {"damaged_snapshot"}


def test_damaged_config_names_config(dir_storage: DirectoryStorage,
                                     tree: tuple[Path, dict[str, bytes]]) -> None:
    backed_up(dir_storage, tree[0])
    path = dir_storage.path / "config"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(Corrupt) as caught:
        reopen(dir_storage)
    assert caught.value.where == "config" and str(caught.value).startswith("config:")


def test_fuzz_one_flipped_byte_anywhere_is_found_and_named(
        dir_storage: DirectoryStorage, tree: tuple[Path, dict[str, bytes]]) -> None:
    backed_up(dir_storage, tree[0])
    root = dir_storage.path
    targets = sorted(p for p in root.rglob("*") if p.is_file())
    kinds = {p.relative_to(root).parts[0] for p in targets}
    assert kinds == {"config", "data", "index", "keys", "snapshots"}
    rng = random.Random(20240601)
    seen: set[str] = set()
    for _ in range(50):
        path = rng.choice(targets)
        kind, name = path.relative_to(root).parts[0], path.name
        file = "config" if kind == "config" else f"{kind}/{name}"
        seen.add(kind)
        original = path.read_bytes()
        at = rng.randrange(len(original))
        flipped = bytearray(original)
        flipped[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(flipped))
        try:
            if kind == "config":
                with pytest.raises(Corrupt) as caught:
                    reopen(dir_storage)
                assert caught.value.where == "config", (file, at)
                continue
            try:
                repo = reopen(dir_storage)
            except WrongPassword as exc:  # its own key was hit: the other key opens
                assert kind == "keys" and f"keys/{name}" in str(exc), (file, at)
                repo = Repository.open(dir_storage, OTHER)
            result = check(repo, read_data=True, workers=WORKERS)
            damaged = {p.file for p in result.problems if p.kind.startswith("damaged")}
            # a file list whose index is lost is "in no index": named as the index at large
            derived = {"index"} if kind == "index" else set()
            assert file in damaged and damaged - derived == {file}, (file, at, result.problems)
            assert not result.ok, (file, at)
        finally:
            path.write_bytes(original)
    assert seen == kinds
    assert check(reopen(dir_storage), read_data=True, workers=WORKERS).problems == []


def test_a_damaged_data_pack_leaves_every_listing_readable(
        dir_storage: DirectoryStorage, tree: tuple[Path, dict[str, bytes]]) -> None:
    """File lists are packed apart from file data, so losing a data pack costs the files
    that need it and never a snapshot's listing."""
    backed_up(dir_storage, tree[0])
    repo = reopen(dir_storage)
    kinds = {name: {e.btype for e in entries} for name, entries in repo.index.packs.items()}
    assert all(len(types) == 1 for types in kinds.values())
    for name, types in kinds.items():
        if BlobType.DATA in types:
            dir_storage.remove("data", name)
    repo = reopen(dir_storage)
    for snap in repo.snapshots():
        assert list(repo.load_tree(snap))  # still listed
    result = check(repo, workers=WORKERS)
    assert {p.kind for p in result.problems} == {"missing_pack"}
