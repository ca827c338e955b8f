"""The index: which pack holds each blob, and where in it.

Index files are sealed, zstd-compressed binary lists: per pack, its name, its number of
blobs, then per blob the pack entry (type, name, offset, stored and raw length). A backup
writes one as it goes (every few dozen packs) and one at the end, so that an interrupted
backup's packs are found by the next; packs missing from every index are read back from
their own headers (`Repository.recover`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import zstandard

from dcops.backup.codec import BlobType
from dcops.backup.crypto import MasterKey, Unsealed
from dcops.backup.pack import PackEntry

INDEX_AAD = b"index"
_PACK = struct.Struct("<32sI")
_BLOB = struct.Struct("<B32sIII")


class BadIndex(Exception):
    """An index file that does not authenticate or parse."""


class Location(NamedTuple):
    """Where one blob is."""

    pack: str
    offset: int
    length: int
    raw_length: int
    btype: BlobType


def encode_index(master: MasterKey, packs: Iterable[tuple[str, list[PackEntry]]]) -> bytes:
    parts: list[bytes] = []
    for name, entries in packs:
        parts.append(_PACK.pack(bytes.fromhex(name), len(entries)))
        parts.extend(_BLOB.pack(e.btype, e.blob_id, e.offset, e.length, e.raw_length)
                     for e in entries)
    return master.seal(zstandard.ZstdCompressor(level=3).compress(b"".join(parts)), INDEX_AAD)


def decode_index(master: MasterKey, sealed: bytes) -> list[tuple[str, list[PackEntry]]]:
    try:
        raw = zstandard.ZstdDecompressor().decompress(master.open(sealed, INDEX_AAD))
    except Unsealed as exc:
        raise BadIndex(f"does not authenticate ({exc})") from None
    except zstandard.ZstdError as exc:
        raise BadIndex(f"does not decompress ({exc})") from None
    packs: list[tuple[str, list[PackEntry]]] = []
    at = 0
    try:
        while at < len(raw):
            name, count = _PACK.unpack_from(raw, at)
            at += _PACK.size
            entries = []
            for _ in range(count):
                btype, blob_id, offset, length, raw_length = _BLOB.unpack_from(raw, at)
                at += _BLOB.size
                entries.append(PackEntry(BlobType(btype), blob_id, offset, length, raw_length))
            packs.append((name.hex(), entries))
    except (struct.error, ValueError) as exc:
        raise BadIndex(f"does not parse at byte {at} ({exc})") from None
    return packs


class Index:
    """Every blob the repository holds, by name."""

    def __init__(self) -> None:
        self._where: dict[bytes, Location] = {}
        self.packs: dict[str, list[PackEntry]] = {}

    def add_pack(self, name: str, entries: list[PackEntry]) -> None:
        self.packs[name] = entries
        for e in entries:
            self._where.setdefault(e.blob_id,
                                   Location(name, e.offset, e.length, e.raw_length, e.btype))

    def remove_packs(self, names: Iterable[str]) -> None:
        """Forget packs; a blob they held that another pack also holds is found there."""
        gone = set(names)
        for name in gone:
            self.packs.pop(name, None)
        orphaned = {b for b, loc in self._where.items() if loc.pack in gone}
        for blob_id in orphaned:
            del self._where[blob_id]
        if orphaned:
            for name, entries in self.packs.items():
                for e in entries:
                    if e.blob_id in orphaned and e.blob_id not in self._where:
                        self._where[e.blob_id] = Location(name, e.offset, e.length,
                                                          e.raw_length, e.btype)

    def __contains__(self, blob_id: object) -> bool:
        return blob_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    def get(self, blob_id: bytes) -> Location | None:
        return self._where.get(blob_id)

    def __iter__(self) -> Iterator[tuple[bytes, Location]]:
        return iter(self._where.items())

    def stored_bytes(self) -> int:
        return sum(loc.length for loc in self._where.values())
