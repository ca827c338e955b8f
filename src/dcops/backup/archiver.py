"""Backing up: walk the paths, reuse what the parent snapshot already holds, cut the rest
into chunks, and encode and store the new chunks on every core.

The walking thread reads each changed file in blocks (never mapping it: a file shrinking
under a map would kill the process), cuts chunks, names them by their keyed hash and hands
the new ones to encoder threads (byte shuffle, zstd and AES-GCM release the interpreter
lock), at most a few per core in flight, so memory stays bounded whatever the file sizes.
A file whose size, mtime, ctime and inode match the parent snapshot's entry is not read.
"""

from __future__ import annotations

import getpass
import io
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path

from dcops.backup import codec, locks
from dcops.backup.chunker import Chunker, Region, header_bytes_needed, safetensors_regions
from dcops.backup.codec import BlobType
from dcops.backup.model import FileEntry, NodeType, Snapshot, Summary
from dcops.backup.progress import Progress, ProgressFn, Throttled, quiet
from dcops.backup.repository import Repository

log = logging.getLogger(__name__)

BLOCK = 32 * 1024 * 1024  # bytes read at a time (at least the largest chunk)
PER_WORKER = 3  # chunks in flight per encoder thread


@dataclass
class _Counts:
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    bytes_read: int = 0
    bytes_added: int = 0
    blobs_added: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _excluded(path: str, excludes: Sequence[str]) -> bool:
    name = os.path.basename(path)
    return any(fnmatch(path, pattern) or fnmatch(name, pattern) for pattern in excludes)


def walk(paths: Sequence[Path], excludes: Sequence[str] = (),
         errors: list[str] | None = None) -> Iterator[tuple[str, os.stat_result]]:
    """(absolute path, lstat) of every file, directory and link under `paths`, not
    following links, in the same order every time (each directory's entries sorted by
    name, then its subdirectories); unreadable entries go to `errors`."""
    def failed(what: str) -> None:
        if errors is not None:
            errors.append(what)
        log.warning("%s", what)

    for root in sorted({str(Path(p).absolute()) for p in paths}):
        try:
            st = os.lstat(root)
        except OSError as exc:
            failed(f"{root}: {exc.strerror}")
            continue
        yield root, st
        if not stat.S_ISDIR(st.st_mode):
            continue
        stack = [root]
        while stack:
            top = stack.pop()
            try:
                with os.scandir(top) as it:
                    children = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                failed(f"{top}: {exc.strerror}")
                continue
            subdirs = []
            for entry in children:
                if _excluded(entry.path, excludes):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    failed(f"{entry.path}: {exc.strerror}")
                    continue
                yield entry.path, st
                if stat.S_ISDIR(st.st_mode):
                    subdirs.append(entry.path)
            stack.extend(reversed(subdirs))


def choose_parent(repo: Repository, paths: Sequence[str], host: str) -> Snapshot | None:
    """The latest snapshot of the same paths from the same host, as restic chooses."""
    same = [s for s in repo.snapshots() if s.host == host and sorted(s.paths) == sorted(paths)]
    return same[-1] if same else None


