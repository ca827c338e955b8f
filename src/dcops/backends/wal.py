"""The write-ahead log of the embedded metrics store: append-only segment files.

Every acknowledged ingest batch is one record in the active segment before the
store answers. A record is ``<u32 length><u32 crc32><payload>``; a torn or corrupt
record (a crash in the middle of a write) ends that segment's replay with a log line.
Segments are numbered; the store flushes everything up to a segment into DuckDB,
remembers that number in the same transaction, then deletes those segments.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
_SUFFIX = ".wal"
MAX_RECORD_BYTES = 1 << 30


def _segment_path(directory: Path, number: int) -> Path:
    return directory / f"{number:016d}{_SUFFIX}"


def segment_numbers(directory: Path) -> list[int]:
    """Numbers of the segment files present in `directory`, oldest first."""
    out = []
    for path in directory.glob(f"*{_SUFFIX}"):
        stem = path.name[: -len(_SUFFIX)]
        if stem.isdigit():
            out.append(int(stem))
    return sorted(out)


@dataclass(frozen=True, slots=True)
class WalRecord:
    """One replayed record and the segment it came from."""

    segment: int
    payload: bytes


def read_segment(path: Path) -> Iterator[bytes]:
    """Payloads of the intact records of one segment; stops (with a warning) at a torn tail."""
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        if len(data) - pos < _HEADER.size:
            log.warning("wal %s: torn record header at byte %d; ignoring %d tail bytes",
                        path.name, pos, len(data) - pos)
            return
        length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        payload = data[start : start + length]
        if length > MAX_RECORD_BYTES or len(payload) != length or zlib.crc32(payload) != crc:
            log.warning("wal %s: torn or corrupt record at byte %d; ignoring %d tail bytes",
                        path.name, pos, len(data) - pos)
            return
        yield payload
        pos = start + length


class WriteAheadLog:
    """Segment files under `directory`; `append` returns once the record is in the OS (or disk).

    Not thread-safe on its own: the store calls it under its append lock.
    """

    def __init__(self, directory: Path, *, fsync: bool = False, first_segment: int = 0) -> None:
        self.directory = directory
        self.fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)
        existing = segment_numbers(directory)
        self.active = max([first_segment, *(n + 1 for n in existing)])
        self._bytes = sum(_segment_path(directory, n).stat().st_size for n in existing)
        self._fd = self._open(self.active)

    def _open(self, number: int) -> int:
        fd = os.open(_segment_path(self.directory, number),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self.fsync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return fd

    def replay(self, after: int) -> Iterator[WalRecord]:
        """Intact records of every segment numbered above `after`, oldest first."""
        for number in segment_numbers(self.directory):
            if after < number < self.active:
                for payload in read_segment(_segment_path(self.directory, number)):
                    yield WalRecord(number, payload)

    def append(self, payload: bytes) -> None:
        """Write one record to the active segment; with fsync, also force it to disk."""
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        view = memoryview(record)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)
        self._bytes += len(record)

    def rotate(self) -> int:
        """Close the active segment and start the next; returns the closed segment's number."""
        closed = self.active
        os.close(self._fd)
        self.active += 1
        self._fd = self._open(self.active)
        return closed

    def remove_through(self, number: int) -> None:
        """Delete every segment numbered `number` or lower (they are in DuckDB now)."""
        for n in segment_numbers(self.directory):
            if n <= number and n != self.active:
                path = _segment_path(self.directory, n)
                self._bytes -= path.stat().st_size
                path.unlink()
        self._bytes = max(self._bytes, 0)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
