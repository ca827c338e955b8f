"""An open repository: its key, config and index, saving and loading blobs, trees and
snapshots. Concurrent savers share one pack being filled; full packs are stored by a few
upload threads, at most a few at a time so memory stays bounded."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pyfastcdc

from dcops.backup import codec
from dcops.backup.codec import BadBlob, BlobType
from dcops.backup.config import RepoConfig
from dcops.backup.crypto import MasterKey, Unsealed, content_name
from dcops.backup.errors import BadRepository, Corrupt, MissingFile
from dcops.backup.index import BadIndex, Index, decode_index, encode_index
from dcops.backup.keys import Credential, KdfCost, add_key, unlock
from dcops.backup.model import FileEntry, Snapshot
from dcops.backup.pack import BadPack, PackEntry, PackWriter, header_span, read_header
from dcops.backup.storage import Storage
from dcops.core.errors import NotFound

log = logging.getLogger(__name__)

SNAPSHOT_AAD = b"snapshot"
INDEX_EVERY_PACKS = 32  # an index file this often, so an interrupted backup is found
UPLOADS_IN_FLIGHT = 4
TREE_CHUNKER = (16 * 1024, 64 * 1024, 512 * 1024)  # min, average, max


class Repository:
    """One repository, opened with one of its keys."""

    def __init__(self, storage: Storage, master: MasterKey, config: RepoConfig,
                 key_name: str) -> None:
        self.storage = storage
        self.master = master
        self.config = config
        self.key_name = key_name
        self.index = Index()
        self.index_files: set[str] = set()
        self.index_problems: dict[str, str] = {}  # index file -> why it was not read
        self._lock = threading.Lock()
        self._pending: set[bytes] = set()  # blobs saved into a pack not yet stored
        # one pack being filled per blob type: file lists never share a pack with data, so
        # a damaged data pack costs files, never a snapshot's listing
        self._packs = {t: PackWriter() for t in BlobType}
        self._unindexed: list[tuple[str, list[PackEntry]]] = []  # stored, not in an index file
        self._uploads: set[Future[None]] = set()
        self._upload_slots = threading.BoundedSemaphore(UPLOADS_IN_FLIGHT)
        self._pool: ThreadPoolExecutor | None = None
        self._failed: BaseException | None = None
        self.packs_written = 0
        self.bytes_stored = 0

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def init(cls, storage: Storage, credential: Credential, cost: KdfCost = KdfCost(),
             config: RepoConfig | None = None) -> Repository:
        """Create a repository in an empty storage."""
        if any(True for _ in storage.list("keys")) or _exists(storage, "config", "config"):
            raise BadRepository(f"{storage.location} already holds a repository")
        master = MasterKey.generate()
        config = config or RepoConfig()
        storage.save("config", "config", config.seal(master))
        key_name = add_key(storage, master, credential, cost)
        return cls(storage, master, config, key_name)

    @classmethod
    def open(cls, storage: Storage, credential: Credential, *,
             load_index: bool = True) -> Repository:
        master, key_name = unlock(storage, credential)
        try:
            data = storage.load("config", "config")
        except MissingFile:
            raise BadRepository(f"{storage.location} has keys but no config file",
                                where="config") from None
        repo = cls(storage, master, RepoConfig.unseal(master, data), key_name)
        if load_index:
            repo.load_index()
        return repo

    def load_index(self, names: Iterable[str] | None = None) -> None:
        """Read the index files (those named, or all) into the index."""
        if names is None:
            names = [name for name, _ in self.storage.list("index")]
        self._read_index(names, self.index, self.index_files, self.index_problems)

    def _read_index(self, names: Iterable[str], index: Index, files: set[str],
                    problems: dict[str, str]) -> None:
        for name in sorted(names):
            try:
                packs = decode_index(self.master, self.storage.load("index", name))
            except (BadIndex, MissingFile) as exc:
                problems[name] = str(exc)
                log.warning("index file %s not read: %s", name, exc)
                continue
            files.add(name)
            for pack, entries in packs:
                index.add_pack(pack, entries)

    def refresh_index(self) -> None:
        """Bring the index up to the storage's index files: a repository held open (by the
        server) must not take blobs that another process pruned for present. New index
        files are read; when any it had read is gone, the whole index is read again (and
        put in place at once, for readers in other threads)."""
        names = {name for name, _ in self.storage.list("index")}
        if self.index_files - names:
            index, files, problems = Index(), set[str](), dict[str, str]()
            self._read_index(names, index, files, problems)
            self.index, self.index_files, self.index_problems = index, files, problems
            return
        fresh = names - self.index_files - self.index_problems.keys()
        if fresh:
            self.load_index(fresh)

    def reopen(self) -> Repository:
        """Another handle on the repository, opened with the same key (no key derivation)
        and its index read afresh: for work beside this handle's, such as a restore while
        a backup runs."""
        other = Repository(self.storage, self.master, self.config, self.key_name)
        other.load_index()
        return other

    def unindexed_packs(self) -> list[tuple[str, int]]:
        """Packs in storage that no index file lists (an interrupted backup's, or ones
        whose index file is damaged)."""
        return [(name, size) for name, size in self.storage.list("data")
                if name not in self.index.packs]

    def read_pack_header(self, name: str, size: int) -> list[PackEntry]:
        tail = self.storage.load("data", name, max(0, size - 64 * 1024))
        span = header_span(size, tail)
        if span > len(tail):
            tail = self.storage.load("data", name, size - span)
        return read_header(self.master, size, tail)

    def recover(self) -> int:
        """Read the headers of unindexed packs into the index and write an index file for
        them, so that their blobs are used again; returns how many packs. Packs whose
        header is damaged are left for `check` and `prune`."""
        found = []
        for name, size in self.unindexed_packs():
            try:
                entries = self.read_pack_header(name, size)
            except (BadPack, MissingFile) as exc:
                log.warning("pack %s not recovered: %s", name, exc)
                continue
            self.index.add_pack(name, entries)
            found.append((name, entries))
        if found:
            self.write_index(found)
            log.info("recovered %d packs that no index listed", len(found))
        return len(found)

    # -- blobs ----------------------------------------------------------------------------

    def reserve(self, blob_id: bytes) -> bool:
        """True if `blob_id` is new (the caller then saves it); False if it is stored or
        being stored."""
        with self._lock:
            if blob_id in self.index or blob_id in self._pending:
                return False
            self._pending.add(blob_id)
            return True

    def release(self, blob_id: bytes) -> None:
        """Give up a reservation (the blob could not be read after all)."""
        with self._lock:
            self._pending.discard(blob_id)

    def save_sealed(self, btype: BlobType, blob_id: bytes, sealed: bytes,
                    raw_length: int) -> None:
        """Add a reserved blob, already encoded, to the pack of its type being filled."""
        self._raise_failed()
        with self._lock:
            pack = self._packs[btype]
            pack.add(btype, blob_id, sealed, raw_length)
            full = pack.size >= self.config.pack_size
            if full:
                self._packs[btype] = PackWriter()
        if full:
            self._store(pack)

    def save_blob(self, btype: BlobType, data: bytes | memoryview, stride: int = 0) -> bytes:
        """Encode and save `data` unless it is stored; returns its name."""
        blob_id = self.master.chunk_id(data)
        if self.reserve(blob_id):
            sealed, _ = codec.encode(self.master, data, blob_id, btype, stride=stride,
                                     level=self.config.zstd_level)
            self.save_sealed(btype, blob_id, sealed, len(data))
        return blob_id

    def _store(self, pack: PackWriter) -> None:
        self._upload_slots.acquire()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(UPLOADS_IN_FLIGHT, thread_name_prefix="backup-up")
        future = self._pool.submit(self._upload, pack)
        with self._lock:
            self._uploads.add(future)
        future.add_done_callback(self._uploaded)

    def _uploaded(self, future: Future[None]) -> None:
        self._upload_slots.release()
        with self._lock:
            self._uploads.discard(future)
        if future.exception() is not None and self._failed is None:
            self._failed = future.exception()

    def _upload(self, pack: PackWriter) -> None:
        name, data = pack.finish(self.master)
        self.storage.save("data", name, data)
        write_index = False
        with self._lock:
            self.index.add_pack(name, pack.entries)
            for e in pack.entries:
                self._pending.discard(e.blob_id)
            self._unindexed.append((name, pack.entries))
            self.packs_written += 1
            self.bytes_stored += len(data)
            if len(self._unindexed) >= INDEX_EVERY_PACKS:
                batch, self._unindexed = self._unindexed, []
                write_index = True
        if write_index:
            self.write_index(batch)

    def write_index(self, packs: list[tuple[str, list[PackEntry]]]) -> str:
        """Store an index file listing `packs`; returns its name."""
        data = encode_index(self.master, packs)
        name = content_name(data)
        self.storage.save("index", name, data)
        self.index_files.add(name)
        return name

    def _raise_failed(self) -> None:
        if self._failed is not None:
            raise self._failed

    def flush(self) -> None:
        """Store the packs being filled, wait for every upload, and index what is not."""
        with self._lock:
            packs, self._packs = self._packs, {t: PackWriter() for t in BlobType}
        for pack in packs.values():
            if len(pack):
                self._store(pack)
        while True:
            with self._lock:
                waiting = list(self._uploads)
            if not waiting:
                break
            for future in waiting:
                future.exception()
        self._raise_failed()
        with self._lock:
            batch, self._unindexed = self._unindexed, []
        if batch:
            self.write_index(batch)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def load_blob(self, blob_id: bytes, btype: BlobType = BlobType.DATA) -> bytes:
        """The blob's bytes, authenticated; `Corrupt` or `MissingFile` if they cannot be."""
        where = self.index.get(blob_id)
        if where is None:
            raise Corrupt(f"blob {blob_id.hex()[:16]} is in no index", where="index")
        sealed = self.storage.load("data", where.pack, where.offset, where.length)
        try:
            return codec.decode(self.master, sealed, blob_id, btype)
        except BadBlob as exc:
            raise Corrupt(str(exc), where=f"data/{where.pack}") from None

    # -- trees and snapshots ---------------------------------------------------------------

    def save_tree(self, entries: Iterable[FileEntry]) -> tuple[bytes, ...]:
        """Store a snapshot's file list as tree blobs, cut by content so an unchanged list
        (or an unchanged part of one) is stored once."""
        text = "".join(json.dumps(e.to_json(), separators=(",", ":")) + "\n"
                       for e in entries).encode()
        low, avg, high = TREE_CHUNKER
        cutter = pyfastcdc.FastCDC(avg, min_size=low, max_size=high)
        ids = tuple(self.save_blob(BlobType.TREE, c.data) for c in cutter.cut_buf(text))
        return ids

    def load_tree(self, snapshot: Snapshot) -> Iterator[FileEntry]:
        rest = b""
        for blob_id in snapshot.tree:
            data = rest + self.load_blob(blob_id, BlobType.TREE)
            lines = data.split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield FileEntry.from_json(json.loads(line))
        if rest.strip():
            raise Corrupt(f"the file list of snapshot {snapshot.short_id} is cut short",
                          where=f"snapshots/{snapshot.id}")

    def save_snapshot(self, snapshot: Snapshot) -> Snapshot:
        """Store `snapshot` (its id is ignored); returns it with the id it is stored as."""
        body = json.dumps(snapshot.to_json(), sort_keys=True).encode()
        signed = json.dumps({"body": body.decode(), "signature": self.master.sign(body)})
        data = self.master.seal(signed.encode(), SNAPSHOT_AAD)
        name = content_name(data)
        self.storage.save("snapshots", name, data)
        return Snapshot.from_json(name, snapshot.to_json())

    def load_snapshot(self, name: str) -> Snapshot:
        where = f"snapshots/{name}"
        data = self.storage.load("snapshots", name)
        if content_name(data) != name:
            raise Corrupt("contents do not hash to the file's name", where=where)
        try:
            signed = json.loads(self.master.open(data, SNAPSHOT_AAD))
            body = signed["body"].encode()
            if not self.master.verify(body, signed["signature"]):
                raise Corrupt("the manifest's signature does not match", where=where)
            return Snapshot.from_json(name, json.loads(body))
        except Unsealed as exc:
            raise Corrupt(f"does not authenticate ({exc})", where=where) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise Corrupt(f"does not parse ({exc})", where=where) from None

    def snapshots(self) -> list[Snapshot]:
        """Every readable snapshot, oldest first (unreadable ones are logged; `check`
        reports them)."""
        found = []
        for name, _ in self.storage.list("snapshots"):
            try:
                found.append(self.load_snapshot(name))
            except (Corrupt, MissingFile) as exc:
                log.warning("snapshot %s not read: %s", name, exc)
        return sorted(found, key=lambda s: (s.time, s.id))

    def find_snapshot(self, ref: str) -> Snapshot:
        """A snapshot by id, unique id prefix, or ``latest``."""
        snaps = self.snapshots()
        if ref == "latest":
            if not snaps:
                raise BadRepository(f"{self.storage.location} has no snapshots yet")
            return snaps[-1]
        matches = [s for s in snaps if s.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NotFound("snapshot", ref, hint="`dcops backup snapshots` lists them")
        raise BadRepository(f"snapshot prefix {ref!r} matches {len(matches)} snapshots; "
                            "give more of the id")


def _exists(storage: Storage, kind: str, name: str) -> bool:
    try:
        storage.size(kind, name)
    except MissingFile:
        return False
    return True
