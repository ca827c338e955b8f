"""Checking a repository: that every file is whole, every snapshot reads, and every chunk
a snapshot needs is indexed; with `read_data`, that every blob of every pack
authenticates and hashes to its name. Each problem names the repository file, and the
snapshots and paths it affects.

Files named by their contents' hash (keys, index files, snapshots, packs) are checked
against their names first, which finds a flipped bit in any of them without the key.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dcops.backup import codec, locks
from dcops.backup.codec import BadBlob
from dcops.backup.crypto import content_name
from dcops.backup.errors import Corrupt, MissingFile, StorageError
from dcops.backup.pack import TRAILER, BadPack, PackEntry, read_header
from dcops.backup.progress import Progress, ProgressFn, quiet
from dcops.backup.repository import Repository


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the repository."""

    kind: str  # missing_pack, damaged_pack, damaged_blob, missing_blob, damaged_index, ...
    file: str  # the repository file, e.g. "data/3fa2..." or "snapshots/9c1e..."
    message: str
    snapshots: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    severity: str = "error"  # or "warning": nothing is lost

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "file": self.file, "message": self.message,
                "snapshots": list(self.snapshots), "paths": list(self.paths),
                "severity": self.severity}


@dataclass
class CheckResult:
    """What `check` looked at and what it found."""

    problems: list[Problem] = field(default_factory=list)
    snapshots: int = 0
    packs: int = 0
    blobs: int = 0
    bytes_read: int = 0
    read_data: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "problems": [p.to_json() for p in self.problems],
                "snapshots": self.snapshots, "packs": self.packs, "blobs": self.blobs,
                "bytes_read": self.bytes_read, "read_data": self.read_data,
                "seconds": self.seconds}


