"""A backup repository in a local directory (a disk, an NFS or Lustre mount).

Layout, one file per repository file::

    config
    keys/<name>   index/<name>   snapshots/<name>   locks/<name>
    data/<name[:2]>/<name>

A file is written to a temporary file beside it (``.tmp-<name>-<random>``), flushed to
disk, renamed over its name and the directory flushed, so after a crash it is there whole
or not at all. Names never start with a dot, so a temporary file left by a crash is never
listed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from dcops.backup.errors import MissingFile, StorageError, StorageFull
from dcops.backup.storage import check_kind, check_name, check_range

log = logging.getLogger(__name__)

_FULL = {errno.ENOSPC, errno.EDQUOT}
_TEMP_PREFIX = ".tmp-"
_READ_CHUNK = 16 << 20


def _error(path: Path, action: str, exc: OSError) -> StorageError:
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return StorageFull(f"no space left to {action} ({reason})", where=str(path),
                           hint="free space or grow the volume, then retry")
    return StorageError(f"cannot {action}: {reason}", where=str(path))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryStorage:
    """A `Storage` on a local directory; safe to use from many threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)

    def _dir(self, kind: str, name: str) -> Path:
        if kind == "config":
            return self.path
        if kind == "data":
            return self.path / "data" / name[:2]
        return self.path / kind

    def _file(self, kind: str, name: str) -> Path:
        check_name(kind, name)
        return self._dir(kind, name) / name

    def _make_dir(self, directory: Path) -> None:
        """Create `directory` and any missing parents, flushing each new entry to disk."""
        if directory.is_dir():
            return
        if directory.parent != directory:
            self._make_dir(directory.parent)
        try:
            directory.mkdir()
        except FileExistsError:
            return
        _fsync_dir(directory.parent)

    def save(self, kind: str, name: str, data: bytes) -> None:
        path = self._file(kind, name)
        directory = path.parent
        temp = directory / f"{_TEMP_PREFIX}{name}-{secrets.token_hex(6)}"
        try:
            self._make_dir(directory)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _error(path, "write", exc) from exc
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            if isinstance(exc, OSError):
                raise _error(path, "write", exc) from exc
            raise
        try:
            _fsync_dir(directory)
        except OSError as exc:
            raise _error(directory, "flush", exc) from exc

    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._file(kind, name)
        check_range(offset, length)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise MissingFile(kind, name) from None
        except OSError as exc:
            raise _error(path, "read", exc) from exc
        try:
            end = os.fstat(fd).st_size
            if length is not None:
                end = min(end, offset + length)
            parts: list[bytes] = []
            position = offset
            while position < end:
                part = os.pread(fd, min(end - position, _READ_CHUNK), position)
                if not part:
                    break
                parts.append(part)
                position += len(part)
            return b"".join(parts)
        except OSError as exc:
            raise _error(path, "read", exc) from exc
        finally:
            os.close(fd)

    def size(self, kind: str, name: str) -> int:
        path = self._file(kind, name)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            raise MissingFile(kind, name) from None
        except OSError as exc:
            raise _error(path, "read", exc) from exc

    def list(self, kind: str) -> Iterator[tuple[str, int]]:
        check_kind(kind)
        if kind == "config":
            try:
                yield "config", (self.path / "config").stat().st_size
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _error(self.path / "config", "read", exc) from exc
            return
        top = self.path / kind
        if kind == "data":
            for sub in self._entries(top):
                if sub.is_dir() and not sub.name.startswith("."):
                    yield from self._files(Path(sub.path))
        else:
            yield from self._files(top)

    def _entries(self, directory: Path) -> tuple[os.DirEntry[str], ...]:
        try:
            with os.scandir(directory) as entries:
                return tuple(entries)
        except FileNotFoundError:
            return ()
        except OSError as exc:
            raise _error(directory, "list", exc) from exc

    def _files(self, directory: Path) -> Iterator[tuple[str, int]]:
        for entry in self._entries(directory):
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_file():
                    yield entry.name, entry.stat().st_size
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _error(Path(entry.path), "read", exc) from exc

    def remove(self, kind: str, name: str) -> None:
        path = self._file(kind, name)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _error(path, "remove", exc) from exc
        log.debug("removed %s", path)

    def close(self) -> None:
        pass
