"""Locks, as restic has them: a file in ``locks/`` saying who works on the repository and
until when. Backups share the repository; `forget`, `prune` and key removal need it alone.
A lock is refreshed while its holder works and counts as stale once it has not been
refreshed for `STALE_S` (its holder died), so a crash never locks a repository for good.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dcops.backup.crypto import MasterKey, Unsealed
from dcops.backup.errors import Locked, MissingFile
from dcops.backup.storage import Storage

log = logging.getLogger(__name__)

LOCK_AAD = b"lock"
STALE_S = 30 * 60.0
REFRESH_S = 5 * 60.0


@dataclass(frozen=True)
class LockInfo:
    """One lock file's contents."""

    name: str
    exclusive: bool
    host: str
    pid: int
    user: str
    time_s: float
    operation: str

    def stale(self, now_s: float) -> bool:
        return now_s - self.time_s > STALE_S

    def describe(self) -> str:
        age = time.time() - self.time_s
        kind = "exclusive" if self.exclusive else "shared"
        return (f"{kind} lock {self.name[:8]} for {self.operation!r} by {self.user}@{self.host} "
                f"pid {self.pid}, refreshed {age:.0f} s ago")


def _read(storage: Storage, master: MasterKey, name: str) -> LockInfo | None:
    try:
        body: dict[str, Any] = json.loads(master.open(storage.load("locks", name), LOCK_AAD))
        return LockInfo(name, bool(body["exclusive"]), str(body["host"]), int(body["pid"]),
                        str(body["user"]), float(body["time_s"]), str(body["operation"]))
    except MissingFile:
        return None
    except (Unsealed, ValueError, KeyError, TypeError):
        log.warning("lock file %s does not read; ignored", name)
        return None


def locks(storage: Storage, master: MasterKey) -> list[LockInfo]:
    found = (_read(storage, master, name) for name, _ in storage.list("locks"))
    return [lock for lock in found if lock is not None]


def remove_stale(storage: Storage, master: MasterKey, *, all_locks: bool = False) -> int:
    """Remove stale locks (or every lock, with `all_locks`); returns how many."""
    now = time.time()
    gone = [lock for lock in locks(storage, master) if all_locks or lock.stale(now)]
    for lock in gone:
        storage.remove("locks", lock.name)
    return len(gone)


@contextmanager
def hold(storage: Storage, master: MasterKey, *, exclusive: bool,
         operation: str) -> Iterator[None]:
    """Take a lock for the duration of the block; `Locked` if a live lock conflicts."""
    name = secrets.token_hex(32)

    def write() -> None:
        body = {"exclusive": exclusive, "host": socket.gethostname(), "pid": os.getpid(),
                "user": getpass.getuser(), "time_s": time.time(), "operation": operation}
        storage.save("locks", name, master.seal(json.dumps(body).encode(), LOCK_AAD))

    write()
    now = time.time()
    conflicts = [lock for lock in locks(storage, master)
                 if lock.name != name and not lock.stale(now)
                 and (exclusive or lock.exclusive)]
    if conflicts:
        storage.remove("locks", name)
        raise Locked(f"{storage.location} is locked: {conflicts[0].describe()}",
                     hint="wait for it to finish; `dcops backup unlock` removes locks whose "
                          "holder is gone")
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(REFRESH_S):
            try:
                write()
            except Exception:  # the next refresh tries again
                log.exception("refreshing lock %s failed", name[:8])

    refresher = threading.Thread(target=refresh, name="backup-lock", daemon=True)
    refresher.start()
    try:
        yield
    finally:
        stop.set()
        refresher.join()
        storage.remove("locks", name)
