"""The chunk store: dedup against the index, pack buffering, index files, blob reads.

Writing happens in a `WriteSession` (`with store.session(retention) as s:`),
which carries the retention every pack and index file of that run is stored
with, and which stops the uploader threads when it closes.

Writers add blobs from many threads. Each blob is compressed and sealed
outside the lock (or arrives sealed from a worker process); only appending
to the open pack happens under it. A full pack is handed to one of the
uploader threads, with at most UPLOAD_QUEUE packs waiting. Index files are written only
after the packs they describe are stored, and the snapshot only after its
index files, so a crash at any point leaves nothing that references missing
data (at worst unreferenced packs, which `prune` removes).
"""

from __future__ import annotations

import collections
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import blake3

from ..crypto import content as contentkeys
from ..crypto.aead import (
    ALG_AES256GCM,
    ALG_CONTENT,
    KIND_DATA,
    KIND_PACK_HEADER,
    KIND_PACK_HEADER_SEALED,
    KIND_TREE,
    Sealer,
)
from ..crypto.keys import MasterKeys
from ..errors import AlreadyExists, IntegrityError, NotAllowed, NotFound, StorageError
from ..format import layout
from ..format import pack as packfmt
from ..format import parity as parityfmt
from ..format.index import IndexedPack
from ..format.pack import BLOB_DATA, BLOB_TREE, PackEntry
from ..storage.base import Retention, Storage
from . import records as rec
from .blobindex import BlobIndex, IndexEntry
from .chunks import open_chunk, seal_chunk

PACK_TARGET = 16 << 20
PACKS_PER_INDEX = 32  # an index file is written for at most this many packs ...
BLOBS_PER_INDEX = 65536  # ... or blobs: their entries wait in memory until it is
UPLOADERS = 2  # threads that write finished packs, so workers never wait on storage
TREE_SPAN = 4 << 20  # trees are read from their packs in aligned regions of this many bytes ...
TREE_SPANS_CACHED = 4  # ... and this many regions are kept while trees are read (16 MiB, not whole packs)
UPLOAD_QUEUE = 4  # finished packs that may wait for an uploader (bounds memory)
REBUILT_CACHED = 2  # packs rebuilt from their parity kept in memory while their blobs are read
ENVELOPE_KINDS = {BLOB_DATA: KIND_DATA, BLOB_TREE: KIND_TREE}  # a blob type's envelope kind
_KIND = ENVELOPE_KINDS


