"""A chunk as it is stored: byte-shuffled when it holds numbers, zstd-compressed when that
saves space, then sealed (AES-256-GCM) and bound to its name and type.

Byte shuffling puts the first byte of every float together, then the second, and so on:
the sign-and-exponent bytes of trained weights repeat a lot, the low mantissa bytes are
noise, and zstd compresses the former far better once they are adjacent (float32 weights:
0.84 of their size instead of 0.92, and faster).
"""

from __future__ import annotations

import threading
from enum import IntEnum

import numpy as np
import zstandard

from dcops.backup.crypto import MasterKey, Unsealed

RAW, ZSTD = 0, 1
STRIDES = (0, 2, 4, 8)
_local = threading.local()


class BlobType(IntEnum):
    """What a blob holds: file contents, or part of a snapshot's file list."""

    DATA = 0
    TREE = 1


class BadBlob(Exception):
    """A blob that does not authenticate, decode, or hash to its name."""


def aad(btype: BlobType, blob_id: bytes) -> bytes:
    return b"blob" + bytes([btype]) + blob_id


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "zc", None)
    if cache is None:
        cache = _local.zc = {}
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level)
    return cache[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    found: zstandard.ZstdDecompressor | None = getattr(_local, "zd", None)
    if found is None:
        found = _local.zd = zstandard.ZstdDecompressor()
    return found


def shuffle(data: bytes | memoryview, stride: int) -> bytes:
    whole = len(data) - len(data) % stride
    planes = np.frombuffer(data, dtype=np.uint8, count=whole).reshape(-1, stride).T.tobytes()
    return planes + bytes(memoryview(data)[whole:])


def unshuffle(data: bytes | memoryview, stride: int) -> bytes:
    """The inverse of `shuffle`: the planes put back together by shifting each into its
    byte of a little-endian integer (five times as fast as a transposed copy)."""
    n = len(data) // stride
    planes = np.frombuffer(data, dtype=np.uint8, count=n * stride).reshape(stride, n)
    kind = np.dtype(f"<u{stride}")
    values = planes[0].astype(kind)
    for k in range(1, stride):
        values |= planes[k].astype(kind) << kind.type(8 * k)
    out: bytes = values.tobytes()
    tail = memoryview(data)[n * stride:]
    return out + bytes(tail) if len(tail) else out


def encode(master: MasterKey, data: bytes | memoryview, blob_id: bytes, btype: BlobType,
           *, stride: int = 0, level: int = 1) -> tuple[bytes, bool]:
    """The sealed blob, and whether it was compressed."""
    if stride not in STRIDES:
        raise ValueError(f"shuffle stride {stride} is not one of {STRIDES}")
    source = shuffle(data, stride) if stride and len(data) >= stride else bytes(data)
    packed = _compressor(level).compress(source) if level > 0 else source
    if level > 0 and len(packed) < len(source) - len(source) // 64:
        plain = bytes([ZSTD, stride]) + packed
        compressed = True
    else:  # incompressible: stored as it came, unshuffled
        plain = bytes([RAW, 0]) + (source if not stride or len(data) < stride else bytes(data))
        compressed = False
    return master.seal(plain, aad(btype, blob_id)), compressed


def decode(master: MasterKey, sealed: bytes | memoryview, blob_id: bytes,
           btype: BlobType) -> bytes:
    """The chunk's bytes, authenticated and checked against its name; `BadBlob` if not."""
    try:
        plain = master.open(sealed, aad(btype, blob_id))
    except Unsealed as exc:
        raise BadBlob(f"blob {blob_id.hex()[:16]} does not authenticate ({exc})") from None
    if len(plain) < 2 or plain[0] not in (RAW, ZSTD) or plain[1] not in STRIDES:
        raise BadBlob(f"blob {blob_id.hex()[:16]} has an unknown encoding")
    codec, stride, body = plain[0], plain[1], memoryview(plain)[2:]
    try:
        data = _decompressor().decompress(body) if codec == ZSTD else bytes(body)
    except zstandard.ZstdError as exc:
        raise BadBlob(f"blob {blob_id.hex()[:16]} does not decompress: {exc}") from None
    if stride:
        data = unshuffle(data, stride)
    if master.chunk_id(data) != blob_id:
        raise BadBlob(f"blob {blob_id.hex()[:16]} does not hash to its name")
    return data
