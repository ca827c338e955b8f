"""Chunking: safetensors tensors are regions of their own; boundaries do not depend on
how a file is read; a changed tensor changes only its own chunks."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import numpy as np
import pytest

from dcops.backup import archiver
from dcops.backup.archiver import Archiver, backup
from dcops.backup.chunker import Chunker, Region, header_bytes_needed, safetensors_regions
from dcops.backup.repository import Repository
from tests.backup.conftest import WORKERS, noise, small_config, write_safetensors


def checkpoint(path: Path, seed: int = 0) -> dict[str, tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return write_safetensors(path, {
        "embed.weight": rng.standard_normal((64, 256)).astype(np.float32),    # 64 KiB
        "layer.0.weight": rng.standard_normal((128, 256)).astype(np.float16),  # 64 KiB
        "layer.0.bias": rng.standard_normal(16).astype(np.float64),
        "steps": np.arange(4, dtype=np.int64),
    }, metadata={"format": "pt"})


def test_safetensors_regions_follow_the_tensors(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    spans = checkpoint(path)
    data = path.read_bytes()
    regions = safetensors_regions(data, len(data))
    assert regions is not None
    (length,) = struct.unpack("<Q", data[:8])
    assert header_bytes_needed(data[:8]) == 8 + length
    assert regions[0] == Region(0, 8 + length)
    strides = {"embed.weight": 4, "layer.0.weight": 2, "layer.0.bias": 8, "steps": 8}
    assert regions[1:] == sorted((Region(s, e, strides[n]) for n, (s, e) in spans.items()),
                                 key=lambda r: r.start)
    assert regions[-1].end == len(data)


def test_trailing_bytes_after_the_tensors_are_a_region(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    checkpoint(path)
    data = path.read_bytes() + b"trailer"
    regions = safetensors_regions(data, len(data))
    assert regions is not None and regions[-1] == Region(len(data) - 7, len(data))


@pytest.mark.parametrize("mangle", ["json", "length", "offsets", "overlap", "short"])
def test_malformed_header_is_not_safetensors(tmp_path: Path, mangle: str) -> None:
    path = tmp_path / "model.safetensors"
    spans = checkpoint(path)
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    if mangle == "json":
        data[8] = ord("[")
    elif mangle == "length":
        data[:8] = struct.pack("<Q", len(data) + 1)
    elif mangle == "offsets":
        data[8:8 + length] = data[8:8 + length].replace(
            str(spans["steps"][1] - 8 - length).encode(), b"9" * 9, 1)
    elif mangle == "overlap":
        start = str(spans["layer.0.bias"][0] - 8 - length).encode()
        data[8:8 + length] = data[8:8 + length].replace(b"[" + start, b"[" + b"0".rjust(
            len(start)), 1)
    else:
        data = data[:6]
    assert safetensors_regions(bytes(data), len(data)) is None


def test_malformed_checkpoint_is_backed_up_as_one_region(tmp_path: Path,
                                                         memory_repo: Repository) -> None:
    src = tmp_path / "src"
    src.mkdir()
    blob = noise(150_000, 5)
    (src / "bad.safetensors").write_bytes(struct.pack("<Q", 40) + b"{not json" + blob)
    snap = backup(memory_repo, [src], workers=WORKERS)
    (entry,) = [e for e in memory_repo.load_tree(snap) if e.path.endswith("bad.safetensors")]
    data = (src / "bad.safetensors").read_bytes()
    cuts = list(Chunker(memory_repo.config).cut(memoryview(data), Region(0, len(data))))
    assert [memory_repo.master.chunk_id(data[o:o + n]) for o, n in cuts] == list(entry.chunks)


def test_chunks_within_bounds_and_cover_the_region() -> None:
    config = small_config()
    data = memoryview(noise(300_000, 6))
    cuts = list(Chunker(config).cut(data, Region(1000, 290_000)))
    assert cuts[0][0] == 1000 and sum(n for _, n in cuts) == 289_000
    assert all(config.chunk_min <= n <= config.chunk_max for _, n in cuts[:-1])
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(cuts))
    assert list(Chunker(config).cut(data, Region(5, 105))) == [(5, 100)]
    assert list(Chunker(config).cut(data, Region(5, 5))) == []


def chunks_of(repo: Repository, path: Path) -> tuple[bytes, ...]:
    archive = Archiver(repo, workers=WORKERS)
    try:
        return tuple(archive._read_file(str(path), path.stat().st_size))
    finally:
        archive._pool.shutdown(wait=True)


@pytest.mark.parametrize("kind", ["plain", "safetensors"])
def test_boundaries_do_not_depend_on_the_read_size(tmp_path: Path, memory_repo: Repository,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   kind: str) -> None:
    path = tmp_path / "file"
    if kind == "plain":
        path.write_bytes(noise(700_000, 7))
    else:
        checkpoint(path)
    whole = chunks_of(memory_repo, path)
    assert len(whole) > 2
    for block in (65_536, 70_001, 100_000):
        monkeypatch.setattr(archiver, "BLOCK", block)
        assert chunks_of(memory_repo, path) == whole


def test_changing_one_tensor_adds_only_its_bytes(tmp_path: Path,
                                                  memory_repo: Repository) -> None:
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(1)
    tensors = {f"layer.{i}.weight": rng.standard_normal((64, 160)).astype(np.float32)
               for i in range(4)}  # 40 KiB each
    write_safetensors(src / "model.safetensors", tensors)
    first = backup(memory_repo, [src], workers=WORKERS)
    assert first.summary.bytes_added == (src / "model.safetensors").stat().st_size
    tensors["layer.2.weight"] = rng.standard_normal((64, 160)).astype(np.float32)
    write_safetensors(src / "model.safetensors", tensors)
    second = backup(memory_repo, [src], workers=WORKERS)
    assert second.summary.files_changed == 1
    assert second.summary.bytes_added == tensors["layer.2.weight"].nbytes


def test_a_block_no_larger_than_the_largest_chunk(tmp_path: Path, memory_repo: Repository,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Zeros have no content boundary: every chunk is the largest, and with a read block
    of exactly that size each buffer holds one whole chunk (this once raised IndexError)."""
    path = tmp_path / "zeros"
    path.write_bytes(bytes(300_000) + noise(100_000, 8))
    whole = chunks_of(memory_repo, path)
    monkeypatch.setattr(archiver, "BLOCK", memory_repo.config.chunk_max)
    assert chunks_of(memory_repo, path) == whole
    assert whole[0] == memory_repo.master.chunk_id(bytes(memory_repo.config.chunk_max))
