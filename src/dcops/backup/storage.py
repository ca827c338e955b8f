"""Where a repository's files live: the `Storage` protocol and its in-memory twin.

A repository is a handful of kinds of file, each a flat namespace of names (hex ids):

- ``config``: one file, ``config``;
- ``keys``: one per key (password or key file) that opens the repository;
- ``data``: pack files, named by the hash of their contents;
- ``index``: which blobs are in which pack;
- ``snapshots``: one manifest per snapshot;
- ``locks``: who is working on the repository, until when.

Files are written whole and never changed in place: `save` makes a file appear complete
or not at all. Implementations: `MemoryStorage` here, `DirectoryStorage`
(``dcops.backends.backup_dir``) and `S3Storage` (``dcops.backends.backup_s3``); one
contract suite (``tests/backends/test_backup_storage.py``) runs over all of them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Protocol

from dcops.backup.errors import MissingFile

KINDS = ("config", "keys", "data", "index", "snapshots", "locks")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown repository file kind {kind!r} (one of {', '.join(KINDS)})")


def check_name(kind: str, name: str) -> None:
    """Reject a name that is not a safe file name: letters, digits, ``._-``, not starting
    with a dot, at most 255 characters; the one ``config`` file is named ``config``."""
    check_kind(kind)
    if not _NAME.fullmatch(name):
        raise ValueError(f"unsafe repository file name {name!r} (letters, digits, '._-', "
                         "not starting with '.')")
    if kind == "config" and name != "config":
        raise ValueError(f"the config file is named 'config', not {name!r}")


def check_range(offset: int, length: int | None) -> None:
    """Reject a negative offset or length."""
    if offset < 0 or (length is not None and length < 0):
        raise ValueError(f"negative offset or length ({offset}, {length})")


class Storage(Protocol):
    """The files of one repository."""

    location: str  # for messages: a path or an s3:// address

    def save(self, kind: str, name: str, data: bytes) -> None:
        """Write a whole file; it appears complete or not at all. Saving a name that exists
        replaces it."""

    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        """The file's bytes from `offset` (`length` of them, or to the end); `MissingFile`
        when there is no such file. Fewer bytes than asked come back only at the end."""

    def size(self, kind: str, name: str) -> int:
        """The file's size in bytes; `MissingFile` when there is none."""

    def list(self, kind: str) -> Iterator[tuple[str, int]]:
        """(name, size) of every file of `kind`, in no particular order."""

    def remove(self, kind: str, name: str) -> None:
        """Delete the file; nothing happens if it is not there."""

    def close(self) -> None:
        """Release connections."""


class MemoryStorage:
    """A `Storage` in a dict: for tests and the simulator."""

    location = "memory:"

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def save(self, kind: str, name: str, data: bytes) -> None:
        check_name(kind, name)
        with self._lock:
            self.files[kind, name] = bytes(data)

    def load(self, kind: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        check_name(kind, name)
        check_range(offset, length)
        with self._lock:
            data = self.files.get((kind, name))
        if data is None:
            raise MissingFile(kind, name)
        end = len(data) if length is None else offset + length
        return data[offset:end]

    def size(self, kind: str, name: str) -> int:
        return len(self.load(kind, name))

    def list(self, kind: str) -> Iterator[tuple[str, int]]:
        check_kind(kind)
        with self._lock:
            found = [(n, len(d)) for (k, n), d in self.files.items() if k == kind]
        return iter(found)

    def remove(self, kind: str, name: str) -> None:
        check_name(kind, name)
        with self._lock:
            self.files.pop((kind, name), None)

    def close(self) -> None:
        pass
