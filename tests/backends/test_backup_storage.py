"""One contract for every backup `Storage`: in memory, on a directory, on S3 (SeaweedFS)."""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dcops.backends.backup_dir import DirectoryStorage
from dcops.backends.backup_s3 import S3Storage, parse_s3_url
from dcops.backup.errors import MissingFile, StorageError, StorageFull
from dcops.backup.storage import MemoryStorage, Storage
from tests.fixtures.engines import free_port
from tests.fixtures.seaweedfs import SeaweedS3

DIGITS = b"0123456789"


def s3_storage(server: SeaweedS3, **options: Any) -> S3Storage:
    return S3Storage(server.endpoint_url, server.bucket, server.fresh_prefix(),
                     access_key=server.access_key, secret_key=server.secret_key, **options)


@pytest.fixture(params=["memory", "directory",
                        pytest.param("s3", marks=pytest.mark.engines)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    made: Storage
    if request.param == "memory":
        made = MemoryStorage()
    elif request.param == "directory":
        made = DirectoryStorage(tmp_path / "repo")
    else:
        made = s3_storage(request.getfixturevalue("seaweedfs_s3"))
    try:
        yield made
    finally:
        made.close()


def names(storage: Storage, kind: str) -> dict[str, int]:
    return dict(storage.list(kind))


def test_round_trip(storage: Storage) -> None:
    storage.save("keys", "k1", b"secret key")
    storage.save("config", "config", b"{}")
    assert storage.load("keys", "k1") == b"secret key"
    assert storage.load("config", "config") == b"{}"
    assert storage.size("keys", "k1") == 10


@pytest.mark.parametrize(("offset", "length", "expected"), [
    (0, None, DIGITS), (3, None, b"3456789"), (2, 3, b"234"), (0, 10, DIGITS),
    (8, 10, b"89"), (9, 1, b"9"), (10, None, b""), (10, 5, b""), (20, 5, b""), (4, 0, b""),
])
def test_load_range(storage: Storage, offset: int, length: int | None, expected: bytes) -> None:
    storage.save("data", "ab12", DIGITS)
    assert storage.load("data", "ab12", offset, length) == expected


def test_negative_range_is_rejected(storage: Storage) -> None:
    storage.save("data", "ab12", DIGITS)
    with pytest.raises(ValueError):
        storage.load("data", "ab12", -1)
    with pytest.raises(ValueError):
        storage.load("data", "ab12", 0, -1)


def test_list_per_kind(storage: Storage) -> None:
    storage.save("data", "aa01", b"1")
    storage.save("data", "aa02", b"22")
    storage.save("data", "bb01", b"333")
    storage.save("index", "aa01", b"4444")
    storage.save("keys", "k", b"55555")
    assert names(storage, "data") == {"aa01": 1, "aa02": 2, "bb01": 3}
    assert names(storage, "index") == {"aa01": 4}
    assert names(storage, "keys") == {"k": 5}
    assert names(storage, "snapshots") == {}
    assert names(storage, "config") == {}
    storage.save("config", "config", b"cfg")
    assert names(storage, "config") == {"config": 3}


def test_save_replaces(storage: Storage) -> None:
    storage.save("locks", "l1", b"first version")
    storage.save("locks", "l1", b"second")
    assert storage.load("locks", "l1") == b"second"
    assert names(storage, "locks") == {"l1": 6}


def test_remove_is_idempotent(storage: Storage) -> None:
    storage.save("snapshots", "s1", b"snap")
    storage.remove("snapshots", "s1")
    storage.remove("snapshots", "s1")
    storage.remove("snapshots", "never-there")
    assert names(storage, "snapshots") == {}
    with pytest.raises(MissingFile):
        storage.load("snapshots", "s1")


def test_missing_file(storage: Storage) -> None:
    storage.save("data", "ab01", b"other kind and name")
    for call in (lambda: storage.load("data", "ab02"), lambda: storage.load("data", "ab02", 3, 4),
                 lambda: storage.load("index", "ab01"), lambda: storage.size("data", "ab02"),
                 lambda: storage.load("data", "ab02", 0, 0)):
        with pytest.raises(MissingFile) as caught:
            call()
        assert caught.value.file_kind in ("data", "index")
        assert caught.value.name in ("ab01", "ab02")


@pytest.mark.parametrize("name", ["", "a/b", "..", ".", "../x", ".hidden", "a\x00b", "x" * 256,
                                  "a b", "ab\\c"])
def test_unsafe_names_are_rejected(storage: Storage, name: str) -> None:
    with pytest.raises(ValueError):
        storage.save("data", name, b"x")
    with pytest.raises(ValueError):
        storage.load("keys", name)
    with pytest.raises(ValueError):
        storage.remove("index", name)


def test_unknown_kind_and_config_name_are_rejected(storage: Storage) -> None:
    with pytest.raises(ValueError):
        storage.save("packs", "ab", b"x")
    with pytest.raises(ValueError):
        list(storage.list("packs"))
    with pytest.raises(ValueError):
        storage.save("config", "other", b"x")


def test_concurrent_saves_and_loads(storage: Storage) -> None:
    files = {f"{i:02x}{j:02x}": os.urandom(1000 + i * 37 + j) for i in range(8) for j in range(6)}

    def save_then_load(name: str) -> bytes:
        storage.save("data", name, files[name])
        return storage.load("data", name)

    with ThreadPoolExecutor(max_workers=8) as pool:
        loaded = dict(zip(files, pool.map(save_then_load, files), strict=True))
    assert loaded == files
    assert names(storage, "data") == {name: len(data) for name, data in files.items()}


def test_large_file(storage: Storage) -> None:
    data = random.Random(7).randbytes(20 << 20)
    storage.save("data", "ffee", data)
    assert storage.size("data", "ffee") == len(data)
    assert storage.load("data", "ffee") == data
    middle = 13 << 20
    assert storage.load("data", "ffee", middle, 1 << 20) == data[middle:middle + (1 << 20)]


def test_empty_file(storage: Storage) -> None:
    storage.save("locks", "empty", b"")
    assert storage.size("locks", "empty") == 0
    assert storage.load("locks", "empty") == b""
    assert storage.load("locks", "empty", 0, 5) == b""
    assert names(storage, "locks") == {"empty": 0}


def test_location_names_the_place(storage: Storage) -> None:
    assert storage.location


# Directory only


def test_directory_layout(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    storage.save("config", "config", b"c")
    storage.save("data", "abcdef", b"d")
    storage.save("keys", "k1", b"k")
    storage.save("snapshots", "s1", b"s")
    assert (tmp_path / "config").read_bytes() == b"c"
    assert (tmp_path / "data" / "ab" / "abcdef").read_bytes() == b"d"
    assert (tmp_path / "keys" / "k1").read_bytes() == b"k"
    assert (tmp_path / "snapshots" / "s1").read_bytes() == b"s"


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_failed_rename_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = DirectoryStorage(tmp_path)
    storage.save("data", "ab01", b"old")

    def crash(src: Any, dst: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError) as caught:
        storage.save("data", "ab02", b"new file")
    with pytest.raises(StorageError):
        storage.save("data", "ab01", b"replacement")
    assert "ab02" in str(caught.value)
    assert names(storage, "data") == {"ab01": 3}
    assert storage.load("data", "ab01") == b"old"
    monkeypatch.undo()
    storage.save("data", "ab02", b"new file")
    assert all_files(tmp_path) == ["data/ab/ab01", "data/ab/ab02"]


def test_temporary_files_of_a_crash_are_not_listed(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    storage.save("data", "ab01", b"x")
    storage.save("keys", "k1", b"x")
    (tmp_path / "data" / "ab" / ".tmp-ab02-0123456789ab").write_bytes(b"half")
    (tmp_path / "keys" / ".tmp-k2-0123456789ab").write_bytes(b"half")
    assert names(storage, "data") == {"ab01": 1}
    assert names(storage, "keys") == {"k1": 1}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
@pytest.mark.parametrize("call", ["write", "fsync"])
def test_full_disk_is_storage_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   code: int, call: str) -> None:
    storage = DirectoryStorage(tmp_path)
    storage.save("index", "i0", b"before")

    def full(*args: Any) -> Any:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, call, full)
    with pytest.raises(StorageFull) as caught:
        storage.save("index", "i1", b"x" * 10_000)
    monkeypatch.undo()
    assert str(tmp_path / "index" / "i1") in str(caught.value)
    assert all_files(tmp_path) == ["index/i0"]


def test_other_os_errors_name_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = DirectoryStorage(tmp_path)

    def refused(*args: Any, **kwargs: Any) -> int:
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(StorageError) as caught:
        storage.save("keys", "k1", b"x")
    monkeypatch.undo()
    assert not isinstance(caught.value, StorageFull)
    assert "Permission denied" in str(caught.value)
    assert "k1" in str(caught.value)


# S3 only


@pytest.mark.parametrize(("url", "parts"), [
    ("s3:http://127.0.0.1:8333/bucket/prefix", ("http://127.0.0.1:8333", "bucket", "prefix")),
    ("s3:https://s3.example.org/b/a/deep/prefix/",
     ("https://s3.example.org", "b", "a/deep/prefix")),
    ("s3:s3.amazonaws.com/bucket", ("https://s3.amazonaws.com", "bucket", "")),
])
def test_parse_s3_url(url: str, parts: tuple[str, str, str]) -> None:
    parsed = parse_s3_url(url)
    assert (parsed.endpoint_url, parsed.bucket, parsed.prefix) == parts


@pytest.mark.parametrize("url", ["http://host/bucket", "s3:", "s3:http://host", "s3:ftp://h/b"])
def test_parse_s3_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        parse_s3_url(url)


def test_s3_location_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-value")
    storage = S3Storage.from_url("s3:http://127.0.0.1:9/backups/fleet/a")
    try:
        assert storage.location == "s3:http://127.0.0.1:9/backups/fleet/a"
        assert "env-secret-value" not in repr(storage)
        assert "env-secret-value" not in repr(vars(storage))
    finally:
        storage.close()


def test_s3_unreachable_endpoint_is_storage_error() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    storage = S3Storage(endpoint, "bucket", "p", access_key="a", secret_key="b",
                        connect_timeout_s=0.5, read_timeout_s=1, max_attempts=1)
    try:
        for call in (lambda: storage.load("keys", "k1"), lambda: storage.save("keys", "k1", b"x"),
                     lambda: list(storage.list("data")), lambda: storage.size("keys", "k1")):
            with pytest.raises(StorageError) as caught:
                call()
            assert endpoint in str(caught.value)
            assert "unreachable" in str(caught.value)
    finally:
        storage.close()


@pytest.mark.engines
def test_s3_list_paginates(seaweedfs_s3: SeaweedS3) -> None:
    storage = s3_storage(seaweedfs_s3, list_page_size=2)
    try:
        for i in range(5):
            storage.save("snapshots", f"s{i}", bytes(i))
        assert names(storage, "snapshots") == {f"s{i}": i for i in range(5)}
    finally:
        storage.close()


@pytest.mark.engines
def test_s3_missing_bucket_and_create(seaweedfs_s3: SeaweedS3) -> None:
    server = seaweedfs_s3
    storage = S3Storage(server.endpoint_url, f"new-{server.fresh_prefix()}", "p",
                        access_key=server.access_key, secret_key=server.secret_key)
    try:
        with pytest.raises(StorageError) as caught:
            storage.save("keys", "k1", b"x")
        assert "does not exist" in str(caught.value)
        assert storage.create_bucket_if_missing() is True
        assert storage.create_bucket_if_missing() is False
        storage.save("keys", "k1", b"x")
        assert storage.load("keys", "k1") == b"x"
    finally:
        storage.close()


@pytest.mark.engines
def test_s3_wrong_keys_are_refused(seaweedfs_s3: SeaweedS3) -> None:
    storage = S3Storage(seaweedfs_s3.endpoint_url, seaweedfs_s3.bucket, "p",
                        access_key="nobody", secret_key="wrong", max_attempts=1)
    try:
        with pytest.raises(StorageError) as caught:
            storage.load("keys", "k1")
        assert not isinstance(caught.value, MissingFile)
        assert "refused" in str(caught.value)
    finally:
        storage.close()
