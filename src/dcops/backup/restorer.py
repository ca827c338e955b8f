"""Restoring a snapshot: every pack read once, its blobs authenticated, and each chunk's
bytes written to every place in every file that holds it.

Files are written where the snapshot recorded them, under the target directory (as
restic does). A byte is written only after its blob authenticated and hashed to its name.
Each file is written beside its place under a temporary name (`partial_name`) and renamed
into place once all of it is written, so a path holds either what it held before or the
whole restored file: a file any of whose chunks cannot be read is reported and never put
in place, and a restore that is killed leaves no cut-off file at any path. Packs are read
on every core, a few adjacent blobs per read.

A restore marks its target (`MARKER`) until it ends. A restore that finds the mark knows
the one before it was cut off: it says so (`RestoreResult.interrupted`), removes the
partial files that one left, and, restoring the same snapshot again, keeps each file that
is already in place with its recorded size and time after hashing its chunks to their ids.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from dcops.backup import codec, locks
from dcops.backup.codec import BadBlob, BlobType
from dcops.backup.errors import MissingFile, StorageError
from dcops.backup.index import Location
from dcops.backup.model import FileEntry, NodeType, Snapshot
from dcops.backup.progress import Progress, ProgressFn, Throttled, quiet
from dcops.backup.repository import Repository

log = logging.getLogger(__name__)

MAX_GAP = 256 * 1024  # blobs closer than this in one pack are read in one request
MARKER = ".dcops-restore.json"
"""In a restore's target while the restore runs."""
PARTIAL = ".dcops-restore"
"""The suffix of a file being restored (see `partial_name`)."""
VERIFY_READ = 8 << 20


@dataclass
class RestoreResult:
    """What a restore did; `failed` maps each file not restored to why."""

    snapshot: str
    target: str
    files: int = 0
    dirs: int = 0
    bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    kept: int = 0
    """Files an interrupted restore of the same snapshot had put in place, verified."""
    interrupted: dict[str, object] | None = None
    """The restore into this target that was cut off: its snapshot, when it started, and
    the files it left unfinished (`partial`)."""

    def to_json(self) -> dict[str, object]:
        return {"snapshot": self.snapshot, "target": self.target, "files": self.files,
                "dirs": self.dirs, "bytes": self.bytes, "failed": self.failed,
                "seconds": self.seconds, "kept": self.kept, "interrupted": self.interrupted}


def included(path: str, patterns: Sequence[str]) -> bool:
    """Whether `path` is selected by `--include` patterns (none: everything): a pattern
    selects a path it matches and everything under it."""
    if not patterns:
        return True
    parts = path.rstrip("/").split("/")
    prefixes = ["/".join(parts[:i]) or "/" for i in range(1, len(parts) + 1)]
    return any(fnmatch(p, pattern) for pattern in patterns for p in prefixes)


def destination(target: Path, path: str) -> Path:
    return target / path.lstrip("/")


def partial_name(dest: Path) -> Path:
    """Where `dest` is written until all of it is: a hidden name beside it (hashed when the
    name is too long to carry a suffix)."""
    name = dest.name
    if len(name.encode()) > 200:
        name = hashlib.blake2b(name.encode(), digest_size=16).hexdigest()
    return dest.with_name(f".{name}{PARTIAL}")


def _read_marker(target: Path) -> dict[str, object] | None:
    try:
        body = json.loads((target / MARKER).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"snapshot": None, "started": None}  # cut off while the mark was written
    return body if isinstance(body, dict) else {"snapshot": None, "started": None}


def _write_marker(target: Path, snapshot: Snapshot, include: Sequence[str]) -> None:
    tmp = target / f"{MARKER}.tmp"
    tmp.write_text(json.dumps({"snapshot": snapshot.id, "started": time.time(),
                               "include": list(include), "pid": os.getpid()}))
    os.replace(tmp, target / MARKER)


def _remove_partials(target: Path) -> list[str]:
    """Remove the partial files an interrupted restore left under `target`; the paths they
    were for, relative to it."""
    left: list[str] = []
    for folder, _, names in os.walk(target):
        for name in names:
            if name.endswith(PARTIAL) and name.startswith("."):
                partial = Path(folder) / name
                partial.unlink(missing_ok=True)
                left.append(str((Path(folder) / name[1:-len(PARTIAL)]).relative_to(target)))
    return sorted(left)