class Checker:
    """One check of `repo`."""

    def __init__(self, repo: Repository, *, workers: int | None = None,
                 progress: ProgressFn = quiet) -> None:
        self.repo = repo
        self.workers = workers or os.cpu_count() or 2
        self.progress_fn = progress
        self.progress = Progress("check")
        self.result = CheckResult()
        self._lock = threading.Lock()
        self._users: dict[bytes, list[tuple[str, str]]] = defaultdict(list)

    def _add(self, problem: Problem) -> None:
        with self._lock:
            self.result.problems.append(problem)

    def _affected(self, blob_ids: Iterable[bytes]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        snaps, paths = set(), set()
        for blob_id in blob_ids:
            for snap, path in self._users.get(blob_id, ()):
                snaps.add(snap)
                paths.add(path)
        return tuple(sorted(snaps)), tuple(sorted(paths))

    def run(self, read_data: bool = False) -> CheckResult:
        """Check under a shared lock: backups may run meanwhile (their packs show as
        unindexed), a prune may not."""
        with locks.hold(self.repo.storage, self.repo.master, exclusive=False,
                        operation="check"):
            self.repo.refresh_index()
            return self._run(read_data)

    def _run(self, read_data: bool) -> CheckResult:
        started = time.monotonic()
        repo = self.repo
        self.result.read_data = read_data
        # index files were read (and authenticated) when the repository opened, and
        # snapshots are read (hash, authentication, signature) by `_snapshots`: only the
        # keys are read here
        for name, _ in repo.storage.list("keys"):
            if content_name(repo.storage.load("keys", name)) != name:
                self._add(Problem("damaged_key", f"keys/{name}",
                                  "its contents do not hash to its name"))
        for name, why in repo.index_problems.items():
            self._add(Problem("damaged_index", f"index/{name}", why))
        self._snapshots()
        stored = dict(repo.storage.list("data"))
        for name, entries in repo.index.packs.items():
            expected = _pack_size(entries)
            if name not in stored:
                snaps, paths = self._affected(e.blob_id for e in entries)
                self._add(Problem("missing_pack", f"data/{name}", "the index lists it but "
                                  "it is not in the repository", snaps, paths))
            elif read_data is False and stored[name] < expected:
                snaps, paths = self._affected(e.blob_id for e in entries)
                self._add(Problem("truncated_pack", f"data/{name}",
                                  f"{stored[name]} bytes, its blobs alone take {expected}",
                                  snaps, paths))
        for name in stored.keys() - repo.index.packs.keys():
            self._add(Problem("unindexed_pack", f"data/{name}", "no index lists it (left by "
                              "an interrupted backup, or its index was lost); the next backup "
                              "or `prune` takes it in", severity="warning"))
        self.result.packs = len(stored)
        if read_data:
            packs = [(n, stored[n]) for n in repo.index.packs if n in stored]
            self.progress.bytes_total = sum(size for _, size in packs)
            self.progress.files_total = len(packs)
            self.progress_fn(self.progress)
            with ThreadPoolExecutor(self.workers, thread_name_prefix="backup-check") as pool:
                for future in [pool.submit(self._read_pack, n, s) for n, s in packs]:
                    future.result()
        self.progress_fn(self.progress)
        self.result.seconds = round(time.monotonic() - started, 3)
        return self.result

    def _snapshots(self) -> None:
        repo = self.repo
        for name, _ in repo.storage.list("snapshots"):
            try:
                snapshot = repo.load_snapshot(name)
            except (Corrupt, MissingFile) as exc:
                self._add(Problem("damaged_snapshot", f"snapshots/{name}", exc.message,
                                  (name,)))
                continue
            self.result.snapshots += 1
            for tree_id in snapshot.tree:
                self._users[tree_id].append((name, "(file list)"))
            try:
                entries = list(repo.load_tree(snapshot))
            except (Corrupt, MissingFile) as exc:  # a damaged or missing pack
                where = (f"{exc.file_kind}/{exc.name}" if isinstance(exc, MissingFile)
                         else exc.where)
                self._add(Problem("damaged_tree", where or f"snapshots/{name}",
                                  f"the file list of snapshot {name[:8]} does not read: "
                                  f"{exc.message}", (name,)))
                continue
            for entry in entries:
                for blob_id in entry.chunks:
                    self._users[blob_id].append((name, entry.path))
                missing = [c for c in entry.chunks if c not in repo.index]
                if missing:
                    self._add(Problem("missing_blob", "index", f"{len(missing)} chunks of "
                                      f"{entry.path} are in no index", (name,), (entry.path,)))
        self.result.blobs = len(self._users)

    def _read_pack(self, name: str, size: int) -> None:
        entries = self.repo.index.packs[name]
        try:
            data = self.repo.storage.load("data", name)
        except (MissingFile, StorageError) as exc:
            snaps, paths = self._affected(e.blob_id for e in entries)
            self._add(Problem("missing_pack", f"data/{name}", str(exc), snaps, paths))
            return
        self.progress.add(files=1, nbytes=len(data))
        with self._lock:
            self.result.bytes_read += len(data)
        file = f"data/{name}"
        if content_name(data) != name:
            self._add(Problem("damaged_pack", file, "its contents do not hash to its name"))
        try:
            header = read_header(self.repo.master, len(data), data[-min(len(data), 1 << 24):])
            if [(e.blob_id, e.offset, e.length) for e in header] != [
                    (e.blob_id, e.offset, e.length) for e in entries]:
                self._add(Problem("index_mismatch", file, "its header and the index disagree "
                                  "about what it holds"))
        except BadPack as exc:
            self._add(Problem("damaged_pack", file, f"header: {exc}"))
        bad = []
        view = memoryview(data)
        for e in entries:
            try:
                if e.offset + e.length > len(data) - TRAILER.size:
                    raise BadBlob("the pack ends before it")
                codec.decode(self.repo.master, view[e.offset:e.offset + e.length], e.blob_id,
                             e.btype)
            except BadBlob:
                bad.append(e.blob_id)
        if bad:
            snaps, paths = self._affected(bad)
            self._add(Problem("damaged_blob", file, f"{len(bad)} of its {len(entries)} blobs "
                              "do not authenticate", snaps, paths))
        self.progress_fn(self.progress)


def _pack_size(entries: list[PackEntry]) -> int:
    return sum(e.length for e in entries)


def check(repo: Repository, *, read_data: bool = False, workers: int | None = None,
          progress: ProgressFn = quiet) -> CheckResult:
    """Check `repo`'s structure, and with `read_data` every byte of it."""
    return Checker(repo, workers=workers, progress=progress).run(read_data)
