"""The metrics write-ahead log: records round-trip, segments rotate, torn tails are ignored."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest

from dcops.backends.wal import WriteAheadLog, segment_numbers


def payloads(wal: WriteAheadLog, after: int = -1) -> list[tuple[int, bytes]]:
    return [(r.segment, r.payload) for r in wal.replay(after)]


def test_records_replay_in_order_after_reopen(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    wal.append(b"first")
    wal.append(b"")
    wal.rotate()
    wal.append(b"third" * 1000)
    wal.close()
    reopened = WriteAheadLog(tmp_path)
    assert reopened.active == 2  # never appends to a segment that may have a torn tail
    assert payloads(reopened) == [(0, b"first"), (0, b""), (1, b"third" * 1000)]
    assert payloads(reopened, after=0) == [(1, b"third" * 1000)]
    reopened.close()


def test_remove_through_deletes_flushed_segments_and_counts_bytes(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, fsync=True)
    wal.append(b"a" * 100)
    assert wal.size_bytes == 108
    closed = wal.rotate()
    wal.append(b"b")
    wal.remove_through(closed)
    assert segment_numbers(tmp_path) == [1]
    assert wal.size_bytes == 9
    wal.close()


def test_first_segment_is_respected(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, first_segment=7)
    assert wal.active == 7
    wal.close()


@pytest.mark.parametrize("tail", [b"\x05\x00", struct.pack("<II", 100, 0) + b"short",
                                  struct.pack("<II", 4, 12345) + b"abcd"])
def test_torn_or_corrupt_tail_is_ignored_with_a_log_line(
    tmp_path: Path, tail: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    wal = WriteAheadLog(tmp_path)
    wal.append(b"kept")
    wal.close()
    with (tmp_path / "0000000000000000.wal").open("ab") as f:
        f.write(tail)
    with caplog.at_level(logging.WARNING, logger="dcops.backends.wal"):
        reopened = WriteAheadLog(tmp_path)
        assert payloads(reopened) == [(0, b"kept")]
    assert "ignoring" in caplog.text
    reopened.close()