class _Writes:
    """Where each blob goes, and which files have failed."""

    def __init__(self, files: list[FileEntry], target: Path) -> None:
        self.files = files
        self.dest = [destination(target, e.path) for e in files]
        self.partial = [partial_name(d) for d in self.dest]
        self.failed: dict[int, str] = {}
        self.remaining = [len(e.chunks) for e in files]
        self.sizes: list[list[int]] = [[] for _ in files]  # each chunk's length, per file
        self.lock = threading.Lock()

    def done(self, i: int) -> None:
        """All of file `i` is written: give it its mode and time, and put it in place."""
        entry, partial = self.files[i], self.partial[i]
        os.chmod(partial, entry.mode)
        os.utime(partial, ns=(entry.mtime_ns, entry.mtime_ns))
        os.replace(partial, self.dest[i])

    def fail(self, file_ids: Sequence[int], why: str) -> None:
        with self.lock:
            for i in file_ids:
                self.failed.setdefault(i, why)


class Restorer:
    """One restore of `snapshot` from `repo` into `target`."""

    def __init__(self, repo: Repository, *, workers: int | None = None,
                 progress: ProgressFn = quiet) -> None:
        self.repo = repo
        self.workers = workers or os.cpu_count() or 2
        self.progress = Progress("restore")
        self._show = Throttled(progress, self.progress)

    def run(self, snapshot: Snapshot, target: Path,
            include: Sequence[str] = ()) -> RestoreResult:
        with locks.hold(self.repo.storage, self.repo.master, exclusive=False,
                        operation="restore"):
            self.repo.refresh_index()
            return self._run(snapshot, target, include)

    def _run(self, snapshot: Snapshot, target: Path, include: Sequence[str]) -> RestoreResult:
        started = time.monotonic()
        result = RestoreResult(snapshot.id, str(target))
        entries = [e for e in self.repo.load_tree(snapshot) if included(e.path, include)]
        files = [e for e in entries if e.type is NodeType.FILE]
        self.progress.files_total = len(files)
        self.progress.bytes_total = sum(e.size for e in files)
        target.mkdir(parents=True, exist_ok=True)
        earlier = _read_marker(target)
        if earlier is not None:
            partial = _remove_partials(target)
            result.interrupted = {"snapshot": earlier.get("snapshot"),
                                  "started": earlier.get("started"), "partial": partial}
            log.warning("restore into %s: the restore of snapshot %s there was cut off; "
                        "%d partial files removed", target, earlier.get("snapshot"),
                        len(partial))
        _write_marker(target, snapshot, include)
        for entry in entries:
            if entry.type is NodeType.DIR:
                destination(target, entry.path).mkdir(parents=True, exist_ok=True)
                result.dirs += 1
        writes = _Writes(files, target)
        by_pack = self._plan(writes)
        resume = earlier is not None and earlier.get("snapshot") == snapshot.id
        for i, entry in enumerate(files):
            if i in writes.failed:
                continue
            if resume and self._in_place(writes, i):
                self._drop(by_pack, writes, i)
                result.kept += 1
                self.progress.add(files=1, nbytes=entry.size)
                continue
            writes.dest[i].parent.mkdir(parents=True, exist_ok=True)
            with open(writes.partial[i], "wb") as f:
                f.truncate(entry.size)
            if not entry.chunks:
                writes.done(i)
        self._show(force=True)  # the totals, before the first pack arrives
        with ThreadPoolExecutor(self.workers, thread_name_prefix="backup-restore") as pool:
            for future in [pool.submit(self._pack, name, blobs, writes)
                           for name, blobs in sorted(by_pack.items()) if blobs]:
                future.result()
        for i, entry in enumerate(files):
            if i in writes.failed:
                writes.partial[i].unlink(missing_ok=True)
                result.failed[entry.path] = writes.failed[i]
                continue
            result.files += 1
            result.bytes += entry.size
        for entry in entries:
            dest = destination(target, entry.path)
            if entry.type is NodeType.SYMLINK:
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.is_symlink() or dest.exists():
                    dest.unlink()
                os.symlink(entry.target, dest)
                os.utime(dest, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)
        (target / MARKER).unlink()
        for entry in sorted((e for e in entries if e.type is NodeType.DIR),
                            key=lambda e: e.path, reverse=True):
            dest = destination(target, entry.path)
            os.chmod(dest, entry.mode)
            os.utime(dest, ns=(entry.mtime_ns, entry.mtime_ns))
        self._show(force=True)
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _in_place(self, writes: _Writes, i: int) -> bool:
        """Whether file `i` is in place already: its recorded size and time, and each of
        its chunks hashing to its id."""
        entry, dest = writes.files[i], writes.dest[i]
        try:
            st = os.lstat(dest)
        except OSError:
            return False
        if not (os.path.isfile(dest) and not os.path.islink(dest)) or \
                st.st_size != entry.size or st.st_mtime_ns != entry.mtime_ns:
            return False
        with contextlib.suppress(OSError), open(dest, "rb") as f:
            for blob_id, size in zip(entry.chunks, writes.sizes[i], strict=True):
                if self.repo.master.chunk_id(f.read(size)) != blob_id:
                    return False
            return True
        return False

    def _drop(self, by_pack: dict[str, dict[bytes, tuple[Location, list[tuple[int, int]]]]],
              writes: _Writes, i: int) -> None:
        """Take file `i` out of the plan: it needs nothing written."""
        for blob_id in set(writes.files[i].chunks):
            where = self.repo.index.get(blob_id)
            if where is None:
                continue
            blobs = by_pack[where.pack]
            targets = blobs[blob_id][1]
            targets[:] = [t for t in targets if t[0] != i]
            if not targets:
                del blobs[blob_id]

    def _plan(self, writes: _Writes
              ) -> dict[str, dict[bytes, tuple[Location, list[tuple[int, int]]]]]:
        """Per pack, per blob: where it is and the (file, offset) pairs it goes to."""
        by_pack: dict[str, dict[bytes, tuple[Location, list[tuple[int, int]]]]] = (
            defaultdict(dict))
        for i, entry in enumerate(writes.files):
            offset = 0
            for blob_id in entry.chunks:
                where = self.repo.index.get(blob_id)
                if where is None:
                    writes.fail([i], f"chunk {blob_id.hex()[:16]} is in no index")
                    break
                blobs = by_pack[where.pack]
                if blob_id not in blobs:
                    blobs[blob_id] = (where, [])
                blobs[blob_id][1].append((i, offset))
                writes.sizes[i].append(where.raw_length)
                offset += where.raw_length
            else:
                if offset != entry.size:
                    writes.fail([i], f"its chunks hold {offset} bytes, not {entry.size}")
        return by_pack

    def _pack(self, name: str, blobs: dict[bytes, tuple[Location, list[tuple[int, int]]]],
              writes: _Writes) -> None:
        ordered = sorted(blobs.items(), key=lambda item: item[1][0].offset)
        groups: list[list[tuple[bytes, tuple[Location, list[tuple[int, int]]]]]] = []
        for item in ordered:
            loc = item[1][0]
            if groups:
                last = groups[-1][-1][1][0]
                if loc.offset - (last.offset + last.length) <= MAX_GAP:
                    groups[-1].append(item)
                    continue
            groups.append([item])
        for group in groups:
            start = group[0][1][0].offset
            end = max(loc.offset + loc.length for _, (loc, _) in group)
            try:
                data = memoryview(self.repo.storage.load("data", name, start, end - start))
            except (MissingFile, StorageError) as exc:
                writes.fail([i for _, (_, to) in group for i, _ in to],
                            f"pack {name[:16]} could not be read: {exc}")
                continue
            for blob_id, (loc, targets) in group:
                self._blob(data, start, blob_id, loc, targets, writes, name)

    def _blob(self, data: memoryview, start: int, blob_id: bytes, loc: Location,
              targets: list[tuple[int, int]], writes: _Writes, pack: str) -> None:
        sealed = data[loc.offset - start:loc.offset - start + loc.length]
        try:
            if len(sealed) != loc.length:
                raise BadBlob(f"pack {pack[:16]} is shorter than its index says")
            plain = codec.decode(self.repo.master, sealed, blob_id, BlobType.DATA)
        except BadBlob as exc:
            writes.fail([i for i, _ in targets], f"{exc} (pack {pack[:16]})")
            log.error("restore: %s", exc)
            return
        for i, offset in targets:
            if i in writes.failed:
                continue
            fd = os.open(writes.partial[i], os.O_WRONLY)
            try:
                os.pwrite(fd, plain, offset)
            finally:
                os.close(fd)
            self.progress.add(nbytes=len(plain))
            with writes.lock:
                writes.remaining[i] -= 1
                finished = writes.remaining[i] == 0
            if finished:
                writes.done(i)
                self.progress.add(files=1)
        self._show()


def restore(repo: Repository, snapshot: Snapshot, target: Path, *,
            include: Sequence[str] = (), workers: int | None = None,
            progress: ProgressFn = quiet) -> RestoreResult:
    """Restore `snapshot` (or the parts `include` selects) under `target`."""
    return Restorer(repo, workers=workers, progress=progress).run(snapshot, target, include)
