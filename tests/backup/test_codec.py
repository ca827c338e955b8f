"""Blobs: shuffled, compressed when that pays, sealed and bound to their name and type."""

from __future__ import annotations

import numpy as np
import pytest

from dcops.backup import codec
from dcops.backup.codec import RAW, ZSTD, BadBlob, BlobType, decode, encode, shuffle, unshuffle
from dcops.backup.crypto import MasterKey
from tests.backup.conftest import noise

MASTER = MasterKey(b"\x07" * 32)


def weights(n: int) -> bytes:
    """`n` float32 weights, as a trained layer looks: small values around zero."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal(n) * 0.02).astype(np.float32).tobytes()


def plain_of(sealed: bytes, blob_id: bytes, btype: BlobType = BlobType.DATA) -> bytes:
    return MASTER.open(sealed, codec.aad(btype, blob_id))


@pytest.mark.parametrize("stride", [0, 2, 4, 8])
@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 1001, 4096, 40_003])
def test_round_trip_every_stride_and_length(stride: int, length: int) -> None:
    data = weights(length // 4 + 1)[:length]
    blob_id = MASTER.chunk_id(data)
    sealed, _ = encode(MASTER, data, blob_id, BlobType.DATA, stride=stride)
    assert decode(MASTER, sealed, blob_id, BlobType.DATA) == data


@pytest.mark.parametrize("stride", [2, 4, 8])
@pytest.mark.parametrize("length", [0, 1, 5, 17, 1003])
def test_shuffle_inverts_with_a_ragged_tail(stride: int, length: int) -> None:
    data = noise(length, length)
    shuffled = shuffle(data, stride)
    assert len(shuffled) == length
    assert unshuffle(shuffled, stride) == data
    if length % stride:
        assert shuffled.endswith(data[length - length % stride:])


def test_shuffle_groups_bytes_by_position() -> None:
    assert shuffle(b"abcdefgh", 4) == b"aebfcgdh"
    assert shuffle(b"abcdefghi", 2) == b"acegbdfhi"


def test_weights_compress_and_shuffling_helps() -> None:
    data = weights(20_000)
    blob_id = MASTER.chunk_id(data)
    plain, shuffled = (encode(MASTER, data, blob_id, BlobType.DATA, stride=s) for s in (0, 4))
    assert shuffled[1] and plain_of(shuffled[0], blob_id)[:2] == bytes([ZSTD, 4])
    assert len(shuffled[0]) < len(plain[0]) < len(data)


def test_incompressible_data_is_stored_raw() -> None:
    data = noise(30_000, 3)
    blob_id = MASTER.chunk_id(data)
    for stride in (0, 4):
        sealed, compressed = encode(MASTER, data, blob_id, BlobType.DATA, stride=stride)
        assert not compressed
        assert plain_of(sealed, blob_id) == bytes([RAW, 0]) + data  # raw and unshuffled
        assert decode(MASTER, sealed, blob_id, BlobType.DATA) == data


def test_level_zero_stores_raw() -> None:
    data = b"a" * 10_000
    blob_id = MASTER.chunk_id(data)
    sealed, compressed = encode(MASTER, data, blob_id, BlobType.TREE, level=0)
    assert not compressed and len(plain_of(sealed, blob_id, BlobType.TREE)) == 10_002
    assert decode(MASTER, sealed, blob_id, BlobType.TREE) == data


def test_every_flipped_byte_is_bad_blob() -> None:
    data = b"checkpoint " * 300
    blob_id = MASTER.chunk_id(data)
    sealed, compressed = encode(MASTER, data, blob_id, BlobType.DATA)
    assert compressed
    for at in range(0, len(sealed), 7):
        flipped = bytearray(sealed)
        flipped[at] ^= 0x01
        with pytest.raises(BadBlob, match="does not authenticate"):
            decode(MASTER, bytes(flipped), blob_id, BlobType.DATA)
    with pytest.raises(BadBlob):
        decode(MASTER, sealed[:-1], blob_id, BlobType.DATA)


def test_wrong_id_or_type_or_key_is_bad_blob() -> None:
    data = b"layer.0.weight" * 100
    blob_id = MASTER.chunk_id(data)
    sealed, _ = encode(MASTER, data, blob_id, BlobType.DATA)
    with pytest.raises(BadBlob):
        decode(MASTER, sealed, MASTER.chunk_id(b"other"), BlobType.DATA)
    with pytest.raises(BadBlob):
        decode(MASTER, sealed, blob_id, BlobType.TREE)
    with pytest.raises(BadBlob):
        decode(MasterKey.generate(), sealed, blob_id, BlobType.DATA)


def test_sealed_under_a_wrong_name_does_not_hash_to_it() -> None:
    data = b"contents"
    wrong = MASTER.chunk_id(b"something else")
    sealed, _ = encode(MASTER, data, wrong, BlobType.DATA)  # authenticates, wrong name
    with pytest.raises(BadBlob, match="does not hash to its name"):
        decode(MASTER, sealed, wrong, BlobType.DATA)


def test_unknown_encoding_and_stride_are_refused() -> None:
    blob_id = MASTER.chunk_id(b"x")
    sealed = MASTER.seal(bytes([9, 0]) + b"x", codec.aad(BlobType.DATA, blob_id))
    with pytest.raises(BadBlob, match="unknown encoding"):
        decode(MASTER, sealed, blob_id, BlobType.DATA)
    with pytest.raises(ValueError, match="stride 3"):
        encode(MASTER, b"x", blob_id, BlobType.DATA, stride=3)
