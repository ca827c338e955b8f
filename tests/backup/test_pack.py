"""Packs: blobs then a sealed header, readable back from their last bytes alone."""

from __future__ import annotations

import pytest

from dcops.backup.codec import BlobType, decode, encode
from dcops.backup.crypto import MasterKey, content_name
from dcops.backup.pack import TRAILER, BadPack, PackWriter, header_span, read_header

MASTER = MasterKey(b"\x05" * 32)


def build(n: int) -> tuple[str, bytes, PackWriter, list[bytes]]:
    writer = PackWriter()
    datas = [f"blob {i} ".encode() * (i + 1) * 50 for i in range(n)]
    for i, data in enumerate(datas):
        blob_id = MASTER.chunk_id(data)
        btype = BlobType.TREE if i == 1 else BlobType.DATA
        sealed, _ = encode(MASTER, data, blob_id, btype)
        writer.add(btype, blob_id, sealed, len(data))
    name, pack = writer.finish(MASTER)
    return name, pack, writer, datas


def test_header_lists_every_blob_where_it_lies() -> None:
    name, pack, writer, datas = build(4)
    assert name == content_name(pack)
    assert len(writer) == 4
    entries = read_header(MASTER, len(pack), pack)
    assert entries == writer.entries
    assert [e.raw_length for e in entries] == [len(d) for d in datas]
    assert entries[1].btype is BlobType.TREE
    for entry, data in zip(entries, datas, strict=True):
        sealed = pack[entry.offset:entry.offset + entry.length]
        assert decode(MASTER, sealed, entry.blob_id, entry.btype) == data


def test_header_reads_from_the_tail_alone() -> None:
    _, pack, writer, _ = build(3)
    span = header_span(len(pack), pack[-TRAILER.size:])
    assert read_header(MASTER, len(pack), pack[-span:]) == writer.entries
    with pytest.raises(BadPack, match="do not hold the whole header"):
        read_header(MASTER, len(pack), pack[-span + 1:])


def test_empty_pack_has_an_empty_header() -> None:
    name, pack = PackWriter().finish(MASTER)
    assert read_header(MASTER, len(pack), pack) == []
    assert name == content_name(pack)


def test_damaged_header_trailer_and_truncation_are_bad_pack() -> None:
    _, pack, _, _ = build(3)
    flipped = bytearray(pack)
    flipped[-TRAILER.size - 3] ^= 1
    with pytest.raises(BadPack, match="does not authenticate"):
        read_header(MASTER, len(pack), bytes(flipped))
    huge = pack[:-TRAILER.size] + TRAILER.pack(len(pack))
    with pytest.raises(BadPack, match="larger than the pack"):
        read_header(MASTER, len(huge), huge)
    with pytest.raises(BadPack, match="too short"):
        header_span(3, b"abc")
    cut = pack[50:]  # blobs missing at the front: the header no longer adds up
    with pytest.raises(BadPack, match="header lists"):
        read_header(MASTER, len(cut), cut)
    with pytest.raises(BadPack):
        read_header(MasterKey.generate(), len(pack), pack)
