"""How files are known to have changed: path, modification time and size of each."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

Signature = tuple[tuple[str, int, int], ...]


def stat_signature(files: Iterable[Path]) -> Signature:
    """(path, mtime ns, size) of each file that exists; equal signatures, unchanged files."""
    out = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(out)
