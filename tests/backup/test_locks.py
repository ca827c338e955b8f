"""Locks: backups share a repository, exclusive work has it alone, dead holders' locks
go stale."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from dcops.backup import locks
from dcops.backup.errors import Locked
from dcops.backup.locks import LOCK_AAD, STALE_S, hold, remove_stale
from dcops.backup.repository import Repository


def leftover_lock(repo: Repository, age_s: float, *, exclusive: bool) -> str:
    """A lock file as a process that died `age_s` ago left it."""
    body = {"exclusive": exclusive, "host": "gpu-node-7", "pid": 4242, "user": "trainer",
            "time_s": time.time() - age_s, "operation": "prune"}
    name = "ab" * 32
    repo.storage.save("locks", name, repo.master.seal(json.dumps(body).encode(), LOCK_AAD))
    return name


def test_shared_locks_coexist_and_are_removed(memory_repo: Repository) -> None:
    storage, master = memory_repo.storage, memory_repo.master
    with (hold(storage, master, exclusive=False, operation="backup"),
          hold(storage, master, exclusive=False, operation="backup")):
        held = locks.locks(storage, master)
        assert len(held) == 2 and not any(lock.exclusive for lock in held)
    assert list(storage.list("locks")) == []


def test_exclusive_conflicts_name_the_holder(memory_repo: Repository) -> None:
    storage, master = memory_repo.storage, memory_repo.master
    with hold(storage, master, exclusive=False, operation="backup"):
        with (pytest.raises(Locked) as caught,
              hold(storage, master, exclusive=True, operation="prune")):
            pass
        assert "shared lock" in str(caught.value) and "'backup'" in str(caught.value)
        assert "pid" in str(caught.value) and caught.value.hint is not None
        assert len(list(storage.list("locks"))) == 1  # the refused lock is not left behind
    with (hold(storage, master, exclusive=True, operation="prune"),
          pytest.raises(Locked, match=r"exclusive lock .* for 'prune'"),
          hold(storage, master, exclusive=False, operation="backup")):
        pass


def test_a_dead_holders_lock_is_stale(memory_repo: Repository) -> None:
    storage, master = memory_repo.storage, memory_repo.master
    fresh = leftover_lock(memory_repo, 60, exclusive=True)
    with (pytest.raises(Locked, match="trainer@gpu-node-7 pid 4242"),
          hold(storage, master, exclusive=False, operation="backup")):
        pass
    assert remove_stale(storage, master) == 0
    storage.remove("locks", fresh)
    leftover_lock(memory_repo, STALE_S + 60, exclusive=True)
    with hold(storage, master, exclusive=True, operation="prune"):
        assert len(locks.locks(storage, master)) == 2  # ignored, not yet removed
    assert remove_stale(storage, master) == 1
    assert list(storage.list("locks")) == []


def test_a_lock_goes_stale_when_time_passes(memory_repo: Repository,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    storage, master = memory_repo.storage, memory_repo.master
    with hold(storage, master, exclusive=False, operation="backup"):
        later = time.time() + STALE_S + 1
        monkeypatch.setattr(locks, "time", SimpleNamespace(time=lambda: later))
        with hold(storage, master, exclusive=True, operation="prune"):  # its holder died
            pass
        assert remove_stale(storage, master) == 1
        monkeypatch.undo()
    assert remove_stale(storage, master, all_locks=True) == 0


def test_unreadable_lock_files_are_ignored(memory_repo: Repository) -> None:
    memory_repo.storage.save("locks", "cd" * 32, b"garbage")
    with hold(memory_repo.storage, memory_repo.master, exclusive=True, operation="prune"):
        assert [lock.operation for lock in locks.locks(memory_repo.storage,
                                                       memory_repo.master)] == ["prune"]
