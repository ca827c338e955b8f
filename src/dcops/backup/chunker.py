"""Cutting a file into chunks: FastCDC (content-defined, so an insertion shifts no other
chunk), within regions that follow the file's own structure where it has one.

A safetensors checkpoint is an 8-byte header length, a JSON header, then each tensor's
bytes at the offsets the header gives. Each tensor is its own region, so a tensor rewritten
whole changes only its own chunks (and a changed header only the header's), and the
region's dtype says how to byte-shuffle its chunks before compression (4 for float32,
2 for float16 and bfloat16, 8 for float64). Other files are one region.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pyfastcdc

from dcops.backup.config import RepoConfig

STRIDE_OF = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
             "U64": 8, "U32": 4, "U16": 2}
MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class Region:
    """A byte range of a file, chunked on its own; `stride` is its element size for
    byte shuffling (0: none)."""

    start: int
    end: int
    stride: int = 0


def safetensors_regions(head: bytes, size: int) -> list[Region] | None:
    """Regions of a safetensors file from its first bytes (at least the header), or None
    if it is not one."""
    if size < 8 or len(head) < 8:
        return None
    (length,) = struct.unpack("<Q", head[:8])
    if length > MAX_HEADER or 8 + length > size or len(head) < 8 + length:
        return None
    try:
        header = json.loads(head[8:8 + length])
        tensors = [(int(t["data_offsets"][0]), int(t["data_offsets"][1]), str(t["dtype"]))
                   for name, t in header.items() if name != "__metadata__"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    base = 8 + length
    regions = [Region(0, base)]
    at = base
    for begin, end, dtype in sorted(tensors):
        begin, end = base + begin, base + end
        if begin < at or end > size or end < begin:
            return None  # overlapping or out of range: not a layout to trust
        if begin > at:
            regions.append(Region(at, begin))
        if end > begin:
            regions.append(Region(begin, end, STRIDE_OF.get(dtype, 0)))
        at = end
    if at < size:
        regions.append(Region(at, size))
    return regions


def header_bytes_needed(first8: bytes) -> int:
    """How much of the file's start `safetensors_regions` wants, from its first 8 bytes."""
    if len(first8) < 8:
        return 0
    (length,) = struct.unpack("<Q", first8[:8])
    return 8 + int(length) if length <= MAX_HEADER else 0


class Chunker:
    """Cuts buffers into chunks with a repository's parameters."""

    def __init__(self, config: RepoConfig) -> None:
        self._cdc = pyfastcdc.FastCDC(config.chunk_avg - config.chunk_min,
                                      min_size=config.chunk_min, max_size=config.chunk_max,
                                      seed=config.gear_seed)
        self.min_size = config.chunk_min
        self.max_size = config.chunk_max

    def cut(self, buf: memoryview, region: Region) -> Iterator[tuple[int, int]]:
        """(offset, length) of each chunk of `region` of `buf` (offsets into `buf`)."""
        if region.end - region.start <= self.min_size:
            if region.end > region.start:
                yield region.start, region.end - region.start
            return
        for chunk in self._cdc.cut_buf(buf[region.start:region.end]):
            yield region.start + chunk.offset, chunk.length
