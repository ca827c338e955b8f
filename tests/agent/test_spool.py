"""The agent spool: ordered, bounded (oldest dropped), atomic, and surviving restarts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from dcops.agent.spool import Spool
from dcops.core.errors import Invalid


def fill(spool: Spool, count: int, size: int = 100) -> list[int]:
    seqs = []
    for _ in range(count):
        seq = spool.next_seq()
        spool.append(seq, b"x" * size, gzipped=False)
        seqs.append(seq)
    return seqs


def test_entries_come_back_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 10_000, node="n1", durable=False)
    assert fill(spool, 3) == [0, 1, 2]
    spool.append(spool.next_seq(), b'{"a":1}', gzipped=True)
    assert [e.seq for e in spool.entries()] == [0, 1, 2, 3]
    first = spool.peek()
    assert first is not None and first.seq == 0 and first.read() == b"x" * 100
    spool.remove(first)
    assert [e.seq for e in spool.entries()] == [1, 2, 3]
    assert spool.entries()[-1].gzipped and spool.entries()[-1].path.name.endswith(".json.gz")
    assert len(spool) == 3 and spool.bytes == 207
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_full_spool_drops_the_oldest_and_counts_them(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, 1000, node="n1", durable=False)
    fill(spool, 10)
    assert spool.dropped_total == 0
    with caplog.at_level(logging.WARNING, logger="dcops.agent.spool"):
        fill(spool, 3)
    assert [e.seq for e in spool.entries()] == list(range(3, 13))
    assert spool.dropped_total == 3
    assert spool.bytes == 1000
    assert len(list(tmp_path.glob("0*.json"))) == 10
    assert "dropped 1 oldest pushes, seq 0..0" in caplog.records[0].getMessage()


def test_one_push_larger_than_the_bound_is_still_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 500, node="n1", durable=False)
    fill(spool, 2)
    fill(spool, 1, size=800)
    assert [e.seq for e in spool.entries()] == [2]
    assert spool.dropped_total == 2


def test_spool_and_sequence_survive_a_restart(tmp_path: Path) -> None:
    first = Spool(tmp_path, 10_000, node="n1")
    fill(first, 4)
    entry = first.peek()
    assert entry is not None
    first.remove(entry)
    second = Spool(tmp_path, 10_000, node="n1")
    assert second.agent_id == first.agent_id and second.agent_id.startswith("n1-")
    assert [e.seq for e in second.entries()] == [1, 2, 3]
    assert second.bytes == 300
    assert second.next_seq() == 4


def test_sequence_keeps_increasing_when_everything_was_delivered(tmp_path: Path) -> None:
    first = Spool(tmp_path, 10_000, node="n1")
    fill(first, 5)
    while (entry := first.peek()) is not None:
        first.remove(entry)
    assert Spool(tmp_path, 10_000, node="n1").next_seq() == 5


def test_sequence_follows_the_files_if_the_state_file_is_lost(tmp_path: Path) -> None:
    first = Spool(tmp_path, 10_000, node="n1")
    fill(first, 3)
    (tmp_path / "agent.json").write_text("{not json")
    (tmp_path / ".00000000000000000003.json.tmp").write_bytes(b"half a pu")
    second = Spool(tmp_path, 10_000, node="n1")
    assert second.next_seq() == 3
    assert not list(tmp_path.glob(".*.tmp"))
    assert json.loads((tmp_path / "agent.json").read_text())["next_seq"] == 4


def test_bound_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match=r"agent\.spool_max_mb"):
        Spool(tmp_path, 0, node="n1")
