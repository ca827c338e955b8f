"""Index files and the in-memory index."""

from __future__ import annotations

import pytest
import zstandard

from dcops.backup.codec import BlobType
from dcops.backup.crypto import MasterKey
from dcops.backup.index import INDEX_AAD, BadIndex, Index, Location, decode_index, encode_index
from dcops.backup.pack import PackEntry

MASTER = MasterKey(b"\x03" * 32)


def entries(*ids: int, btype: BlobType = BlobType.DATA) -> list[PackEntry]:
    return [PackEntry(btype, bytes([i]) * 32, n * 100, 100, 150 + i)
            for n, i in enumerate(ids)]


PACK_A, PACK_B = "aa" * 32, "bb" * 32


def test_index_file_round_trip() -> None:
    packs = [(PACK_A, entries(1, 2, 3)), (PACK_B, entries(4, btype=BlobType.TREE)),
             ("cc" * 32, [])]
    assert decode_index(MASTER, encode_index(MASTER, packs)) == packs


def test_damaged_or_foreign_index_is_bad_index() -> None:
    sealed = bytearray(encode_index(MASTER, [(PACK_A, entries(1))]))
    with pytest.raises(BadIndex, match="does not authenticate"):
        decode_index(MasterKey.generate(), bytes(sealed))
    sealed[-5] ^= 4
    with pytest.raises(BadIndex, match="does not authenticate"):
        decode_index(MASTER, bytes(sealed))


def test_index_that_authenticates_but_does_not_parse() -> None:
    truncated = MASTER.seal(zstandard.ZstdCompressor().compress(b"\x00" * 40), INDEX_AAD)
    with pytest.raises(BadIndex, match="does not parse"):
        decode_index(MASTER, truncated)
    not_zstd = MASTER.seal(b"plain bytes", INDEX_AAD)
    with pytest.raises(BadIndex, match="does not decompress"):
        decode_index(MASTER, not_zstd)


def test_lookup_and_stored_bytes() -> None:
    index = Index()
    index.add_pack(PACK_A, entries(1, 2))
    index.add_pack(PACK_B, entries(3))
    assert len(index) == 3
    assert bytes([2]) * 32 in index and bytes([9]) * 32 not in index
    assert index.get(bytes([2]) * 32) == Location(PACK_A, 100, 100, 152, BlobType.DATA)
    assert index.get(bytes([9]) * 32) is None
    assert index.stored_bytes() == 300
    assert dict(index)[bytes([3]) * 32].pack == PACK_B


def test_removing_a_pack_falls_back_to_a_duplicate() -> None:
    index = Index()
    index.add_pack(PACK_A, entries(1, 2))
    index.add_pack(PACK_B, entries(7, 2))  # blob 2 stored twice
    assert index.get(bytes([2]) * 32) == Location(PACK_A, 100, 100, 152, BlobType.DATA)
    index.remove_packs([PACK_A])
    assert bytes([1]) * 32 not in index
    assert index.get(bytes([2]) * 32) == Location(PACK_B, 100, 100, 152, BlobType.DATA)
    assert set(index.packs) == {PACK_B}
    index.remove_packs([PACK_B])
    assert len(index) == 0 and not index.packs
