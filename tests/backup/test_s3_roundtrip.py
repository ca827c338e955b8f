"""The whole cycle over a real S3 store (SeaweedFS): init, backup, restore, check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dcops.backends.backup_s3 import S3Storage
from dcops.backup.archiver import backup
from dcops.backup.checker import check
from dcops.backup.repository import Repository
from dcops.backup.restorer import destination, restore
from tests.backup.conftest import PASSWORD, WORKERS, make_repo
from tests.fixtures.seaweedfs import SeaweedS3


@pytest.mark.engines
def test_backup_restore_check_over_s3(seaweedfs_s3: SeaweedS3, tmp_path: Path,
                                      tree: tuple[Path, dict[str, bytes]]) -> None:
    root, files = tree
    server = seaweedfs_s3
    storage = S3Storage(server.endpoint_url, server.bucket, server.fresh_prefix(),
                        access_key=server.access_key, secret_key=server.secret_key)
    try:
        make_repo(storage)
        repo = Repository.open(storage, PASSWORD)
        snap = backup(repo, [root], tags=["s3"], workers=WORKERS)
        again = backup(repo, [root], workers=WORKERS)
        assert again.summary.bytes_read == 0 and again.parent == snap.id
        fresh = Repository.open(storage, PASSWORD)
        out = tmp_path / "out"
        result = restore(fresh, fresh.find_snapshot(snap.id), out, workers=WORKERS)
        assert result.failed == {} and result.files == len(files)
        for rel, data in files.items():
            assert destination(out, str(root / rel)).read_bytes() == data
        assert os.readlink(destination(out, str(root / "link"))) == "a/b/mid.bin"
        checked = check(fresh, read_data=True, workers=WORKERS)
        assert checked.ok and checked.problems == [] and checked.snapshots == 2
        assert checked.bytes_read == sum(size for _, size in storage.list("data")) > 0
    finally:
        storage.close()
