"""What can go wrong with a repository, each error saying where and what to do."""

from __future__ import annotations

from dcops.core.errors import Conflict, DcopsError, Invalid, NotFound, Unavailable


class StorageError(Unavailable):
    """The storage under a repository failed (unreachable, refused, or full)."""

    code = "storage"


class StorageFull(StorageError):
    """No space left where the repository lives: nothing half-written is kept."""

    code = "storage_full"


class MissingFile(NotFound):
    """A file the repository should hold is not in its storage."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"repository {kind} file", name)
        self.file_kind = kind
        self.name = name


class WrongPassword(DcopsError):
    """No key of the repository opens with the password (or key file) given."""

    status = 401
    code = "wrong_password"


class Corrupt(DcopsError):
    """A file of the repository failed authentication or does not parse."""

    status = 422
    code = "corrupt"

    def __init__(self, message: str, *, where: str) -> None:
        super().__init__(message, where=where,
                         hint="run `dcops backup check --read-data` to see what is affected")


class Locked(Conflict):
    """Another process holds a lock that excludes this operation."""

    code = "locked"


class BadRepository(Invalid):
    """Not a dcops repository, or one of a format this version does not read."""
