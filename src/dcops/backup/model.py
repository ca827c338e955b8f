"""What a backup repository records: the files of a snapshot and the snapshot itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class NodeType(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"


@dataclass(frozen=True)
class FileEntry:
    """One file, directory or symbolic link as it was when backed up. `path` is absolute
    (as the backup was given it); `chunks` are the names of its contents' chunks, in
    order; `inode`, `ctime_ns` and `mtime_ns` tell the next backup whether it changed."""

    path: str
    type: NodeType
    mode: int
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    inode: int = 0
    uid: int = 0
    gid: int = 0
    chunks: tuple[bytes, ...] = ()
    target: str = ""  # where a symbolic link points

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"path": self.path, "type": self.type.value, "mode": self.mode,
                                "mtime_ns": self.mtime_ns, "uid": self.uid, "gid": self.gid}
        if self.type is NodeType.FILE:
            body.update(size=self.size, ctime_ns=self.ctime_ns, inode=self.inode,
                        chunks=[c.hex() for c in self.chunks])
        elif self.type is NodeType.SYMLINK:
            body["target"] = self.target
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FileEntry:
        return cls(path=str(body["path"]), type=NodeType(body["type"]), mode=int(body["mode"]),
                   size=int(body.get("size", 0)), mtime_ns=int(body.get("mtime_ns", 0)),
                   ctime_ns=int(body.get("ctime_ns", 0)), inode=int(body.get("inode", 0)),
                   uid=int(body.get("uid", 0)), gid=int(body.get("gid", 0)),
                   chunks=tuple(bytes.fromhex(c) for c in body.get("chunks", ())),
                   target=str(body.get("target", "")))


@dataclass(frozen=True)
class Summary:
    """What one backup did."""

    files: int = 0
    dirs: int = 0
    bytes: int = 0  # logical size of the files in the snapshot
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    bytes_read: int = 0  # read from disk (unchanged files are not read)
    bytes_added: int = 0  # new chunks, before compression
    bytes_stored: int = 0  # new chunks as stored: compressed and sealed
    blobs_added: int = 0
    packs_written: int = 0
    seconds: float = 0.0
    errors: tuple[str, ...] = ()  # files that could not be read

    def to_json(self) -> dict[str, Any]:
        body = dict(self.__dict__)
        body["errors"] = list(self.errors)
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Summary:
        known = {k: body[k] for k in cls.__dataclass_fields__ if k in body}
        known["errors"] = tuple(known.get("errors", ()))
        return cls(**known)


@dataclass(frozen=True)
class Snapshot:
    """One backup: when, of what, from where, and the tree blobs that list its files."""

    id: str
    time: datetime
    host: str
    user: str
    paths: tuple[str, ...]
    tags: tuple[str, ...] = ()
    parent: str | None = None
    tree: tuple[bytes, ...] = ()
    summary: Summary = field(default_factory=Summary)

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "time": self.time.isoformat(), "host": self.host,
                "user": self.user, "paths": list(self.paths), "tags": list(self.tags),
                "parent": self.parent, "tree": [t.hex() for t in self.tree],
                "summary": self.summary.to_json()}

    @classmethod
    def from_json(cls, snapshot_id: str, body: dict[str, Any]) -> Snapshot:
        return cls(id=snapshot_id, time=datetime.fromisoformat(body["time"]),
                   host=str(body["host"]), user=str(body.get("user", "")),
                   paths=tuple(body["paths"]), tags=tuple(body.get("tags", ())),
                   parent=body.get("parent"),
                   tree=tuple(bytes.fromhex(t) for t in body.get("tree", ())),
                   summary=Summary.from_json(body.get("summary", {})))

    def describe(self) -> dict[str, Any]:
        """What `backup snapshots --json` and the API show."""
        return {"id": self.id, "short_id": self.short_id, "time": self.time.isoformat(),
                "host": self.host, "user": self.user, "paths": list(self.paths),
                "tags": list(self.tags), "parent": self.parent,
                "summary": self.summary.to_json()}