class _OpenPack:
    __slots__ = ("parts", "entries", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.entries: list[PackEntry] = []
        self.size = 0


class WriteSession:
    """One writer's run: what it adds is packed, stored with its retention and indexed.

    Use as a context manager; leaving it stops the uploaders (after a failure
    too). `flush()` stores the open packs and their index file.
    """

    def __init__(self, store: "BlobStore", retention: Retention | None) -> None:
        self.store = store
        self.retention = retention
        self.added_before = store.bytes_added
        # the store's own methods, bound once: these run per chunk and per file
        self.has = store.has
        self.has_all_hex = store.has_all_hex
        self.add = store.add
        self.add_sealed = store.add_sealed
        self.flush = store.flush
        self.blob_key = store.blob_key  # what worker processes seal blobs with

    def __enter__(self) -> "WriteSession":
        self.store._begin(self)
        return self

    def __exit__(self, *exc) -> None:
        self.store._end(self)

    @property
    def bytes_added(self) -> int:
        """Stored bytes this session added (packs, headers, index files)."""
        return self.store.bytes_added - self.added_before


class BlobStore:
    def __init__(
        self, storage: Storage, records: "rec.Records", keys: MasterKeys, *, pack_target: int = PACK_TARGET
    ) -> None:
        self.storage = storage
        self.records = records
        self.keys = keys
        self.sealer = Sealer(keys.data)  # pack headers; the blobs of packs written before format 2
        # format 2: this run's writer key seals every blob it writes (crypto/content.py); only a
        # full key opens them, through the repository's content private key
        self.writer = contentkeys.new_writer(keys.content_public) if keys.content_public is not None else None
        self.blob_sealer = self.writer.sealer() if self.writer is not None else self.sealer
        # (key, envelope algorithm) of blob_sealer, for worker processes that seal blobs
        self.blob_key = (self.writer.key, ALG_CONTENT) if self.writer is not None else (keys.data, ALG_AES256GCM)
        self.opener = contentkeys.ContentOpener(keys.content_private) if keys.content_private is not None else None
        self.pack_writers: dict[bytes, bytes] = {}  # pack -> the writer key its blobs are sealed under
        self.only_sealed = False  # a repository made in format 2 holds no blob under the data key
        # when a set: the packs of every blob a writer reuses or adds (`track_packs`)
        self.used_packs: set[bytes] | None = None
        self.used_pack_numbers: set[int] = set()  # the same, as the index numbers them
        self.pack_target = pack_target
        self.parity_percent = 0  # Reed–Solomon parity of each pack written, in percent (config "parity")
        self.index = BlobIndex()
        self.index_files: list[str] = []
        self.pack_index_files: dict[bytes, set[str]] = {}  # pack -> index files naming it
        self.tombstones: frozenset[bytes] = frozenset()  # packs prune deleted: their index entries are void
        self.doomed: frozenset[bytes] = frozenset()  # packs a prune plan will delete: never dedup against
        # blob -> packs whose copy of it is damaged (repo/damage.py): never dedup against, read others first
        self.damaged: dict[bytes, frozenset[bytes]] = {}
        self.found_damage: dict[tuple[bytes, bytes], str] = {}  # found by this client, not yet recorded
        self.heals: dict[bytes, set[bytes]] = {}  # pack written -> damaged packs whose blobs it stores again
        self._healing: dict[bytes, frozenset[bytes]] = {}  # blob claimed -> its damaged copies' packs
        self._session: WriteSession | None = None
        self._mu = threading.Lock()
        self._inflight: set[bytes] = set()
        self._open = {BLOB_DATA: _OpenPack(), BLOB_TREE: _OpenPack()}
        self._written: list[IndexedPack] = []  # packs not yet in an index file
        self._index_mu = threading.Lock()
        self.bytes_added = 0
        self.blobs_added = 0
        self.packs_written = 0
        self._tree_spans: collections.OrderedDict[tuple[bytes, int], bytes] = collections.OrderedDict()
        self._tree_pack_sizes: dict[bytes, int] = {}
        self._rebuilt: collections.OrderedDict[bytes, bytes] = collections.OrderedDict()  # packs rebuilt from parity
        self._uploader: ThreadPoolExecutor | None = None
        self._upload_slots = threading.BoundedSemaphore(UPLOAD_QUEUE)
        self._uploads: list[Future] = []
        self._upload_error: BaseException | None = None

    # -- index ---------------------------------------------------------------

    def load_index(self, tombstones=frozenset(), doomed=frozenset(), damaged=None) -> list[str]:
        """Read every index file; returns the ones that could not be read.

        Entries of `tombstones` (packs prune deleted) are void; blobs in `doomed`
        packs (a prune plan will delete them) are never deduplicated against, nor
        copies recorded `damaged` (blob id -> packs), nor those this client found damaged."""
        self.tombstones, self.doomed = frozenset(tombstones), frozenset(doomed)
        self.damaged = dict(damaged or {})
        for blob, pack in self.found_damage:
            self.damaged[blob] = self.damaged.get(blob, frozenset()) | {pack}
        bad = []
        files = [info.key for info in self.storage.list(layout.INDEX)]
        for key in files:
            try:
                packs = self.records.get(rec.INDEX_RECORDS, key)
                self.index.reserve(sum(p.blobs for p in packs))
                self._add_index_file(key, packs)
            except (IntegrityError, NotFound) as e:
                bad.append(f"{key}: {e}")
            packs = []  # one index file decoded at a time: not the last one while the next is read
        self.index_files = files
        return bad

    def forget_pack(self, pack_id: bytes) -> None:
        """A pack deleted by this client: its index entries are void from now on."""
        self.tombstones = self.tombstones | {pack_id}

    def _add_index_file(self, key: str, packs) -> None:
        index = self.index
        for pack_id, records, count, writer in packs:
            if writer is not None:
                self.pack_writers[pack_id] = writer
            self.pack_index_files.setdefault(pack_id, set()).add(key)
            if pack_id in self.tombstones:
                continue
            # of two copies, keep the one no prune plan is about to delete and not found damaged
            index.put_records(pack_id, records, count, doomed=self.doomed, damaged=self.damaged)

    def reset_index(self) -> None:
        """Forget the loaded index (blobs written by this client and not yet indexed stay)."""
        with self._mu:
            keep = BlobIndex()
            for written in self._written:
                for e in written.entries:
                    known = self.index.get(e.id)
                    if known is not None:
                        keep[e.id] = known
            self.index = keep
            self.index_files = []
            self.pack_index_files = {}

    def has(self, blob_id: bytes) -> bool:
        """Whether a writer may reuse this blob (it is indexed, in a pack not planned for
        deletion, and that copy was not found damaged: else the writer stores it again)."""
        pack = self.index.pack_of(blob_id)
        reusable = pack is not None and pack not in self.doomed and not self.is_damaged(blob_id, pack)
        if reusable and self.used_packs is not None:
            self.used_packs.add(pack)  # type: ignore[arg-type]
        return reusable

    def has_all_hex(self, hex_ids) -> bool:
        """`has` for every id of a file's content, given in hex (ValueError if one is not hex).
        A file the files cache would skip is read again when one of its blobs is damaged."""
        if self.doomed:
            return all(self.has(bytes.fromhex(h)) for h in hex_ids)
        if not self.index.has_all_hex(hex_ids, self.used_pack_numbers if self.used_packs is not None else None):
            return False
        damaged = self.damaged
        return not damaged or not any(bytes.fromhex(h) in damaged and not self.has(bytes.fromhex(h)) for h in hex_ids)

    def is_damaged(self, blob_id: bytes, pack: bytes) -> bool:
        """Whether this copy of the blob was found damaged (recorded, or by this client)."""
        packs = self.damaged.get(blob_id)
        return packs is not None and pack in packs

    def track_packs(self, on: bool) -> None:
        """Start (or stop) noting the packs of every blob a writer reuses or adds: a write-only
        client cannot read its snapshot's trees back to find them (`packs_used`)."""
        self.used_packs = set() if on else None
        self.used_pack_numbers = set()

    def packs_used(self) -> set[bytes]:
        """The packs noted since `track_packs(True)`."""
        return set(self.used_packs or ()) | {self.index.pack(n) for n in self.used_pack_numbers}

    def take_heals(self) -> dict[bytes, set[bytes]]:
        """The packs written since the last call that store blobs again whose copies were
        damaged, each with the damaged packs (see `retention.locks.carry_protection`)."""
        with self._mu:
            heals, self.heals = self.heals, {}
        return heals

    def note_damage(self, blob_id: bytes, pack: bytes, problem: str) -> None:
        """A reader found this copy damaged: never deduplicate against it, read another copy
        first, and have the command record it (repo/damage.py)."""
        with self._mu:
            self.found_damage.setdefault((blob_id, pack), problem)
            self.damaged[blob_id] = self.damaged.get(blob_id, frozenset()) | {pack}

    # -- writing -------------------------------------------------------------

    def _claim(self, blob_id: bytes) -> bool:
        """Whether this writer is the one to store the blob (it is neither known nor in flight)."""
        with self._mu:
            if self.has(blob_id) or blob_id in self._inflight:
                return False
            self._inflight.add(blob_id)
            damaged = self.damaged.get(blob_id) if self.damaged else None
            if damaged is not None and self.index.pack_of(blob_id) is not None:
                self._healing[blob_id] = damaged  # stored again: the new pack inherits their protection
            return True

    def add(self, blob_type: int, blob_id: bytes, data) -> int:
        """Store a blob unless known; returns the stored bytes added (0 for a duplicate)."""
        if not self._claim(blob_id):
            return 0
        c = seal_chunk(self.blob_sealer, self.keys.ids, data, _KIND[blob_type], blob_id)
        return self._append(blob_type, blob_id, c.comp, c.raw_length, c.sealed)

    def add_sealed(self, blob_type: int, blob_id: bytes, comp: int, raw_length: int, sealed: bytes) -> int:
        """Store a blob another process compressed and sealed (see repo/chunks.py, backup/workers.py)."""
        if not self._claim(blob_id):
            return 0
        return self._append(blob_type, blob_id, comp, raw_length, sealed)

    def _append(self, blob_type: int, blob_id: bytes, comp: int, raw_length: int, sealed: bytes) -> int:
        full = None
        with self._mu:
            p = self._open[blob_type]
            p.entries.append(PackEntry(blob_type, comp, p.size, len(sealed), raw_length, blob_id))
            p.parts.append(sealed)
            p.size += len(sealed)
            self.bytes_added += len(sealed)
            self.blobs_added += 1
            if p.size >= self.pack_target:
                full = p
                self._open[blob_type] = _OpenPack()
        if full is not None:
            self._queue_pack(full)
        return len(sealed)

    def _queue_pack(self, p: _OpenPack) -> None:
        """Hand a full pack to an uploader thread; blocks while UPLOAD_QUEUE packs wait."""
        self._upload_slots.acquire()
        with self._mu:
            if self._uploader is None:
                self._uploader = ThreadPoolExecutor(UPLOADERS, thread_name_prefix="amber-upload")
            fut = self._uploader.submit(self._write_pack, p)
            self._uploads.append(fut)
        fut.add_done_callback(self._upload_done)
        if self._upload_error is not None:
            raise self._upload_error  # surface a storage error in the thread that adds blobs

    def _upload_done(self, fut: Future) -> None:
        self._upload_slots.release()
        if fut.cancelled():  # an interrupted session dropped it: nothing was stored, nothing failed
            return
        if fut.exception() is not None and self._upload_error is None:
            self._upload_error = fut.exception()

    def session(self, retention: Retention | None = None) -> WriteSession:
        """A writing session whose packs and index files are stored with `retention`."""
        return WriteSession(self, retention)

    def _put_retention(self) -> Retention | None:
        return self._session.retention if self._session is not None else None

    def _write_pack(self, p: _OpenPack) -> None:
        if self.writer is not None:
            header = self.sealer.seal(
                KIND_PACK_HEADER_SEALED, packfmt.encode_sealed_header(self.writer.public, p.entries)
            )
        else:
            header = self.sealer.seal(KIND_PACK_HEADER, packfmt.encode_header(p.entries))
        p.parts.append(header)
        p.parts.append(packfmt.trailer(len(header)))
        data = b"".join(p.parts)
        p.parts.clear()
        pack_id = blake3.blake3(data).digest()
        try:
            self.storage.put(layout.pack(pack_id), data, retention=self._put_retention())
            if self.parity_percent:
                self._put_parity(pack_id, data)
        except AlreadyExists:
            pass  # identical bytes are already stored
        except BaseException:
            with self._mu:  # these blobs were never stored: a retry must store them again
                for e in p.entries:
                    self._inflight.discard(e.id)
                    self._healing.pop(e.id, None)
            raise
        del data
        entries = p.entries
        with self._mu:
            self.index.put_pack(pack_id, entries)
            if self.writer is not None:
                self.pack_writers[pack_id] = self.writer.public
            if self.used_packs is not None:
                self.used_packs.add(pack_id)
            self._inflight.difference_update([e.id for e in entries])
            if self._healing:
                for e in entries:
                    damaged = self._healing.pop(e.id, None)
                    if damaged is not None:
                        self.heals.setdefault(pack_id, set()).update(damaged)
            self.bytes_added += len(header) + 4
            self.packs_written += 1
            self._written.append(IndexedPack(pack_id, entries, self.writer.public if self.writer else None))
            waiting = sum(len(written.entries) for written in self._written)
            flush_index = len(self._written) >= PACKS_PER_INDEX or waiting >= BLOBS_PER_INDEX
        if flush_index:
            self.write_index()

    def _put_parity(self, pack_id: bytes, data: bytes) -> None:
        """The pack's Reed–Solomon parity (format/parity.py), stored with the pack's retention."""
        raw = parityfmt.encode(pack_id, data, self.parity_percent)
        try:
            self.storage.put(layout.parity(pack_id), raw, retention=self._put_retention())
        except AlreadyExists:
            pass
        self.bytes_added += len(raw)

    def adopt_packs(self, packs: list[IndexedPack]) -> str | None:
        """Index packs an interrupted run stored but never indexed (repo/adopt.py), and write
        their index file now, in this writing session; returns its key."""
        with self._mu:
            for p in packs:
                if p.writer is not None:
                    self.pack_writers[p.pack] = p.writer
                self.index.put_pack(p.pack, p.entries, doomed=self.doomed, damaged=self.damaged)
                self._written.append(p)
        return self.write_index()

    def flush(self) -> None:
        """Write the open packs and an index file for every pack not yet indexed."""
        with self._mu:
            open_packs = [p for p in self._open.values() if p.entries]
            self._open = {BLOB_DATA: _OpenPack(), BLOB_TREE: _OpenPack()}
        for p in open_packs:
            self._queue_pack(p)
        self.wait_uploads()
        self.write_index()

    def _begin(self, session: WriteSession) -> None:
        """Start a writing session: forget a failure left by an earlier one."""
        with self._mu:
            if self._session is not None:
                raise RuntimeError("a blob store has one writing session at a time")
            self._session = session
            self._upload_error = None
            self._uploads = []
            self._open = {BLOB_DATA: _OpenPack(), BLOB_TREE: _OpenPack()}
            self._inflight.clear()
            self._healing.clear()
            # _written stays: packs stored before a failure still get their index file

    def wait_uploads(self) -> None:
        with self._mu:
            uploads, self._uploads = self._uploads, []
        for f in uploads:
            f.result()

    def _end(self, session: WriteSession) -> None:
        try:
            self.close()
        finally:
            with self._mu:
                if self._session is session:
                    self._session = None

    def close(self) -> None:
        if self._uploader is not None:
            self._uploader.shutdown(wait=True, cancel_futures=True)
            self._uploader = None

    def write_index(self) -> str | None:
        with self._index_mu:
            with self._mu:
                packs, self._written = self._written, []
            if not packs:
                return None
            name, raw = self.records.seal(rec.INDEX, packs)
            key = layout.index_file(name)
            try:
                self.storage.put(key, raw, retention=self._put_retention())
            except BaseException:
                with self._mu:  # not indexed yet: the next flush tries again
                    self._written[:0] = packs
                raise
            self.bytes_added += len(raw)
            self.index_files.append(key)
            for written in packs:
                self.pack_index_files.setdefault(written.pack, set()).add(key)
            return key

    # -- reading -------------------------------------------------------------

    def lookup(self, blob_id: bytes) -> IndexEntry:
        """The index entry of a blob. Its place and sizes were checked against the format's
        limits when its index file (or the pack header this client wrote) was decoded."""
        e = self.index.get(blob_id)
        if e is None:
            raise IntegrityError(f"blob {blob_id.hex()} is not in any index")
        return e

    def stored_sizes(self, hex_ids) -> tuple[int, int] | None:
        """(plaintext, stored) bytes of the blobs named (hex ids), from the index; None when one
        is not indexed. A ratio near 1 means the content did not compress (backup/anomaly.py)."""
        raw = stored = 0
        for h in hex_ids:
            try:
                e = self.index.get(bytes.fromhex(h))
            except (ValueError, TypeError):
                return None
            if e is None:
                return None
            raw += e.raw_length
            stored += e.length
        return raw, stored

    def read(self, blob_id: bytes) -> bytes:
        """A blob's verified plaintext; a missing or damaged pack is an IntegrityError."""
        e = self.lookup(blob_id)  # lengths within the format's limits before anything is fetched
        try:
            if e.type == BLOB_TREE:  # trees are read many at a time: fetch a region of their pack once
                raw = self._tree_bytes(e.pack, e.offset, e.length)
            else:
                raw = self.storage.get(layout.pack(e.pack), e.offset, e.length)
            return self.open_blob(blob_id, e, raw)
        except NotFound:
            problem = f"blob {blob_id.hex()[:16]}: pack {e.pack.hex()[:16]} is missing"
            self.note_damage(blob_id, e.pack, problem)
            raise IntegrityError(problem) from None
        except IntegrityError as err:
            self.note_damage(blob_id, e.pack, str(err))
            data = self.from_parity(blob_id, e)
            if data is None:
                raise
            return data

    def from_parity(self, blob_id: bytes, e: IndexEntry) -> bytes | None:
        """A blob's plaintext from its pack rebuilt in memory from the pack's parity
        (format/parity.py), or None where the pack has none or too much is damaged. The damaged
        copy stays recorded (`note_damage`): the next backup, or check, stores it again."""
        with self._mu:
            rebuilt = self._rebuilt.get(e.pack)
        if rebuilt is None:
            try:
                raw = self.storage.get(layout.parity(e.pack))
                rebuilt, _shards = parityfmt.repair(
                    e.pack, self.storage.get(layout.pack(e.pack)), raw, f"pack {e.pack.hex()[:16]}"
                )
            except (IntegrityError, NotFound, StorageError):
                return None
            with self._mu:
                self._rebuilt[e.pack] = rebuilt
                while len(self._rebuilt) > REBUILT_CACHED:
                    self._rebuilt.popitem(last=False)
        try:
            return self.open_blob(blob_id, e, memoryview(rebuilt)[e.offset : e.offset + e.length])
        except IntegrityError:
            return None

    def _tree_bytes(self, pack_id: bytes, offset: int, length: int) -> bytes:
        """A tree blob's stored bytes, from the aligned TREE_SPAN region of its pack that holds
        it (fetched once, a few kept: a walk reads the trees of a region one after another);
        a blob across a region's end is fetched alone. A pack shorter than the index says is
        an IntegrityError before anything is fetched, a region cut short a truncated blob."""
        key = layout.pack(pack_id)
        size = self._tree_pack_sizes.get(pack_id)
        if size is None:
            size = self.storage.stat(key).size  # the real size, before a region is fetched
            if len(self._tree_pack_sizes) >= 1024:
                self._tree_pack_sizes.clear()
            self._tree_pack_sizes[pack_id] = size
        if size < offset + length or size > packfmt.MAX_PACK:
            raise IntegrityError(
                f"pack {pack_id.hex()[:16]}: {size} bytes, the index places a blob up to {offset + length}"
            )
        start = offset - offset % TREE_SPAN
        if offset + length > start + TREE_SPAN:
            return self.storage.get(key, offset, length)
        with self._mu:
            body = self._tree_spans.get((pack_id, start))
            if body is not None:
                self._tree_spans.move_to_end((pack_id, start))
        if body is None or len(body) < offset + length - start:
            body = self.storage.get(key, start, min(TREE_SPAN, size - start))
            with self._mu:
                self._tree_spans[(pack_id, start)] = body
                while len(self._tree_spans) > TREE_SPANS_CACHED:
                    self._tree_spans.popitem(last=False)
        return body[offset - start : offset - start + length]

    def open_blob(self, blob_id: bytes, e: IndexEntry, sealed) -> bytes:
        """A blob's plaintext from its stored bytes: length, envelope kind, bounded
        decompression and keyed id all checked; any damage is an IntegrityError."""
        what = f"blob {blob_id.hex()[:16]} in pack {e.pack.hex()[:16]}"
        if len(sealed) != e.length:
            raise IntegrityError(f"{what}: truncated pack")
        # a known type: entries are checked when decoded (format/pack.entry_problem)
        sealer = self.content_sealer(e.pack, what)
        return open_chunk(sealer, self.keys.ids, blob_id, _KIND[e.type], e.comp, e.raw_length, sealed, what)

    def content_sealer(self, pack: bytes, what: str) -> Sealer:
        """What opens the blobs of `pack`: the data key for a pack written before format 2,
        else the key agreed with its writer key; NotAllowed (exit 13) without a full key."""
        require_full(self.keys)
        writer = self.pack_writers.get(pack)
        if writer is None:
            if self.only_sealed:
                raise IntegrityError(f"{what}: sealed under the data key in a repository made in format 2")
            return self.sealer
        if self.opener is None:  # a full key of format 1 in a repository upgraded to format 2
            raise NotAllowed(
                f"{what} is sealed to the repository's content key, which this key file does not hold: "
                "open the repository with a key added since `amber upgrade`"
            )
        return self.opener.sealer(writer, what)


READ_REFUSED = (
    "this is a write-only (backup) key: it cannot read file content, file names or snapshots. "
    "Open the repository with a full key"
)


def require_full(keys: MasterKeys, what: str = "") -> None:
    """NotAllowed (exit 13) unless `keys` open content: a backup key reads nothing back."""
    if not keys.can_read:
        raise NotAllowed(f"{what + ': ' if what else ''}{READ_REFUSED}")
