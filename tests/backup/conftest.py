"""Shared pieces of the backup tests: a small, fast repository and trees of files."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcops.backends.backup_dir import DirectoryStorage
from dcops.backup.config import RepoConfig
from dcops.backup.keys import FAST, Credential
from dcops.backup.repository import Repository
from dcops.backup.storage import MemoryStorage, Storage
from dcops.core.secret import Secret

PASSWORD = Credential(password=Secret("correct horse"))
WORKERS = 2


def small_config() -> RepoConfig:
    """Chunks of 4-64 KiB and 1 MiB packs, so tests need only KB of data."""
    return RepoConfig(chunk_min=4096, chunk_avg=16384, chunk_max=65536, pack_size=1 << 20)


def make_repo(storage: Storage, credential: Credential = PASSWORD) -> Repository:
    return Repository.init(storage, credential, FAST, small_config())


@pytest.fixture
def memory_repo() -> Iterator[Repository]:
    repo = make_repo(MemoryStorage())
    try:
        yield repo
    finally:
        repo.close()


@pytest.fixture
def dir_storage(tmp_path: Path) -> DirectoryStorage:
    return DirectoryStorage(tmp_path / "repo")


@pytest.fixture
def dir_repo(dir_storage: DirectoryStorage) -> Iterator[Repository]:
    repo = make_repo(dir_storage)
    try:
        yield repo
    finally:
        repo.close()


def noise(n: int, seed: int) -> bytes:
    """`n` incompressible bytes, the same for the same seed."""
    import random
    return random.Random(seed).randbytes(n)


def write_tree(root: Path) -> dict[str, bytes]:
    """A small tree: nested dirs, a few files of noise (several chunks), a text file, an
    empty file, an empty dir and a symlink; returns the files' contents by relative path."""
    files = {
        "a/big.bin": noise(200_000, 1),
        "a/b/mid.bin": noise(50_000, 2),
        "a/b/c/text.txt": b"hello backup\n" * 2000,
        "small.txt": b"tiny",
        "empty": b"",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "a" / "empty-dir").mkdir()
    (root / "link").symlink_to("a/b/mid.bin")
    (root / "a" / "b" / "mid.bin").chmod(0o640)
    return files




@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "src"
    root.mkdir()
    return root, write_tree(root)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray[Any, Any]],
                      metadata: dict[str, str] | None = None) -> dict[str, tuple[int, int]]:
    """A safetensors file as the format defines it (8-byte header length, JSON header,
    tensor bytes); returns each tensor's (start, end) in the file."""
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
              np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    at = 0
    for name, array in tensors.items():
        header[name] = {"dtype": dtypes[array.dtype], "shape": list(array.shape),
                        "data_offsets": [at, at + array.nbytes]}
        at += array.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for array in tensors.values():
            f.write(array.tobytes())
    base = 8 + len(text)
    return {name: (base + t["data_offsets"][0], base + t["data_offsets"][1])
            for name, t in header.items() if name != "__metadata__"}
