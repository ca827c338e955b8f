"""Forgetting snapshots and pruning the data no snapshot uses any more, as restic does.

`forget` removes the snapshot files a `RetentionPolicy` does not keep. `prune` then finds
the blobs still used (every chunk of every file of every snapshot, and the tree blobs that
list the files) and, per pack:

- no blob used: the pack is deleted;
- every blob used: kept;
- partly used: repacked (its used blobs copied, sealed bytes as they are, into new packs,
  and the old pack deleted) while the unused bytes left in kept packs would be more than
  `max_unused_fraction` of the repository after pruning; packs with the most unused share
  go first. ``0`` repacks every partly used pack, ``1`` none.

Both take the repository's exclusive lock, so no backup runs meanwhile.

The steps run in an order that leaves a valid repository wherever they stop:

1. repack: new packs are stored, and indexed (`Repository.flush`) — until then they are
   merely unindexed copies, and the old packs and index still hold everything;
2. write the new index (every pack that stays, the new ones included) — the old index
   files still exist, so blobs are listed twice but none is missing;
3. remove the old index files — the new index is complete;
4. delete the obsolete packs — no index file lists them any more.

An interruption in step 4 leaves obsolete packs that no index lists: harmless, and deleted
by the next ``prune(unindexed=True)``.

Unindexed packs (in storage, in no index file) are left alone by default: they may be a
backup's whose index is not written yet, and the storage does not tell their age, so
restic's "older than an hour" rule cannot be applied. With ``unindexed=True`` their
headers are read and they are pruned like any other pack (their used blobs kept, the rest
deleted); packs whose header does not read are always left for ``check``. Index entries
of packs missing from storage are dropped. Prune refuses, changing nothing, when a
snapshot or an index file does not read, or a used blob is in no pack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dcops.backup import locks
from dcops.backup.codec import BlobType
from dcops.backup.crypto import content_name
from dcops.backup.errors import Corrupt, MissingFile
from dcops.backup.index import BadIndex, Index, decode_index, encode_index
from dcops.backup.model import Snapshot
from dcops.backup.pack import BadPack, PackEntry
from dcops.backup.progress import Progress, ProgressFn, quiet
from dcops.backup.repository import Repository
from dcops.backup.retention import Decision, RetentionPolicy, decide
from dcops.core.errors import Invalid

log = logging.getLogger(__name__)

INDEX_BLOBS_PER_FILE = 50_000  # blobs listed per index file written by prune


@dataclass(frozen=True)
class ForgetResult:
    """What `forget` removed (or, with `dry_run`, would remove), and why the rest stays."""

    decisions: tuple[Decision, ...]
    dry_run: bool

    @property
    def kept(self) -> list[Snapshot]:
        return [s for s, keep, _ in self.decisions if keep]

    @property
    def removed(self) -> list[Snapshot]:
        return [s for s, keep, _ in self.decisions if not keep]


def forget(repo: Repository, policy: RetentionPolicy, *, dry_run: bool = False,
           group_by: str = "host,paths", now: datetime | None = None,
           among: Callable[[Snapshot], bool] | None = None) -> ForgetResult:
    """Remove the snapshot files `policy` does not keep, under the exclusive lock."""
    with locks.hold(repo.storage, repo.master, exclusive=True, operation="forget"):
        candidates = [s for s in repo.snapshots() if among is None or among(s)]
        decisions = decide(candidates, policy, now or datetime.now(UTC), group_by=group_by)
        if not dry_run:
            for snap, keep, _ in decisions:
                if not keep:
                    repo.storage.remove("snapshots", snap.id)
                    log.info("forgot snapshot %s", snap.short_id)
    return ForgetResult(tuple(decisions), dry_run)


@dataclass(frozen=True)
class PruneResult:
    """The plan `prune` followed (or, with `dry_run`, would follow): the same numbers
    either way. Bytes are of stored blobs (pack headers aside)."""

    dry_run: bool
    snapshots: int  # snapshots whose data is kept
    blobs_kept: int  # distinct blobs still used
    blobs_removed: int  # blob copies in deleted or repacked packs that are not copied
    packs_kept: int
    packs_deleted: int
    packs_repacked: int
    packs_unindexed: int  # in storage, in no index, left alone
    packs_missing: int  # listed in an index, not in storage: dropped from the index
    bytes_deleted: int  # of the packs deleted and repacked
    bytes_repacked: int  # copied into new packs
    index_files_replaced: int  # old index files, replaced by new ones

    @property
    def bytes_freed(self) -> int:
        return self.bytes_deleted - self.bytes_repacked


@dataclass
class _Plan:
    index: Index
    index_files: set[str]
    used: set[tuple[BlobType, bytes]]
    keep: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    repack: list[str] = field(default_factory=list)
    unindexed: int = 0
    missing: int = 0
    snapshots: int = 0


def _read_index(repo: Repository) -> tuple[Index, set[str]]:
    index, names = Index(), set()
    for name, _ in repo.storage.list("index"):
        try:
            packs = decode_index(repo.master, repo.storage.load("index", name))
        except (BadIndex, MissingFile) as exc:
            raise Corrupt(f"index file does not read ({exc}); not pruning",
                          where=f"index/{name}") from None
        names.add(name)
        for pack, entries in packs:
            index.add_pack(pack, entries)
    return index, names


def _used_blobs(repo: Repository, snapshots: list[Snapshot]) -> set[tuple[BlobType, bytes]]:
    used: set[tuple[BlobType, bytes]] = set()
    for snap in snapshots:
        used.update((BlobType.TREE, t) for t in snap.tree)
        for entry in repo.load_tree(snap):
            used.update((BlobType.DATA, c) for c in entry.chunks)
    return used


def _is_canonical(index: Index, pack: str, e: PackEntry,
                  used: set[tuple[BlobType, bytes]]) -> bool:
    """Whether this copy of a blob is the one that is kept (duplicates are not)."""
    where = index.get(e.blob_id)
    return ((e.btype, e.blob_id) in used and where is not None and where.pack == pack
            and where.offset == e.offset)


def _plan(repo: Repository, max_unused_fraction: float, unindexed: bool) -> _Plan:
    stored = repo.storage.list("snapshots")
    snapshots = repo.snapshots()
    unreadable = sorted({n for n, _ in stored} - {s.id for s in snapshots})
    if unreadable:
        raise Corrupt(f"{len(unreadable)} snapshot files do not read; pruning now could "
                      "delete data they use", where=f"snapshots/{unreadable[0]}")
    index, index_files = _read_index(repo)
    in_storage = dict(repo.storage.list("data"))
    missing = [p for p in index.packs if p not in in_storage]
    index.remove_packs(missing)
    plan = _Plan(index, index_files, set(), missing=len(missing), snapshots=len(snapshots))
    for name, size in in_storage.items():
        if name in index.packs:
            continue
        if not unindexed:
            plan.unindexed += 1
            continue
        try:
            index.add_pack(name, repo.read_pack_header(name, size))
        except (BadPack, MissingFile) as exc:
            log.warning("unindexed pack %s left alone: %s", name, exc)
            plan.unindexed += 1
    loaded, repo.index = repo.index, index  # trees are read through what storage holds now
    try:
        plan.used = _used_blobs(repo, snapshots)
    finally:
        repo.index = loaded
    lost = [b for _, b in plan.used if b not in index]
    if lost:
        raise Corrupt(f"{len(lost)} blobs that snapshots use are in no indexed pack, e.g. "
                      f"{lost[0].hex()[:16]}; not pruning (prune with unindexed=True, or "
                      "recover, may find them)", where="index")
    partly: list[tuple[float, str, int]] = []  # (unused share, pack, unused bytes)
    used_bytes = unused_kept = 0
    for name, entries in index.packs.items():
        live = sum(e.length for e in entries if _is_canonical(index, name, e, plan.used))
        dead = sum(e.length for e in entries) - live
        used_bytes += live
        if not live:
            plan.delete.append(name)
        elif not dead:
            plan.keep.append(name)
        else:
            partly.append((dead / (live + dead), name, dead))
            unused_kept += dead
    if max_unused_fraction >= 1:
        allowed = float("inf")
    else:
        allowed = used_bytes * max_unused_fraction / (1 - max_unused_fraction)
    for _, name, dead in sorted(partly, reverse=True):
        if unused_kept > allowed:
            plan.repack.append(name)
            unused_kept -= dead
        else:
            plan.keep.append(name)
    return plan


def _index_batches(packs: dict[str, list[PackEntry]]
                   ) -> Iterator[list[tuple[str, list[PackEntry]]]]:
    batch: list[tuple[str, list[PackEntry]]] = []
    blobs = 0
    for name in sorted(packs):
        batch.append((name, packs[name]))
        blobs += len(packs[name])
        if blobs >= INDEX_BLOBS_PER_FILE:
            yield batch
            batch, blobs = [], 0
    if batch:
        yield batch


def _repack(repo: Repository, plan: _Plan, progress: Progress, show: ProgressFn) -> None:
    for name in plan.repack:
        data = repo.storage.load("data", name)
        if content_name(data) != name:
            raise Corrupt("pack contents do not hash to its name; not repacking it",
                          where=f"data/{name}")
        for e in plan.index.packs[name]:
            if _is_canonical(plan.index, name, e, plan.used) and repo.reserve(e.blob_id):
                repo.save_sealed(e.btype, e.blob_id, data[e.offset:e.offset + e.length],
                                 e.raw_length)
                progress.add(nbytes=e.length)
        progress.add(files=1)
        show(progress)
    repo.flush()


def prune(repo: Repository, *, dry_run: bool = False, max_unused_fraction: float = 0.05,
          unindexed: bool = False, progress: ProgressFn = quiet) -> PruneResult:
    """Delete and repack packs so only used blobs (and at most `max_unused_fraction`
    unused bytes) stay; the order of the steps is in the module's docstring."""
    if not 0 <= max_unused_fraction <= 1:
        raise Invalid(f"max unused fraction {max_unused_fraction} is not between 0 and 1")
    with locks.hold(repo.storage, repo.master, exclusive=True, operation="prune"):
        plan = _plan(repo, max_unused_fraction, unindexed)
        packs = plan.index.packs
        gone = plan.delete + plan.repack
        copied = [e for p in plan.repack for e in packs[p]
                  if _is_canonical(plan.index, p, e, plan.used)]
        result = PruneResult(
            dry_run=dry_run, snapshots=plan.snapshots, blobs_kept=len(plan.used),
            blobs_removed=sum(len(packs[p]) for p in gone) - len(copied),
            packs_kept=len(plan.keep), packs_deleted=len(plan.delete),
            packs_repacked=len(plan.repack), packs_unindexed=plan.unindexed,
            packs_missing=plan.missing,
            bytes_deleted=sum(e.length for p in gone for e in packs[p]),
            bytes_repacked=sum(e.length for e in copied),
            index_files_replaced=len(plan.index_files))
        if dry_run:
            return result
        status = Progress("prune", files_total=len(plan.repack),
                          bytes_total=result.bytes_repacked)
        repo.index = Index()  # what stays; repacked blobs are saved anew into it
        for name in plan.keep:
            repo.index.add_pack(name, packs[name])
        repo.index_files = set(plan.index_files)
        try:
            _repack(repo, plan, status, progress)
        finally:
            repo.close()
        old_files = set(repo.index_files)
        new_files: set[str] = set()
        for batch in _index_batches(repo.index.packs):
            data = encode_index(repo.master, batch)
            name = content_name(data)
            repo.storage.save("index", name, data)
            new_files.add(name)
        for name in sorted(old_files - new_files):
            repo.storage.remove("index", name)
        repo.index_files = new_files
        for name in gone:
            repo.storage.remove("data", name)
        progress(status)
        log.info("pruned: %d packs deleted, %d repacked, %d bytes freed",
                 result.packs_deleted, result.packs_repacked, result.bytes_freed)
        return result

