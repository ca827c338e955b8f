"""A consistent copy of the SQLite state file, for the control plane's own backup.

SQLite's online backup API copies the database page by page while the server keeps
writing; the copy is one consistent state, WAL contents included, whatever was being
written at the time (copying the file itself could catch it half-written)."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy import Engine

from dcops.core.errors import Invalid

STATE_COPY = "state.db"


def sqlite_path(engine: Engine | None) -> Path:
    """The file of the SQLite state store; `Invalid` for memory or PostgreSQL state."""
    if engine is None or engine.url.get_backend_name() != "sqlite" \
            or engine.url.database in (None, "", ":memory:"):
        kind = "in memory" if engine is None else engine.url.get_backend_name()
        raise Invalid(f"the state store is {kind}: dcops copies only a SQLite state file",
                      where="backup.self_backup",
                      hint="back PostgreSQL up with pg_dump, or set "
                           "backup.self_backup.enabled: false")
    return Path(str(engine.url.database)).expanduser()


def copy_sqlite(source: Path, target: Path) -> Path:
    """Copy the database at `source` to `target` with SQLite's online backup API."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            with dst:
                src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    return target


@contextlib.contextmanager
def state_copy(engine: Engine | None, staging: Path,
               extra: Sequence[Path] = ()) -> Iterator[list[Path]]:
    """A consistent copy of the state file in `staging` (emptied afterwards), with `extra`
    paths beside it: what the control plane's backup holds."""
    source = sqlite_path(engine)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, mode=0o700)
    try:
        yield [copy_sqlite(source, staging / STATE_COPY), *extra]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
