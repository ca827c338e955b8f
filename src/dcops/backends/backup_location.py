"""A backup repository's storage from its location string, as restic takes them.

Kept apart from ``wiring`` (which re-exports it) so that `dcops backup`, a command that
works on a repository and never on a server, starts without loading the server's
settings and services.
"""

from __future__ import annotations

from pathlib import Path

from dcops.backup.storage import Storage
from dcops.core.errors import Invalid


def backup_storage(location: str) -> Storage:
    """The storage of a backup repository: ``s3:http(s)://host:port/bucket[/prefix]`` (keys
    from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) or a local directory."""
    if location.startswith("s3:"):
        from dcops.backends.backup_s3 import S3Storage

        try:
            return S3Storage.from_url(location)
        except ValueError as exc:
            raise Invalid(str(exc), where="backup repository") from None
    if not location.strip():
        raise Invalid("a backup repository location is empty",
                      hint="give --repo PATH or s3:http://host:port/bucket/prefix")
    from dcops.backends.backup_dir import DirectoryStorage

    return DirectoryStorage(Path(location).expanduser())
