"""Restoring: byte-identical files with their modes and times; a damaged pack costs only
the files that need it, and never leaves bad bytes on disk."""

from __future__ import annotations

import os
from pathlib import Path

from dcops.backup.archiver import backup
from dcops.backup.crypto import OVERHEAD
from dcops.backup.restorer import destination, included, restore
from dcops.backup.storage import MemoryStorage
from tests.backup.conftest import WORKERS, make_repo


def under(out: Path, path: Path) -> Path:
    return destination(out, str(path))


def test_restore_is_identical(tmp_path: Path, tree: tuple[Path, dict[str, bytes]]) -> None:
    root, files = tree
    repo = make_repo(MemoryStorage())
    snap = backup(repo, [root], workers=WORKERS)
    out = tmp_path / "out"
    result = restore(repo, snap, out, workers=WORKERS)
    assert result.failed == {}
    assert (result.files, result.bytes) == (len(files), sum(len(d) for d in files.values()))
    for rel, data in files.items():
        assert under(out, root / rel).read_bytes() == data
    for path in [root, *root.rglob("*")]:
        got, want = os.lstat(under(out, path)), os.lstat(path)
        assert (got.st_mode, got.st_mtime_ns) == (want.st_mode, want.st_mtime_ns), path
    assert os.readlink(under(out, root / "link")) == "a/b/mid.bin"
    assert (under(out, root / "a" / "empty-dir")).is_dir()
    again = restore(repo, snap, out, workers=WORKERS)  # over an earlier restore
    assert again.failed == {} and under(out, root / "a" / "big.bin").read_bytes() == files[
        "a/big.bin"]


def test_include_patterns_select_paths_and_what_is_under_them(
        tmp_path: Path, tree: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = tree
    repo = make_repo(MemoryStorage())
    snap = backup(repo, [root], workers=WORKERS)
    out = tmp_path / "out"
    result = restore(repo, snap, out, include=[str(root / "a" / "b"), "*.txt"],
                     workers=WORKERS)
    restored = {str(p.relative_to(under(out, root))) for p in under(out, root).rglob("*")
                if p.is_file()}
    assert restored == {"a/b/mid.bin", "a/b/c/text.txt", "small.txt"}
    assert result.files == 3
    assert included("/x/y/z", ["/x/y"]) and not included("/x/yz", ["/x/y"])
    assert included("/anything", [])


def test_a_damaged_blob_fails_exactly_the_files_that_need_it(
        tmp_path: Path, tree: tuple[Path, dict[str, bytes]]) -> None:
    root, files = tree
    copy = root / "copy-of-big.bin"
    copy.write_bytes(files["a/big.bin"])  # shares every chunk with a/big.bin
    storage = MemoryStorage()
    repo = make_repo(storage)
    snap = backup(repo, [root], workers=WORKERS)
    entries = {e.path: e for e in repo.load_tree(snap)}
    damaged = entries[str(root / "a" / "big.bin")].chunks[1]
    where = repo.index.get(damaged)
    assert where is not None
    pack = bytearray(storage.files["data", where.pack])
    pack[where.offset + OVERHEAD] ^= 0xFF
    storage.files["data", where.pack] = bytes(pack)
    out = tmp_path / "out"
    result = restore(repo, snap, out, workers=WORKERS)
    expected = {p for p, e in entries.items() if damaged in e.chunks}
    assert expected == {str(root / "a" / "big.bin"), str(copy)}
    assert set(result.failed) == expected
    assert all("does not authenticate" in why for why in result.failed.values())
    for path in expected:
        assert not under(out, Path(path)).exists()
    for rel, data in files.items():
        if str(root / rel) not in expected:
            assert under(out, root / rel).read_bytes() == data
    assert result.files == len(files) + 1 - 2

