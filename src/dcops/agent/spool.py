"""The agent's on-disk spool: pushes waiting for delivery, oldest first, bounded in bytes.

Every push is written here before it is sent and removed once the server has it, so a
server outage or an agent restart loses nothing. One file per push, named by its
sequence number (``00000000000000000042.json`` or ``.json.gz`` when compressed), written to
a temporary name and renamed into place so a crash never leaves half a push. When the
spool is over `max_bytes` the OLDEST pushes are dropped and counted.

``agent.json`` beside them keeps this agent's id and its next sequence number, so `seq`
keeps increasing across restarts and the server can recognise a push it already has.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcops.core.errors import Invalid

log = logging.getLogger(__name__)

STATE_FILE = "agent.json"
SUFFIXES = (".json", ".json.gz")


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One push waiting in the spool."""

    seq: int
    path: Path
    size: int

    @property
    def gzipped(self) -> bool:
        return self.path.name.endswith(".gz")

    def read(self) -> bytes:
        return self.path.read_bytes()


def write_atomic(path: Path, data: bytes, *, durable: bool) -> None:
    """Write `data` to `path` so readers see either the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def _seq_of(name: str) -> int | None:
    for suffix in SUFFIXES:
        stem = name.removesuffix(suffix)
        if stem != name and stem.isdigit():
            return int(stem)
    return None


class Spool:
    """A directory of pending pushes; not thread-safe (the agent loop is its only user)."""

    def __init__(self, directory: Path, max_bytes: int, *, node: str,
                 durable: bool = True) -> None:
        if max_bytes <= 0:
            raise Invalid(f"spool size must be positive, got {max_bytes} bytes",
                          where="agent.spool_max_mb")
        self.directory = directory
        self.max_bytes = max_bytes
        self.durable = durable
        self.dropped_total = 0
        """Pushes dropped because the spool was full, since this process started."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Invalid(f"cannot create spool directory: {exc.strerror}",
                          where=str(directory), hint="set agent.spool_dir") from None
        self._entries: deque[SpoolEntry] = deque(self._scan())
        self._bytes = sum(e.size for e in self._entries)
        state = self._load_state()
        last = self._entries[-1].seq + 1 if self._entries else 0
        self.agent_id: str = state.get("agent_id") or f"{node}-{secrets.token_hex(3)}"
        self._next_seq = max(int(state.get("next_seq", 0)), last)
        self._save_state()
        if self._entries:
            log.info("spool %s: %d pushes (%d bytes) waiting from before, seq %d..%d",
                     directory, len(self._entries), self._bytes, self._entries[0].seq,
                     self._entries[-1].seq)

    def _scan(self) -> list[SpoolEntry]:
        entries = []
        for path in self.directory.iterdir():
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a write cut short by a crash
                continue
            seq = _seq_of(path.name)
            if seq is not None:
                entries.append(SpoolEntry(seq, path, path.stat().st_size))
        return sorted(entries, key=lambda e: e.seq)

    def _load_state(self) -> dict[str, Any]:
        path = self.directory / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("spool %s: %s unreadable (%s); starting a new agent id", self.directory,
                        STATE_FILE, exc)
            return {}
        return state if isinstance(state, dict) else {}

    def _save_state(self) -> None:
        data = json.dumps({"agent_id": self.agent_id, "next_seq": self._next_seq}).encode()
        write_atomic(self.directory / STATE_FILE, data, durable=self.durable)

    def next_seq(self) -> int:
        """Allocate the next sequence number; it is persisted before it is handed out."""
        seq = self._next_seq
        self._next_seq += 1
        self._save_state()
        return seq

    def append(self, seq: int, payload: bytes, *, gzipped: bool) -> int:
        """Store one push; drop the oldest ones if over the bound. Returns how many dropped."""
        path = self.directory / f"{seq:020d}{'.json.gz' if gzipped else '.json'}"
        dropped: list[SpoolEntry] = []
        while self._entries and self._bytes + len(payload) > self.max_bytes:
            oldest = self._entries.popleft()
            oldest.path.unlink(missing_ok=True)
            self._bytes -= oldest.size
            dropped.append(oldest)
        write_atomic(path, payload, durable=self.durable)
        self._entries.append(SpoolEntry(seq, path, len(payload)))
        self._bytes += len(payload)
        if dropped:
            self.dropped_total += len(dropped)
            log.warning("spool %s full (%d bytes max): dropped %d oldest pushes, seq %d..%d",
                        self.directory, self.max_bytes, len(dropped), dropped[0].seq,
                        dropped[-1].seq)
        return len(dropped)

    def peek(self) -> SpoolEntry | None:
        """The oldest pending push, or None when the spool is empty."""
        return self._entries[0] if self._entries else None

    def remove(self, entry: SpoolEntry) -> None:
        """Forget a push once delivered (or rejected for good)."""
        if self._entries and self._entries[0] == entry:
            self._entries.popleft()
        else:
            try:
                self._entries.remove(entry)
            except ValueError:
                return
        self._bytes -= entry.size
        entry.path.unlink(missing_ok=True)

    def entries(self) -> list[SpoolEntry]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes
