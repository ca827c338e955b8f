"""Restoring: byte-identical files with their modes and times; a damaged pack costs only
the files that need it, and never leaves bad bytes on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from dcops.backends.backup_dir import DirectoryStorage
from dcops.backup.archiver import backup
from dcops.backup.crypto import OVERHEAD
from dcops.backup.repository import Repository
from dcops.backup.restorer import MARKER, PARTIAL, destination, included, partial_name, restore
from dcops.backup.storage import MemoryStorage
from tests.backup.conftest import PASSWORD, WORKERS, make_repo, noise


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



KILLED_RESTORE = """
import os, signal, sys
from pathlib import Path
from dcops.backends.backup_dir import DirectoryStorage
from dcops.backup.keys import Credential
from dcops.backup.repository import Repository
from dcops.backup import restorer
from dcops.core.secret import Secret

repo_dir, target, kill_after = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
repo = Repository.open(DirectoryStorage(Path(repo_dir)),
                       Credential(password=Secret("correct horse")))
real_pwrite, writes = os.pwrite, [0]

def pwrite(fd, data, offset):
    if writes[0] == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
    writes[0] += 1
    return real_pwrite(fd, data, offset)

os.pwrite = pwrite
restorer.restore(repo, repo.snapshots()[-1], target, workers=1)
"""


def _files(root: Path) -> dict[str, bytes]:
    files = {f"f{i}.bin": noise(120_000, 10 + i) for i in range(6)}
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    return files


def _kill_restore(repo_dir: Path, target: Path, kill_after: int) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", KILLED_RESTORE, str(repo_dir), str(target),
                           str(kill_after)], env=env, capture_output=True, timeout=120)
    return done.returncode


def test_a_killed_restore_leaves_no_cut_off_file_and_the_next_one_resumes(
        tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    files = _files(root)
    repo = make_repo(DirectoryStorage(tmp_path / "repo"))
    snap = backup(repo, [root], workers=WORKERS)
    chunks = sum(len(e.chunks) for e in repo.load_tree(snap))
    repo.close()
    out = tmp_path / "out"
    assert _kill_restore(tmp_path / "repo", out, chunks // 2) == -signal.SIGKILL

    in_place = {rel for rel in files if under(out, root / rel).exists()}
    assert 0 < len(in_place) < len(files)  # cut off half way
    for rel in in_place:  # what is at a path is the whole file
        assert under(out, root / rel).read_bytes() == files[rel]
    partial = sorted(p.name for p in under(out, root).iterdir() if p.name.endswith(PARTIAL))
    assert partial == sorted(partial_name(Path(rel)).name for rel in set(files) - in_place)
    assert (out / MARKER).exists()

    repo = Repository.open(DirectoryStorage(tmp_path / "repo"), PASSWORD)
    result = restore(repo, snap, out, workers=WORKERS)
    assert result.failed == {}
    assert result.interrupted is not None and result.interrupted["snapshot"] == snap.id
    partial_left = result.interrupted["partial"]
    assert isinstance(partial_left, list)
    left = {Path(p).name for p in partial_left}
    assert left == set(files) - in_place
    assert result.kept == len(in_place)
    assert result.files == len(files)
    for rel, data in files.items():
        assert under(out, root / rel).read_bytes() == data
    assert not [p for p in out.rglob("*") if p.name.endswith(PARTIAL) or p.name == MARKER]


def test_resuming_rewrites_a_file_in_place_whose_bytes_differ(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    files = _files(root)
    repo = make_repo(MemoryStorage())
    snap = backup(repo, [root], workers=WORKERS)
    out = tmp_path / "out"
    restore(repo, snap, out, workers=WORKERS)
    changed = under(out, root / "f2.bin")
    stat = changed.stat()
    with open(changed, "r+b") as f:  # same size and time, one byte different
        f.seek(70_000)
        f.write(bytes([files["f2.bin"][70_000] ^ 1]))
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (out / MARKER).write_text(json.dumps({"snapshot": snap.id, "started": 0}))
    result = restore(repo, snap, out, workers=WORKERS)
    assert result.kept == len(files) - 1
    assert changed.read_bytes() == files["f2.bin"]


def test_a_file_that_cannot_be_restored_leaves_what_was_at_its_path(
        tmp_path: Path, tree: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = tree
    storage = MemoryStorage()
    repo = make_repo(storage)
    snap = backup(repo, [root], workers=WORKERS)
    entry = next(e for e in repo.load_tree(snap) if e.path == str(root / "a" / "big.bin"))
    where = repo.index.get(entry.chunks[0])
    assert where is not None
    pack = bytearray(storage.files["data", where.pack])
    pack[where.offset + OVERHEAD] ^= 0xFF
    storage.files["data", where.pack] = bytes(pack)
    out = tmp_path / "out"
    earlier = under(out, root / "a" / "big.bin")
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"what was here before")
    result = restore(repo, snap, out, workers=WORKERS)
    assert str(root / "a" / "big.bin") in result.failed
    assert earlier.read_bytes() == b"what was here before"
    assert not partial_name(earlier).exists()


def test_a_restore_cut_off_while_restoring_another_snapshot_is_reported(
        tmp_path: Path, tree: tuple[Path, dict[str, bytes]]) -> None:
    root, files = tree
    repo = make_repo(MemoryStorage())
    snap = backup(repo, [root], workers=WORKERS)
    out = tmp_path / "out"
    stray = under(out, root / "a" / "gone.bin")
    stray.parent.mkdir(parents=True)
    partial_name(stray).write_bytes(b"half")
    (out / MARKER).write_text("{\"snapshot\": \"")  # cut off while it was written
    result = restore(repo, snap, out, workers=WORKERS)
    assert result.interrupted is not None
    assert result.interrupted["partial"] == [str(stray.relative_to(out))]
    assert result.kept == 0 and result.files == len(files)
    assert not partial_name(stray).exists() and not (out / MARKER).exists()
