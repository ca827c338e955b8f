"""How far a long backup, restore or check has got, for progress bars and the API."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Progress:
    """Counts so far, and the totals when they are known. Updated by one operation's
    threads; read by whoever shows it."""

    operation: str
    files_total: int = 0
    bytes_total: int = 0
    files_done: int = 0
    bytes_done: int = 0
    errors: int = 0
    current: str = ""
    started_s: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, files: int = 0, nbytes: int = 0, errors: int = 0) -> None:
        with self._lock:
            self.files_done += files
            self.bytes_done += nbytes
            self.errors += errors

    def rate_bytes_s(self) -> float:
        elapsed = time.monotonic() - self.started_s
        return self.bytes_done / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        rate = self.rate_bytes_s()
        if rate <= 0 or not self.bytes_total:
            return None
        return max(0.0, (self.bytes_total - self.bytes_done) / rate)

    def snapshot(self) -> dict[str, object]:
        return {"operation": self.operation, "files_total": self.files_total,
                "files_done": self.files_done, "bytes_total": self.bytes_total,
                "bytes_done": self.bytes_done, "errors": self.errors, "current": self.current,
                "rate_bytes_s": round(self.rate_bytes_s()), "eta_s": self.eta_s()}


ProgressFn = Callable[[Progress], None]


class Throttled:
    """Shows `progress` through `show` at most every `every_s`, from any thread."""

    def __init__(self, show: ProgressFn, progress: Progress, every_s: float = 0.1) -> None:
        self.show_fn = show
        self.progress = progress
        self.every_s = every_s
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < self.every_s:
                return
            self._last = now
        self.show_fn(self.progress)


def quiet(_: Progress) -> None:
    """A progress callback that shows nothing."""
