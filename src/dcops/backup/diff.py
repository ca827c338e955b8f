"""What changed between two snapshots, as `restic diff` shows it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dcops.backup.model import FileEntry, NodeType


@dataclass
class Diff:
    """Paths added, removed and modified (contents or metadata), and the bytes of file
    contents that differ."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    bytes_added: int = 0
    bytes_removed: int = 0

    def to_json(self) -> dict[str, object]:
        return {"added": self.added, "removed": self.removed, "modified": self.modified,
                "bytes_added": self.bytes_added, "bytes_removed": self.bytes_removed}

    def lines(self) -> list[str]:
        tagged = ([("+", p) for p in self.added] + [("-", p) for p in self.removed]
                  + [("M", p) for p in self.modified])
        return [f"{tag}    {path}" for tag, path in sorted(tagged, key=lambda t: t[1])]


def _same(a: FileEntry, b: FileEntry) -> bool:
    if a.type is not b.type or a.mode != b.mode:
        return False
    if a.type is NodeType.FILE:
        return a.chunks == b.chunks
    if a.type is NodeType.SYMLINK:
        return a.target == b.target
    return True


def diff(before: Iterable[FileEntry], after: Iterable[FileEntry],
         chunk_size: Callable[[bytes], int]) -> Diff:
    """`chunk_size` gives a chunk's length (from the index), to count changed bytes."""
    old = {e.path: e for e in before}
    new = {e.path: e for e in after}
    result = Diff()
    for path in sorted(new.keys() - old.keys()):
        result.added.append(path)
        result.bytes_added += new[path].size
    for path in sorted(old.keys() - new.keys()):
        result.removed.append(path)
        result.bytes_removed += old[path].size
    for path in sorted(old.keys() & new.keys()):
        a, b = old[path], new[path]
        if not _same(a, b):
            result.modified.append(path)
            result.bytes_removed += sum(map(chunk_size, set(a.chunks) - set(b.chunks)))
            result.bytes_added += sum(map(chunk_size, set(b.chunks) - set(a.chunks)))
    return result
