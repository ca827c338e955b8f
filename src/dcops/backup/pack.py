"""Pack files: many sealed blobs in one file, with a sealed header at the end that lists
them, so that a pack can be read back into the index without any other file.

    blob 1 | blob 2 | ... | sealed header | header length (4 bytes, little-endian)

The header holds, per blob: its type, its name (32 bytes), its stored length and its
length before compression. A pack is named by the BLAKE3 hash of its bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dcops.backup.codec import BlobType
from dcops.backup.crypto import MasterKey, Unsealed, content_name

ENTRY = struct.Struct("<B32sII")
TRAILER = struct.Struct("<I")
HEADER_AAD = b"pack header"


class BadPack(Exception):
    """A pack whose header does not authenticate or parse."""


@dataclass(frozen=True)
class PackEntry:
    """Where one blob lies in its pack."""

    btype: BlobType
    blob_id: bytes
    offset: int
    length: int
    raw_length: int


class PackWriter:
    """Blobs gathered into one pack until it is big enough to store."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.entries: list[PackEntry] = []
        self.size = 0

    def add(self, btype: BlobType, blob_id: bytes, sealed: bytes, raw_length: int) -> None:
        self.entries.append(PackEntry(btype, blob_id, self.size, len(sealed), raw_length))
        self.parts.append(sealed)
        self.size += len(sealed)

    def __len__(self) -> int:
        return len(self.entries)

    def finish(self, master: MasterKey) -> tuple[str, bytes]:
        """The pack's name and bytes."""
        header = b"".join(ENTRY.pack(e.btype, e.blob_id, e.length, e.raw_length)
                          for e in self.entries)
        sealed = master.seal(header, HEADER_AAD)
        data = b"".join([*self.parts, sealed, TRAILER.pack(len(sealed))])
        return content_name(data), data


def header_span(pack_size: int, tail: bytes) -> int:
    """How many bytes at the end of a pack of `pack_size` bytes its header takes, given at
    least its last 4 bytes (`tail`)."""
    if pack_size < TRAILER.size or len(tail) < TRAILER.size:
        raise BadPack("too short to be a pack")
    (length,) = TRAILER.unpack(tail[-TRAILER.size:])
    if length + TRAILER.size > pack_size:
        raise BadPack(f"header length {length} is larger than the pack ({pack_size} bytes)")
    return int(length) + TRAILER.size


def read_header(master: MasterKey, pack_size: int, tail: bytes) -> list[PackEntry]:
    """The entries of a pack, from its last bytes (at least `header_span` of them)."""
    span = header_span(pack_size, tail)
    if len(tail) < span:
        raise BadPack("the bytes given do not hold the whole header")
    sealed = tail[len(tail) - span:len(tail) - TRAILER.size]
    try:
        header = master.open(sealed, HEADER_AAD)
    except Unsealed as exc:
        raise BadPack(f"header does not authenticate ({exc})") from None
    if len(header) % ENTRY.size:
        raise BadPack("header length is not a whole number of entries")
    entries, offset = [], 0
    for btype, blob_id, length, raw_length in ENTRY.iter_unpack(header):
        if btype not in (BlobType.DATA, BlobType.TREE):
            raise BadPack(f"unknown blob type {btype}")
        entries.append(PackEntry(BlobType(btype), blob_id, offset, length, raw_length))
        offset += length
    if offset != pack_size - span:
        raise BadPack(f"header lists {offset} bytes of blobs, the pack holds "
                      f"{pack_size - span}")
    return entries