class Archiver:
    """One backup run into `repo`."""

    def __init__(self, repo: Repository, *, workers: int | None = None,
                 progress: ProgressFn = quiet) -> None:
        self.repo = repo
        self.workers = workers or os.cpu_count() or 2
        self.progress = Progress("backup")
        self._counts = _Counts()
        self._slots = threading.BoundedSemaphore(self.workers * PER_WORKER)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="backup-encode")
        self._failed: BaseException | None = None
        self._chunker = Chunker(repo.config)
        self._buf = bytearray()
        self._show = Throttled(progress, self.progress)

    # -- chunks -------------------------------------------------------------------------

    def _encode(self, view: memoryview, blob_id: bytes, stride: int) -> None:
        try:
            sealed, _ = codec.encode(self.repo.master, view, blob_id, BlobType.DATA,
                                     stride=stride, level=self.repo.config.zstd_level)
            self.repo.save_sealed(BlobType.DATA, blob_id, sealed, len(view))
            with self._counts.lock:
                self._counts.bytes_added += len(view)
                self._counts.blobs_added += 1
        except BaseException as exc:
            self.repo.release(blob_id)
            if self._failed is None:
                self._failed = exc
        finally:
            self._slots.release()

    def _chunk(self, view: memoryview, stride: int, *, copy: bool) -> bytes:
        """Name a chunk; a new one goes to the encoders (copied out of a read buffer that
        is about to be reused, when `copy`)."""
        blob_id = self.repo.master.chunk_id(view)
        if self.repo.reserve(blob_id):
            if self._failed is not None:
                raise self._failed
            self._slots.acquire()
            self._pool.submit(self._encode, memoryview(bytes(view)) if copy else view,
                              blob_id, stride)
        return blob_id

    # -- files --------------------------------------------------------------------------

    def _fill(self, f: io.RawIOBase, buf: bytearray, start: int, stop: int, path: str) -> None:
        """Read the file's next `stop - start` bytes into ``buf[start:stop]``."""
        view = memoryview(buf)
        at = start
        while at < stop:
            got = f.readinto(view[at:stop])
            if not got:
                raise OSError(f"{path} shrank while being read")
            at += got
        self.progress.add(nbytes=stop - start)
        with self._counts.lock:
            self._counts.bytes_read += stop - start

    def _buffer(self, size: int) -> bytearray:
        """The read buffer, reused from file to file (fresh memory costs page faults)."""
        if len(self._buf) < size:
            self._buf = bytearray(size)
        return self._buf

    def _read_file(self, path: str, size: int) -> list[bytes]:
        """The names of the file's chunks, new ones handed to the encoders.

        The buffer holds the file's bytes from `buf_start`, `filled` of them; each round
        cuts what it holds of the current region, keeps the last chunk (which may go on
        past the buffer) for the next round, and reads on."""
        chunks: list[bytes] = []
        with open(path, "rb", buffering=0) as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            if size <= self._chunker.min_size:
                data = bytearray(size)
                self._fill(f, data, 0, size, path)
                return [self._chunk(memoryview(data), 0, copy=False)] if data else []
            first8 = bytearray(8)
            self._fill(f, first8, 0, 8, path)
            need = header_bytes_needed(bytes(first8))
            head = min(size, max(BLOCK, need if need <= size else 0))
            buf = self._buffer(max(BLOCK, head) + self._chunker.max_size)
            buf[:8] = first8
            self._fill(f, buf, 8, head, path)
            regions = safetensors_regions(bytes(buf[:min(head, max(need, 8))]), size) or [
                Region(0, size)]
            buf_start, filled = 0, head
            for region in regions:
                at = region.start
                while at < region.end:
                    want = min(region.end, at + BLOCK)
                    if buf_start + filled < want:  # keep the bytes from `at`, read on
                        keep = buf_start + filled - at
                        buf[:keep] = buf[at - buf_start:filled]
                        self._fill(f, buf, keep, want - at, path)
                        buf_start, filled = at, want - at
                    end = min(region.end, buf_start + filled)
                    view = memoryview(buf)
                    cuts = list(self._chunker.cut(
                        view, Region(at - buf_start, end - buf_start, region.stride)))
                    if end < region.end and cuts[-1][1] < self._chunker.max_size:
                        cuts.pop()  # the last chunk may go on past the buffer
                    for offset, length in cuts:
                        chunks.append(self._chunk(view[offset:offset + length], region.stride,
                                                  copy=True))
                    at = buf_start + cuts[-1][0] + cuts[-1][1]
                    del view
                    self._show()
            if f.read(1):
                raise OSError(f"{path} grew while being read")
        return chunks

    def _entry(self, path: str, st: os.stat_result, old: FileEntry | None) -> FileEntry | None:
        mode = stat.S_IMODE(st.st_mode)
        base = FileEntry(path=path, type=NodeType.DIR, mode=mode, mtime_ns=st.st_mtime_ns,
                         uid=st.st_uid, gid=st.st_gid)
        if stat.S_ISDIR(st.st_mode):
            return base
        if stat.S_ISLNK(st.st_mode):
            return replace(base, type=NodeType.SYMLINK, target=os.readlink(path))
        if not stat.S_ISREG(st.st_mode):
            return None  # sockets, devices, fifos are not backed up
        counts = self._counts
        if (old is not None and old.type is NodeType.FILE and old.size == st.st_size
                and old.mtime_ns == st.st_mtime_ns and old.ctime_ns == st.st_ctime_ns
                and old.inode == st.st_ino and all(c in self.repo.index for c in old.chunks)):
            counts.files_unchanged += 1
            self.progress.add(files=1, nbytes=st.st_size)
            return replace(base, type=NodeType.FILE, size=old.size, ctime_ns=old.ctime_ns,
                           inode=old.inode, chunks=old.chunks)
        self.progress.current = path
        chunks = self._read_file(path, st.st_size)
        if old is None:
            counts.files_new += 1
        else:
            counts.files_changed += 1
        self.progress.add(files=1)
        return replace(base, type=NodeType.FILE, size=st.st_size, ctime_ns=st.st_ctime_ns,
                       inode=st.st_ino, chunks=tuple(chunks))

    # -- the run ------------------------------------------------------------------------

    def run(self, paths: Sequence[Path], *, tags: Sequence[str] = (),
            excludes: Sequence[str] = (), parent: Snapshot | None = None,
            host: str | None = None) -> Snapshot:
        started = time.monotonic()
        host = host or socket.gethostname()
        absolute = sorted({str(Path(p).absolute()) for p in paths})
        errors = self._counts.errors
        listing = list(walk([Path(p) for p in absolute], excludes, errors))
        files = [st for _, st in listing if stat.S_ISREG(st.st_mode)]
        self.progress.files_total = len(files)
        self.progress.bytes_total = sum(st.st_size for st in files)
        old = ({e.path: e for e in self.repo.load_tree(parent)} if parent is not None else {})
        entries: list[FileEntry] = []
        try:
            for path, st in listing:
                try:
                    entry = self._entry(path, st, old.get(path))
                except OSError as exc:
                    errors.append(f"{path}: {exc.strerror or exc}")
                    log.warning("not backed up: %s: %s", path, exc)
                    self.progress.add(files=1, errors=1)
                    continue
                if entry is not None:
                    entries.append(entry)
                if self._failed is not None:
                    raise self._failed
        finally:
            self._pool.shutdown(wait=True)
        if self._failed is not None:
            raise self._failed
        tree = self.repo.save_tree(entries)
        self.repo.flush()
        self._show(force=True)
        c = self._counts
        summary = Summary(
            files=sum(1 for e in entries if e.type is NodeType.FILE),
            dirs=sum(1 for e in entries if e.type is NodeType.DIR),
            bytes=sum(e.size for e in entries), files_new=c.files_new,
            files_changed=c.files_changed, files_unchanged=c.files_unchanged,
            bytes_read=c.bytes_read, bytes_added=c.bytes_added,
            bytes_stored=self.repo.bytes_stored, blobs_added=c.blobs_added,
            packs_written=self.repo.packs_written,
            seconds=round(time.monotonic() - started, 3), errors=tuple(errors))
        snapshot = Snapshot(id="", time=datetime.now(UTC), host=host, user=getpass.getuser(),
                            paths=tuple(absolute), tags=tuple(tags),
                            parent=parent.id if parent else None, tree=tree, summary=summary)
        return self.repo.save_snapshot(snapshot)


def backup(repo: Repository, paths: Sequence[Path], *, tags: Sequence[str] = (),
           excludes: Sequence[str] = (), parent: str | None = None, force: bool = False,
           host: str | None = None, workers: int | None = None,
           progress: ProgressFn = quiet) -> Snapshot:
    """Back `paths` up into `repo` under a shared lock; returns the new snapshot.

    `parent` names the snapshot whose unchanged files are not read again (default: the
    latest of the same paths from this host; none with `force`)."""
    host = host or socket.gethostname()
    with locks.hold(repo.storage, repo.master, exclusive=False, operation="backup"):
        repo.refresh_index()
        repo.recover()
        absolute = [str(Path(p).absolute()) for p in paths]
        chosen = (None if force else repo.find_snapshot(parent) if parent
                  else choose_parent(repo, absolute, host))
        try:
            return Archiver(repo, workers=workers, progress=progress).run(
                paths, tags=tags, excludes=excludes, parent=chosen, host=host)
        finally:
            repo.close()
