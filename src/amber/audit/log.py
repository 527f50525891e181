"""The audit log in storage, in either of its layouts, and signed checkpoints.

    log/tile/…                        a new repository's log: entry bundles and hash tiles
                                      (tiled.py, tiles.py; docs/AUDIT-LOG.md §2.2)
    log/entries/<slot, 12 digits>     the layout before tiles: one sealed event (kind 10) per object
    log/checkpoints/<size, 12 digits> a signed checkpoint note, plaintext (both layouts)

The leaf of an event is SHA-256(0x00 || canonical JSON of the event), the
plaintext, so a verifier holding only the event, a proof, a checkpoint and
the public key can check inclusion without the password.

`AuditLog` tells the layouts apart (`tiled`), appends (a tiled log: O(log n)
reads, put-if-absent on the next bundle block, retry; the layout before tiles is
upgraded by adding tiles at its first append), checks a client's remembered
checkpoint with a consistency proof, and verifies — a tiled log from the
remembered checkpoint (tiledverify.since) or all of it (tiledverify.everything).

In the layout before tiles a storage slot is not a leaf index. The leaves are
the valid entries (sealed by this repository, canonical, well-formed) in slot
order, and each carries its leaf index as `seq`: 0, 1, 2, ... Anything else
under `log/` is a foreign object: reported, skipped, and never able to stop an
append, since the writer takes the first free slot after the last valid entry
(put-if-absent, retry on conflict) and then writes the checkpoint for the new
size. An admin marks a foreign object as examined with a `foreign` event naming
its key and hash. Each client remembers, under
$XDG_STATE_HOME/amber/<repository id>/checkpoint, the last checkpoint it
verified, and refuses a repository whose log is shorter or whose history
differs (a rollback or a fork) with an integrity error.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..clock import Clock, from_iso, to_iso
from ..crypto.aead import KIND_LOG, Sealer
from ..errors import (
    AlreadyExists,
    AmberError,
    CheckpointError,
    IntegrityError,
    NotFound,
    ProofError,
    StorageError,
    UsageError,
)
from ..format import layout
from ..format.canonical import utf8_json
from ..repo import client_state
from ..repo.events import user_name
from ..repo.snapshots import Snapshot, SnapshotStore
from ..storage.base import ObjectInfo, Retention, Storage
from . import authors as authorship
from . import checkpoint as cpfmt
from . import merkle, tiledverify
from . import notes as notepool
from . import summary as summ
from . import tiles as tl
from . import timestamps as stamps
from . import witness as wit
from .entry import parse_entry, validate_entry
from .tiled import Head, TiledStore

RECOVER_AFTER = _dt.timedelta(minutes=10)  # then a snapshot without its event is recorded by others
ENTRIES = layout.LOG_ENTRIES
CHECKPOINTS = layout.LOG_CHECKPOINTS
MAX_SLOT = 10**layout.SEQ_DIGITS - 1
MAX_ENTRY_BYTES = 64 << 20  # no event is this large: a bigger object is foreign without being read
HASH_CHUNK = 8 << 20  # a foreign object too large to read whole is hashed in pieces this size
CLOCK_TOLERANCE = _dt.timedelta(minutes=10)  # event times may differ this much between clients
FOREIGN_BATCH = 1000  # objects named by one `foreign` event
FIRST_WIDTHS = (1, 2, 4, 8, 16, 32, 64, 128, tl.WIDTH)  # the bundle blocks that can hold event 0
MAX_ABANDONED = 10_000  # witness checkpoints one `trust-reset` may give up
LAYOUT_ENV = "AMBER_LOG_LAYOUT"  # "entries": start new logs, and keep old ones, in the layout before tiles


class EventFold(Protocol):
    """A fold of the log's events that a client keeps between runs (`AuditLog.kept_fold`)."""

    size: int
    root: bytes

    def add(self, ev: dict) -> None: ...


F = TypeVar("F", bound=EventFold)


@dataclass
class VerifyReport:
    size: int = 0
    root: bytes = b""
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    checkpoints: int = 0
    remembered: int | None = None
    entries: list = field(default_factory=list, repr=False)  # (event, canonical bytes), as read
    foreign: list = field(default_factory=list)  # ForeignObject, marked or not
    witnesses: list = field(default_factory=list)  # per witness: name, url, newest size, ok
    timestamps: list = field(default_factory=list)  # per RFC 3161 token checked: tsa, size, gen_time, ok

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class ForeignObject:
    """An object under `log/` that is neither a valid entry nor a checkpoint of this log:
    junk, damage, a copy, a replaced entry. `marked_by` is the seq of the `foreign` event
    that explained it (its key, size and bytes as they still are), else None."""

    key: str
    problem: str
    sha256: str | None  # of its bytes; None when they could not be read
    size: int
    marked_by: int | None = None
    reason: str | None = None  # the marking event's reason

    def message(self) -> str:
        return f"{self.key}: {self.problem}"

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class _Scan:
    """One reading of `log/entries/`: the leaves, where each is stored, what is wrong with
    the order of the valid entries, the foreign objects, and every slot taken."""

    entries: list = field(default_factory=list)  # leaves: (event, canonical bytes)
    keys: list = field(default_factory=list)  # the key of each leaf
    homes: list = field(default_factory=list)  # the slot of each leaf
    errors: list = field(default_factory=list)
    foreign: list = field(default_factory=list)
    occupied: set = field(default_factory=set)

    def next_slot(self) -> int:
        """The first free slot after the last leaf's: junk before it was skipped by its own
        writer, junk after it is passed over, junk far beyond it changes nothing."""
        n = self.homes[-1] + 1 if self.homes else 0
        while n in self.occupied:
            n += 1
        if n > MAX_SLOT:
            raise IntegrityError(f"the audit log has no free slot after {self.keys[-1]}")
        return n


class AuditLog:
    """The log of one repository: its storage, its sealer, the key that signs checkpoints, and
    the author key that signs each event this client appends (format 2, audit/authors.py)."""

    def __init__(
        self,
        storage: Storage,
        sealer: Sealer,
        signing: Ed25519PrivateKey,
        repository_id: str,
        clock: Clock,
        key_id: str,
        author: Ed25519PrivateKey | None = None,
    ) -> None:
        self.storage = storage
        self.author = author
        self.sealer = sealer
        self.clock = clock
        self.repository_id = repository_id
        self.key_id = key_id
        self.origin = f"amber/{repository_id}"
        self.signing = signing
        self.public = cpfmt.public_bytes(self.signing)
        self._signer = cpfmt.Signer(self.origin, self.signing)
        self._tiled = False  # once tiles are found they stay: a tiled log never goes back
        self._events: tuple[int, bytes, list] | None = None  # (size, root, events) as last read
        self._folds: dict[str, EventFold] = {}  # kept folds as this process last brought them up to date
        # (events judged, the last of them, the fold after it, the honoured ones) for `honoured`
        self._honoured: tuple[int, dict | None, authorship.Authors, list] = (0, None, authorship.Authors(""), [])
        self.warn = lambda message: None  # hears a witness that could not be reached
        self.cacert: str | None = None  # the private CA of a rest: witness, if any
        self._resetting = False

    # -- which layout --------------------------------------------------------------

    def store(self) -> TiledStore:
        """A reader and writer of the tiled log, for one operation (it caches what it read)."""
        return TiledStore(self.storage, self.sealer)

    def tiled(self) -> bool:
        """Whether this log is stored as tiles (docs/AUDIT-LOG.md §2.2): a valid block of
        bundle 0 exists. Else it is the layout before tiles if anything is stored under
        `log/entries/`, and an empty log takes tiles unless AMBER_LOG_LAYOUT=entries."""
        if self._tiled:
            return True
        store = self.store()
        if any(store.bundle(tl.Place(None, 0, 0, width)) is not None for width in FIRST_WIDTHS):
            self._tiled = True
            return True
        if any(True for _ in self.storage.list(ENTRIES)):
            return False
        return not self.keeps_entries()

    @staticmethod
    def keeps_entries() -> bool:
        return os.environ.get(LAYOUT_ENV, "") == "entries"

    # -- reading -----------------------------------------------------------------

    def entries(self, errors: list | None = None) -> list[tuple[dict, bytes]]:
        """The leaves in order as (event, canonical bytes). Foreign objects are skipped (see
        `foreign_objects`); a missing or doubled event raises unless `errors` collects it."""
        if self.tiled():
            return self._tiled_entries(errors)
        scan = self._scan(self.storage.list(ENTRIES))
        if scan.errors and errors is None:
            raise IntegrityError(scan.errors[0])
        if errors is not None:
            errors.extend(scan.errors)
        return scan.entries

    def honoured(self, errors: list | None = None) -> list[tuple[dict, bytes]]:
        """`entries` without the events the log does not honour (audit/authors.py): in a
        repository of format 2, unsigned ones and those their author may not write. What
        forget, prune, release and the clock guard decide by. Within one process the events
        judged last time are not judged again (`entries` keeps a tiled log's events)."""
        entries = self.entries(errors)
        n, last, fold, kept = self._honoured
        if not n or n > len(entries) or entries[n - 1][0] is not last:
            n, fold, kept = 0, authorship.Authors(self.origin), []  # not the events judged last time
        kept = kept + [e for e in entries[n:] if fold.judge(e[0])[0]]
        self._honoured = (len(entries), entries[-1][0] if entries else None, fold, kept)
        return list(kept)

    def signed_by(self, events: list[dict]) -> list[str]:
        """Who wrote each of `events` (the log's, in order), as `audit log` shows it
        (audit/authors.py `labels`)."""
        return authorship.labels(events, self.origin)

    def foreign_objects(self, digest: bool = True) -> list[ForeignObject]:
        """Every object under `log/` that is not a valid entry or checkpoint of this log, with
        what is wrong and the mark that explains it. One listing of `log/`; every entry and
        checkpoint is read. `digest=False` leaves unhashed the objects too large or badly
        named to read whole, unless a mark names them."""
        if self.tiled():
            store = self.store()
            found = self._everything(store, self.head(store)).foreign
            return self._explain(found, self._tiled_entries([]), digest)
        entries, checkpoints, others = _partition(self.storage.list(layout.LOG))
        scan = self._scan(entries)
        found = scan.foreign + others
        for info in checkpoints:
            got = self._classify_checkpoint(info)
            if isinstance(got, ForeignObject):
                found.append(got)
        return self._explain(found, scan.entries, digest)

    def unexplained(self) -> list[str]:
        """A message for each foreign object no `foreign` event explains."""
        return [f.message() for f in self.foreign_objects(digest=False) if f.marked_by is None]

    def _scan(self, infos: Iterable[ObjectInfo]) -> _Scan:
        scan = _Scan()
        valid = []
        for info in sorted(infos, key=lambda i: i.key):
            slot = layout.log_slot(info.key)
            if slot is None:
                inside = layout.log_slot(info.key[: len(ENTRIES) + layout.SEQ_DIGITS])
                if inside is not None and info.key[len(ENTRIES) + layout.SEQ_DIGITS :].startswith("/"):
                    scan.occupied.add(inside)  # a folder in a slot's place (local storage)
                scan.foreign.append(
                    ForeignObject(info.key, "not an entry's name (12 digits under log/entries/)", None, info.size)
                )
                continue
            scan.occupied.add(slot)
            got = self._open_entry(info)
            if isinstance(got, ForeignObject):
                scan.foreign.append(got)
            elif got is not None:
                valid.append((slot, info.key, *got))
        unreadable = [f for f in scan.foreign if f.problem.startswith("cannot be read")]
        if unreadable and not valid:  # the storage, not an object, is failing: no log to build on
            raise StorageError(unreadable[0].problem.removeprefix("cannot be read: "))
        _order(valid, scan)
        return scan

    def _read(self, key: str) -> bytes:
        """An object's bytes, tried twice: one failed read must not make an entry look foreign
        (an object that can never be read, such as one encrypted with a key amber does not
        hold, stays unreadable and is foreign)."""
        try:
            return self.storage.get(key)
        except StorageError:
            return self.storage.get(key)

    def _open_entry(self, info: ObjectInfo) -> tuple[dict, bytes, str, int] | ForeignObject | None:
        """(event, canonical bytes, sha256 and size as stored) of a valid entry; what is wrong
        otherwise; None if it is gone."""
        key = info.key
        if info.size > MAX_ENTRY_BYTES:
            return ForeignObject(key, f"{info.size} bytes, larger than any entry", None, info.size)
        try:
            data = self._read(key)
        except NotFound:
            return None  # deleted since it was listed
        except StorageError as e:
            return ForeignObject(key, f"cannot be read: {e}", None, info.size)
        digest = hashlib.sha256(data).hexdigest()

        def foreign(problem: str) -> ForeignObject:
            return ForeignObject(key, problem, digest, len(data))

        try:
            raw = self.sealer.open(KIND_LOG, data, key)
        except IntegrityError:
            return foreign("content does not authenticate: not an entry of this repository (junk, damaged or replaced)")
        try:
            ev = json.loads(raw)
        except (ValueError, RecursionError):
            return foreign("authentic, but not JSON")
        if not isinstance(ev, dict) or utf8_json(ev) != raw:
            return foreign("authentic, but not a canonical event")
        if type(ev.get("seq")) is not int or ev["seq"] < 0:
            return foreign("authentic, but its seq is not a position in the log")
        try:
            validate_entry(ev, key)
        except IntegrityError as e:
            return foreign(f"authentic, but malformed: {str(e).removeprefix(key + ': ')}")
        return ev, raw, digest, len(data)

    def _classify_checkpoint(self, info: ObjectInfo) -> cpfmt.Checkpoint | ForeignObject | None:
        """The checkpoint stored under `info.key` if it is one of this log's, stored under its
        own size; what is wrong otherwise; None if it is gone."""
        key = info.key
        size = layout.log_slot(key, CHECKPOINTS)
        if size is None:
            return ForeignObject(key, "not a checkpoint's name (12 digits under log/checkpoints/)", None, info.size)
        if info.size > cpfmt.MAX_NOTE:
            return ForeignObject(key, f"{info.size} bytes, larger than any checkpoint", None, info.size)
        try:
            note = self.storage.get(key, 0, cpfmt.MAX_NOTE + 1)  # a note is never longer
        except NotFound:
            return None
        except StorageError as e:
            return ForeignObject(key, f"cannot be read: {e}", None, info.size)
        digest = hashlib.sha256(note).hexdigest()
        try:
            cp = cpfmt.verify(note, self.origin, self.public)
        except CheckpointError as e:
            return ForeignObject(key, f"not a checkpoint of this log: {e}", digest, len(note))
        if cp.origin != self.origin:
            return ForeignObject(key, f"a checkpoint of another log ({cp.origin})", digest, len(note))
        if cp.size != size:
            return ForeignObject(key, f"a checkpoint of size {cp.size}, stored under another size", digest, len(note))
        return cp

    def _explain(self, found: list[ForeignObject], entries: list, digest: bool) -> list[ForeignObject]:
        """`found`, each with the `foreign` event that marked it as it still is, if any (a mark
        the log does not honour, as by a backup key of format 2, explains nothing)."""
        if not found:
            return []
        marks = foreign_marks(authorship.honoured(entries, self.origin, frozenset({"foreign"})))
        marked_keys = {k for k, _sha, _size in marks}
        out = []
        for f in sorted(found, key=lambda f: f.key):
            if f.sha256 is None and (digest or f.key in marked_keys):
                f = replace(f, sha256=self._digest(f.key, f.size))
            mark = marks.get((f.key, f.sha256, f.size))
            out.append(f if mark is None else replace(f, marked_by=mark[0], reason=mark[1]))
        return out

    def _digest(self, key: str, size: int) -> str | None:
        """SHA-256 of an object, read in pieces; None if it cannot be read (gone, or a name
        that is not a valid storage key)."""
        h = hashlib.sha256()
        try:
            if size <= HASH_CHUNK:
                h.update(self.storage.get(key))
            for offset in range(0, size if size > HASH_CHUNK else 0, HASH_CHUNK):
                h.update(self.storage.get(key, offset, min(HASH_CHUNK, size - offset)))
        except (NotFound, UsageError, StorageError):
            return None
        return h.hexdigest()

    @staticmethod
    def init_event(storage: Storage, sealer: Sealer) -> dict | None:
        """The log's first entry alone (the `init` event, which pins the config), authenticated
        under `sealer`; None when the log has no entry 0. IntegrityError when it does not open
        or is not the canonical, well-formed event 0."""
        key = layout.log_entry(0)
        try:
            stored = storage.get(key)
        except NotFound:
            return AuditLog._first_tiled(storage, sealer)
        raw = sealer.open(KIND_LOG, stored, key)
        try:
            ev = json.loads(raw)
        except (ValueError, RecursionError):
            raise IntegrityError(f"{key}: not valid JSON") from None
        if not isinstance(ev, dict) or ev.get("seq") != 0 or utf8_json(ev) != raw:
            raise IntegrityError(f"{key}: not the canonical event number 0")
        return validate_entry(ev, key)

    @staticmethod
    def _first_tiled(storage: Storage, sealer: Sealer) -> dict | None:
        """Event 0 of a tiled log, from the first bundle block that holds it (`000.p/1`, or the
        block an upgrade wrote); None when there is none, IntegrityError when one is junk."""
        store = TiledStore(storage, sealer)
        for width in FIRST_WIDTHS:
            place = tl.Place(None, 0, 0, width)
            got = store.bundle(place)
            if got is not None:
                return parse_entry(got[1][0], 0, f"{store.bundle_key(place)} (event 0)")
        if store.problems.foreign:
            key, problem = next(iter(store.problems.foreign.items()))
            raise IntegrityError(f"{key}: {problem}")
        return None

    @staticmethod
    def present(storage: Storage) -> bool:
        """Whether a log has begun here, in either layout (the names its first event takes)."""
        first = (layout.log_entry(0), tl.bundle_of(1).key(), tl.Place(None, 0, 0, tl.WIDTH).key())
        return any(storage.exists(key) for key in first)

    def leaves(self, entries) -> list[bytes]:
        return [merkle.leaf_hash(raw) for _ev, raw in entries]

    def vkey(self) -> str:
        return cpfmt.verifier_key(self.origin, self.public)

    def latest_checkpoint(self) -> bytes | None:
        """The newest stored checkpoint signed by this repository's key and stored under its own
        size; foreign objects among the checkpoints are passed over (`verify` reports them).
        When none verifies, the newest as stored (its reader reports it); None for no checkpoint."""
        if self.tiled():
            size = self.store().head(0).size
            for n in range(size, max(0, size - 16), -1):
                info = ObjectInfo(layout.log_checkpoint(n), 0)
                if isinstance(self._classify_checkpoint(info), cpfmt.Checkpoint):
                    return self._stored_checkpoint(info.key)
        infos = sorted(self.storage.list(CHECKPOINTS), key=lambda i: i.key, reverse=True)
        newest = None
        for info in infos:
            got = self._classify_checkpoint(info)
            if isinstance(got, cpfmt.Checkpoint):
                return self._stored_checkpoint(info.key)
            if newest is None and isinstance(got, ForeignObject) and got.sha256 is not None:
                newest = self._stored_checkpoint(info.key)
        return newest

    # -- writing -----------------------------------------------------------------

    def append(self, kind: str, snapshot: str | None = None, lock=None, **details) -> dict:
        """Append one event; `lock` (a Retention) protects the entry and its checkpoint."""
        actor = {"host": socket.gethostname(), "user": user_name(), "key": self.key_id[:16]}

        def event(seq: int) -> dict:
            ev = {
                "v": 1,
                "seq": seq,
                "time": to_iso(self.clock.now()),
                "type": kind,
                "actor": actor,
                "details": details,
            }
            if snapshot is not None:
                ev["snapshot"] = snapshot
            return authorship.sign(ev, self.author, self.origin) if self.author is not None else ev

        if self.tiled() or not self.keeps_entries():
            return self._append_tiled(event, lock)
        remembered = self.remembered()  # before the log is read: another writer may extend both
        scan = self._writable_scan()
        leaves = self.leaves(scan.entries)
        self._check_remembered(leaves, remembered)
        blocked: set[int] = set()  # slots taken by something no listing shows (an empty folder)
        for _ in range(100):
            ev = event(len(leaves))
            raw = utf8_json(ev)
            slot = scan.next_slot()
            try:
                self.storage.put(layout.log_entry(slot), self.sealer.seal(KIND_LOG, raw), retention=lock)
                break
            except AlreadyExists:  # another writer, or junk, took this slot: read on and retry
                scan = self._writable_scan()
                leaves = self.leaves(scan.entries)
                if slot not in scan.occupied:
                    blocked.add(slot)
                scan.occupied |= blocked
        else:
            raise AmberError("could not append to the audit log (too much contention)")
        leaves = leaves + [merkle.leaf_hash(raw)]
        self.write_checkpoint(leaves, lock)
        return ev

    def _append_tiled(self, event, lock: Retention | None) -> dict:
        """Append to the tiled log (§7): check the history from the remembered checkpoint, claim
        the next bundle place (put-if-absent; retry one further when another writer took it),
        write the tiles and the checkpoint, remember it. A log in the layout before tiles is
        upgraded first, by adding its bundles and tiles."""
        remembered = self.remembered()  # before the log is read: another writer may extend both
        store = self.store()
        if not self.tiled():
            self._upgrade(store, remembered)
        head = self._tiled_history(store, remembered)
        for _ in range(100):
            ev = event(head.size)
            new = store.append(head, utf8_json(ev), lock)
            if new is not None:
                break
            known = cpfmt.Checkpoint(self.origin, head.size, head.root)
            store = self.store()
            head = self.head(store, head.size + 1)
            self._consistent(store, head, known, "the log this append read a moment ago")
        else:
            raise AmberError("could not append to the audit log (too much contention)")
        self.write_checkpoint_at(new.size, new.root, lock)
        self.appended(new, store)
        return ev

    def consistency_proof(self, m: int, n: int) -> list[bytes]:
        """The RFC 9162 proof that the tree of `m` events is a prefix of the tree of `n`
        (0 < m <= n <= the log's size), from O(log n) tiles: what a witness asks for."""
        store = self.store()
        if not 0 < m <= n <= self.head(store, n).size:
            raise UsageError(f"no consistency proof from {m} to {n} events in this log")
        return store.consistency(m, n)

    def inclusion_proof(self, index: int, n: int) -> list[bytes]:
        """The RFC 9162 proof that event `index` is in the tree of `n` events, from tiles."""
        store = self.store()
        if not 0 <= index < n <= self.head(store, n).size:
            raise UsageError(f"no inclusion proof of event {index} in a tree of {n} events in this log")
        return store.inclusion(index, n)

    def appended(self, head: Head, store: TiledStore) -> None:
        """Publish the new checkpoint to every witness. One that cannot be reached or refuses
        is a warning: the change is stored and recorded; `audit verify` reports the gap."""
        if self._resetting:
            return  # a `trust-reset` gives its witnesses a reset instead
        cp = cpfmt.Checkpoint(self.origin, head.size, head.root)
        note = self.note(head.size, head.root)
        for w in self.witnesses(self.warn):
            try:
                w.publish(note, cp, lambda m: store.consistency(m, head.size))
            except (AmberError, OSError, KeyError) as e:
                self.warn(f"witness {w.name}: the checkpoint of {head.size} events was not published: {e}")

    # -- witnesses (witness.py) ---------------------------------------------------------

    def witness_config(self) -> dict[str, dict]:
        """Every witness the log names, and those this client remembers (a rolled-back log may
        have lost their events); the log's are mirrored into the client state."""
        logged = self.summary().witnesses if self.tiled() else {}
        wit.mirror(self.repository_id, logged)
        found = {**wit.mirrored(self.repository_id), **logged}
        return {**self._serving_witness(found), **found}

    def _serving_witness(self, found: dict[str, dict]) -> dict[str, dict]:
        """A repository on `amber serve` has that server as a witness too (SERVER.md §10), its
        key pinned on first use in the client's mirror; nothing when one is configured already."""
        url = wit.serving_url(self.storage)
        if url is None or not self.tiled() or any(doc.get("url") == url for doc in found.values()):
            return {}
        try:
            doc = {"name": wit.SERVING, "url": url, "server_key": wit.fetch_server_key(url, self.cacert)}
        except AmberError as e:
            self.warn(f"the key of the server at {url} could not be read to pin it: {e}")
            return {}
        wit.mirror(self.repository_id, {wit.SERVING: doc})
        return {wit.SERVING: doc}

    def witnesses(self, report) -> list[wit.Witness]:
        """Every configured witness that can be opened; `report(message)` hears the others."""
        out = []
        for name, doc in sorted(self.witness_config().items()):
            try:
                out.append(wit.open_witness(doc, self.repository_id, self.vkey(), self.cacert, self.storage))
            except (AmberError, KeyError, OSError) as e:
                report(f"witness {name} ({doc.get('url')}) cannot be reached: {e}")
        return out

    def with_cosignatures(self, note: bytes, cp: cpfmt.Checkpoint) -> bytes:
        """`note` with the cosignature line of each `amber serve` witness this client kept for
        exactly this checkpoint (for evidence bundles)."""
        for w in self.witnesses(lambda message: None):
            line = w.cosignature(cp) if isinstance(w, wit.RestWitness) else None
            if line is not None and line.encode() not in note:
                note += line.encode()
        return note

    def add_witness(self, name: str, url: str, **details) -> dict:
        """Record a witness (a `witness` event, then mirrored in the client state); the
        checkpoint of that event is its first."""
        if not self.tiled():
            raise UsageError("witnesses need the tiled audit log (append once without AMBER_LOG_LAYOUT=entries)")
        if not name or not name.isascii() or not name.replace("-", "").replace("_", "").isalnum():
            raise UsageError(f"invalid witness name {name!r}: letters, digits, '-' and '_'")
        if name in self.witness_config():
            raise UsageError(f"there is a witness named {name} already")
        doc = {"name": name, "url": url, **{k: v for k, v in details.items() if v}}
        # refuse what cannot be opened
        wit.open_witness(doc, self.repository_id, self.vkey(), self.cacert, self.storage)
        return self.append(wit.EVENT, None, None, **doc)  # `appended` mirrors it and publishes to it

    def compare_witnesses(self, rep: VerifyReport, store: TiledStore, head: Head) -> list[dict]:
        """Check each witness's newest checkpoint against the log at `head`: signed by this
        log's key, and a prefix of it (a consistency proof from tiles). A log shorter than it
        is a rollback, one that does not contain it a fork: both are errors naming the witness
        and the checkpoint. A witness that cannot be reached is a warning."""
        abandoned = self.summary().abandoned
        out = []
        for w in self.witnesses(rep.warnings.append):
            if isinstance(w, wit.TsaWitness):
                continue  # its tokens are checked with the log's objects (timestamps.py)
            status: dict = {"name": w.name, "url": w.url, "size": None, "ok": True}
            out.append(status)
            before = len(rep.errors)
            try:
                held = w.newest({obj for name, obj in abandoned if name == w.name})
            except (AmberError, OSError) as e:
                rep.warnings.append(f"witness {w.name} ({w.url}) cannot be reached: {e}")
                status.update(ok=None)
                continue
            rep.errors.extend(held.errors)
            for key, note in held.notes:
                what = f"witness {w.name}: {key}"
                try:
                    cp = cpfmt.verify(note, self.origin, self.public)
                except CheckpointError as e:
                    rep.errors.append(f"{what}: not a checkpoint of this log ({self.origin}): {e}")
                    continue
                status["size"] = cp.size
                try:
                    self._consistent(store, head, cp, what)
                except IntegrityError as e:
                    rep.errors.append(str(e))
            if w.rest and len(rep.errors) == before and (status["size"] or 0) < head.size:
                rep.errors.append(
                    f"witness {w.name}: the log's change to {head.size} events lacks a cosignature "
                    f"(the server cosigned {status['size'] or 0} events last)"
                )
            status["ok"] = len(rep.errors) == before
        return out

    def reset_trust(self, reason: str) -> tuple[dict, list[str]]:
        """After a restore from an older copy: record a `trust-reset` event naming every witness
        checkpoint this log does not extend, forget the client's remembered checkpoint, and
        give each witness the checkpoint that follows the event (an `amber serve` then cosigns
        from it). Returns the event and the witnesses that could not be told."""
        reason = (reason or "").strip()
        if not reason:
            raise UsageError("give the reason with --reason TEXT: it is recorded in the audit log")
        store = self.store()
        head = self.head(store)
        given_up = {(name, obj) for name, obj in self.summary().abandoned}
        abandoned: list[dict] = []
        failed: list[str] = []
        witnesses = self.witnesses(failed.append)
        for w in witnesses:
            abandoned += self._abandoned(w, store, head, {obj for name, obj in given_up if name == w.name})
        self._forget_remembered()
        self._resetting = True
        try:
            ev = self.append(wit.RESET, None, None, reason=reason, abandoned=abandoned, size=head.size)
        finally:
            self._resetting = False
        store = self.store()
        new = self.head(store, head.size + 1)
        cp = cpfmt.Checkpoint(self.origin, new.size, new.root)
        for w in witnesses:
            try:
                w.reset(self.note(new.size, new.root), cp)
            except (AmberError, OSError) as e:
                failed.append(f"witness {w.name}: {e}")
        return ev, failed

    def _abandoned(self, w: wit.Witness, store: TiledStore, head: Head, skip: set[str]) -> list[dict]:
        """The checkpoints of witness `w` this log does not extend, newest first, down to the
        first it does (a witness keeps one history: below that all are prefixes)."""
        out: list[dict] = []
        for _ in range(MAX_ABANDONED):
            notes = w.newest(skip | {a["object"] for a in out}).notes
            bad = [(key, note) for key, note in notes if not self._extends_note(store, head, note)]
            if not bad:
                return out
            out += [
                {"witness": w.name, "object": key, "checkpoint": note.decode(errors="replace")} for key, note in bad
            ]
            if w.rest:
                return out
        raise UsageError(f"witness {w.name} holds more than {MAX_ABANDONED} checkpoints this log does not extend")

    def _extends_note(self, store: TiledStore, head: Head, note: bytes) -> bool:
        try:
            cp = cpfmt.verify(note, self.origin, self.public)
        except CheckpointError:
            return False
        return self._extends(store, head, cp.size, cp.root)

    def _forget_remembered(self) -> None:
        try:
            os.remove(self.state_path())
        except OSError:
            pass

    def _upgrade(self, store: TiledStore, remembered: bytes | None) -> None:
        """Store a log of the layout before tiles as bundles and tiles too (only adding
        objects); its entries stay where they are and `verify --full` compares them."""
        scan = self._writable_scan()
        self._check_remembered(self.leaves(scan.entries), remembered)
        store.write_all([raw for _ev, raw in scan.entries])
        self._tiled = True

    def head(self, store: TiledStore, hint: int = 0) -> Head:
        """The tiled log's head, searched from `hint`; from the start if that fails (a log
        rolled back below the hint)."""
        try:
            return store.head(hint)
        except IntegrityError:
            if hint == 0:
                raise
            return store.head(0)

    def _tiled_history(self, store: TiledStore, remembered: bytes | None) -> Head:
        """The head, refused (IntegrityError) unless it extends the remembered checkpoint."""
        what = "the checkpoint this client last verified"
        cp = self._verified(remembered, what) if remembered is not None else None
        head = self.head(store, cp.size if cp is not None else 0)
        if cp is not None:
            self._consistent(store, head, cp, what)
        return head

    def _verified(self, note: bytes, what: str) -> cpfmt.Checkpoint:
        try:
            return cpfmt.verify(note, self.origin, self.public)
        except CheckpointError as e:
            raise IntegrityError(f"{what}: {e}") from None

    def _consistent(self, store: TiledStore, head: Head, cp: cpfmt.Checkpoint, what: str) -> None:
        """Raise unless the tiled log at `head` extends the checkpoint `cp`: an RFC 9162
        consistency proof from O(log n) tiles."""
        consistent(cp, head.size, head.root, lambda: store.consistency(cp.size, head.size), what)

    def summary(self) -> summ.Summary:
        """The fold of every event a backup needs (audit/summary.py). A tiled log reads only the
        entries added since this client's kept summary, after a consistency proof shows the log
        still extends it; the layout before tiles reads every entry."""
        return self.kept_fold("log-summary.json", lambda: summ.Summary.of(self.origin), summ.load, summ.save)

    def kept_fold(
        self, name: str, new: Callable[[], F], load: Callable[[str], F | None], save: Callable[[str, F], None]
    ) -> F:
        """A fold of every event (an object with `size`, `root` and `add(event)`), kept by this
        client in `name` under its cache folder. A tiled log reads only the entries added since
        the kept fold, after a consistency proof shows the log still extends its root (else it
        starts over); the layout before tiles reads every entry. A fold that meets damage is
        returned as far as it got and not kept: damage is `audit verify`'s to report."""
        if not self.tiled():
            out = new()
            for ev, _raw in self.entries(errors=[]):
                out.add(ev)
            return out
        path = os.path.join(client_state.cache_dir(self.repository_id), name)
        memo = self._folds.get(name)  # a command asks several times: the file is read once
        kept = memo if memo is not None else load(path)
        store = self.store()
        head = self.head(store, kept.size if kept is not None else 0)
        if memo is not None and (memo.size, memo.root) == (head.size, head.root):
            return memo  # type: ignore[return-value]  # stored under this name by this method
        if kept is None or not self._extends(store, head, kept.size, kept.root):
            kept = new()
        try:
            raws = store.entries(kept.size, head.size, head.size)
            for i, raw in enumerate(raws, kept.size):
                kept.add(parse_entry(raw, i, f"{store.entry_key(i, head.size)} (event {i})"))
        except IntegrityError:
            return kept
        kept.size, kept.root = head.size, head.root
        save(path, kept)
        self._folds[name] = kept
        return kept

    def _extends(self, store: TiledStore, head: Head, size: int, root: bytes) -> bool:
        try:
            consistent(
                cpfmt.Checkpoint(self.origin, size, root),
                head.size,
                head.root,
                lambda: store.consistency(size, head.size),
                "",
            )
            return True
        except (IntegrityError, ValueError):
            return False

    def logged_snapshots(self) -> set[str]:
        """Every snapshot id a `snapshot` event names."""
        return self.summary().snapshots

    def _tiled_entries(self, errors: list | None) -> list[tuple[dict, bytes]]:
        """Every event of the tiled log. Within one process the events read last time are kept
        with their size and root: a command that replays the log several times (forget: the
        protection, the clock guard, the overrides) reads it once, then only the head, a
        consistency proof and what was appended since."""
        store = self.store()
        kept = self._events
        out: list[tuple[dict, bytes]] = []
        try:
            head = self.head(store, kept[0] if kept else 0)
            if kept is None or not self._extends(store, head, kept[0], kept[1]):
                kept = (0, b"", [])
            out = list(kept[2])
            raws = store.entries(kept[0], head.size, head.size)
            for i, raw in enumerate(raws, kept[0]):
                out.append((parse_entry(raw, i, f"{store.entry_key(i, head.size)} (event {i})"), raw))
        except IntegrityError as e:
            if errors is None:
                raise
            errors.append(str(e))
            return out
        self._events = (head.size, head.root, out)
        return list(out)

    def _writable_scan(self) -> _Scan:
        """The log as a writer reads it: foreign objects skipped, a missing or doubled event
        refused (an append would build on a log that is not the one others verified)."""
        scan = self._scan(self.storage.list(ENTRIES))
        if scan.errors:
            raise IntegrityError(scan.errors[0], remedy="audit-verify")
        return scan

    def mark_foreign(self, keys: Iterable[str] | None, reason: str) -> list[dict]:
        """Record that an admin examined foreign objects (`keys`, or every unexplained one when
        None): `foreign` events naming each object's key, size and SHA-256, and the reason.
        Returns the events appended (none when nothing is left to mark)."""
        reason = (reason or "").strip()
        if not reason:
            raise UsageError("marking objects as foreign needs a reason")
        found = {f.key: f for f in self.foreign_objects()}
        if keys is None:
            chosen = [f for f in found.values() if f.marked_by is None]
        else:
            missing = [k for k in keys if k not in found]
            if missing:
                raise UsageError(f"not a foreign object of the audit log: {', '.join(missing[:10])}")
            chosen = [found[k] for k in dict.fromkeys(keys)]
        events = []
        for i in range(0, len(chosen), FOREIGN_BATCH):
            objects = [
                {"key": f.key, "sha256": f.sha256, "size": f.size, "problem": f.problem}
                for f in chosen[i : i + FOREIGN_BATCH]
            ]
            events.append(self.append("foreign", None, None, objects=objects, reason=reason))
        return events

    def write_checkpoint(self, leaves: list[bytes], retention=None) -> bytes:
        return self.write_checkpoint_at(len(leaves), merkle.root(leaves), retention)

    def write_checkpoint_at(self, size: int, root: bytes, retention=None) -> bytes:
        cp = cpfmt.Checkpoint(self.origin, size, root)
        note = self.note(size, root)
        try:
            self.storage.put(layout.log_checkpoint(size), note, retention=retention)
        except AlreadyExists:
            # another writer's checkpoint of the same log is as good as ours; anything else found
            # at this slot (junk, another repository's, another history's) is never remembered:
            # the client remembers its own signed note, and `audit verify` reports the object
            stored = self._stored_checkpoint(layout.log_checkpoint(size))
            if stored is not None and self.matches(stored, cp):
                note = stored
        self.remember(note)
        return note

    def _stored_checkpoint(self, key: str) -> bytes | None:
        """The note stored under `key`; None if there is none, or none that can be read."""
        try:
            return self.storage.get(key, 0, cpfmt.MAX_NOTE + 1)  # a note is never longer
        except (NotFound, StorageError):
            return None

    def matches(self, note: bytes, cp: cpfmt.Checkpoint) -> bool:
        """Whether `note` is signed by this repository's key for exactly this size and root."""
        try:
            got = cpfmt.verify(note, self.origin, self.public)
        except CheckpointError:
            return False
        return got.origin == cp.origin and got.size == cp.size and got.root == cp.root

    def check_history(self) -> None:
        """Refuse (IntegrityError) a log that does not extend what this client last verified."""
        remembered = self.remembered()
        if self.tiled():
            self._tiled_history(self.store(), remembered)
            return
        self._check_remembered(self.leaves(self.entries()), remembered)

    # -- the client's memory ---------------------------------------------------------

    def state_path(self) -> str:
        return client_state.state_file(self.repository_id, "checkpoint")

    def remembered(self) -> bytes | None:
        try:
            with open(self.state_path(), "rb") as f:
                return f.read(cpfmt.MAX_NOTE)
        except OSError:
            return None

    def remember(self, note: bytes) -> None:
        old = self.remembered()
        if old is not None:
            try:
                if cpfmt.parse(old)[0].size > cpfmt.parse(note)[0].size:
                    return
            except CheckpointError:
                pass
        path = self.state_path()
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(note)
            os.replace(tmp, path)
        except OSError:
            pass

    def _check_remembered(self, leaves: list[bytes], note: bytes | None = None, what: str = "") -> int | None:
        note = note if note is not None else self.remembered()
        if note is None:
            return None
        what = what or "the checkpoint this client last verified"
        try:
            cp = cpfmt.verify(note, self.origin, self.public)
        except CheckpointError as e:
            raise IntegrityError(f"{what}: {e}") from None
        check_consistency(cp, leaves, what)
        return cp.size

    # -- the parts tiled verification uses (tiledverify.Log) -------------------------------

    def foreign(self, key: str, problem: str, size: int) -> ForeignObject:
        return ForeignObject(key, problem, None, size)

    def note(self, size: int, root: bytes) -> bytes:
        """The checkpoint this log's key signs for `size` and `root` (deterministic: Ed25519)."""
        return self._signer.sign(cpfmt.Checkpoint(self.origin, size, root))

    def notes(self, wanted: list[cpfmt.Checkpoint]) -> notepool.Notes:
        """The note this log's key signs for each of `wanted`, in order (signed ahead, notes.py)."""
        return notepool.ahead(self._signer, self.signing, wanted)

    def classify_checkpoint(self, info: ObjectInfo):
        return self._classify_checkpoint(info)

    def legacy_leaves(self, infos: list[ObjectInfo]) -> tuple[list[bytes], list, list[str]]:
        """(leaves, foreign objects, errors) of the entries under `log/entries/` (an upgraded log)."""
        scan = self._scan(infos)
        return self.leaves(scan.entries), scan.foreign, scan.errors

    def _everything(self, store: TiledStore, head: Head) -> tiledverify.Found:
        with tiledverify.uncollected():
            listing = list(self.storage.list(layout.LOG))
            legacy = [i for i in listing if i.key.startswith(ENTRIES)]
            tokens = [i for i in listing if i.key.startswith(stamps.PREFIX)]
            others = [i for i in listing if not i.key.startswith((ENTRIES, stamps.PREFIX))]
            del listing
            found = tiledverify.everything(self, store, head, legacy, others)
        self._timestamps(store, head, found, None, tokens)
        return found

    def _timestamps(self, store: TiledStore, head: Head, found: tiledverify.Found, lo: int | None, tokens=()) -> None:
        """Check the TSA witnesses' tokens (timestamps.py): those `tokens` listed (all of them),
        or, given `lo`, those of the checkpoints after size `lo` and the head's."""
        pinned, problems = stamps.chains(self.witness_config())
        found.errors.extend(problems)
        if lo is None:
            stamps.listed(self, store, head, list(tokens), pinned, found)
        else:
            stamps.since(self, store, head, lo, pinned, found)

    # -- verification ------------------------------------------------------------------

    def _settled(
        self, store: TiledStore, head: Head, cp: cpfmt.Checkpoint | None
    ) -> tuple[TiledStore, Head, tiledverify.Found]:
        """The whole log verified (`cp` None) or what came after `cp`, read again (at most
        twice more) while what was found beyond the head or missing at its edge is explained
        by appends running meanwhile: an appender claims its bundle block first and writes
        the tiles after it, so a reader can meet a head whose tiles are not there yet, or
        tiles of entries that came after the head it read."""

        def run(store: TiledStore, head: Head) -> tiledverify.Found:
            return self._everything(store, head) if cp is None else tiledverify.since(self, store, head, cp)

        found = run(store, head)
        for attempt in range(2):
            if not (found.beyond or found.missing):
                break
            time.sleep(0.2 * (attempt + 1))
            fresh = self.store()
            try:
                later = self.head(fresh, head.size)
            except IntegrityError:
                break
            if later.size == head.size and not any(self.storage.exists(k) for k in found.missing):
                break  # nothing moved: what was found stands
            store, head = fresh, later
            found = run(store, head)
        return store, head, found

    def verify(
        self, external: bytes | None = None, remember: bool = True, full: bool = False, events: bool = False
    ) -> VerifyReport:
        """Check the log (§11). A tiled log is verified from this client's remembered
        checkpoint — a consistency proof and the entries added since — unless `full` (or
        nothing is remembered): then every object under `log/` is read. `events` fills
        `report.entries` with every event, for the checks of their meaning (`check.py`)."""
        if self.tiled():
            return self._verify_tiled(external, remember, full, events)
        rep = VerifyReport()
        # what can only have been written before the entries it covers is read first, so a
        # concurrent writer never makes a checkpoint look longer than the log read after it
        remembered = self.remembered()
        cp_infos = sorted(self.storage.list(CHECKPOINTS), key=lambda i: i.key)
        entry_infos, _checkpoints, others = _partition(self.storage.list(layout.LOG))
        scan = self._scan(entry_infos)
        rep.errors.extend(scan.errors)
        entries = scan.entries
        leaves = self.leaves(entries)
        rep.size, rep.root = len(leaves), merkle.root(leaves)
        found = scan.foreign + others
        for info in cp_infos:
            got = self._classify_checkpoint(info)
            if isinstance(got, ForeignObject):
                found.append(got)
            elif got is not None:
                try:
                    check_consistency(got, leaves, info.key)
                    rep.checkpoints += 1
                except IntegrityError as e:
                    rep.errors.append(str(e))
        self._checkpoint_warnings(rep, {i.key for i in cp_infos}, len(leaves))
        rep.foreign = self._explain(found, entries, digest=False)
        for f in rep.foreign:
            if f.marked_by is None:
                rep.errors.append(f"{f.message()} (a foreign object, not marked as examined)")
            else:
                rep.warnings.append(f"{f.key}: known foreign object, marked by event {f.marked_by}: {f.reason}")
        rep.warnings.extend(clock_warnings(entries, self.clock.now()))
        rep.entries = entries
        for note, what in (
            (remembered, "the checkpoint this client last verified"),
            (external, "the given checkpoint"),
        ):
            if note is None:
                continue
            try:
                size = self._check_remembered(leaves, note, what)
                if what.startswith("the checkpoint this"):
                    rep.remembered = size
            except IntegrityError as e:
                rep.errors.append(str(e))
        if rep.ok and remember and leaves:
            note = self._stored_checkpoint(layout.log_checkpoint(len(leaves)))
            if note is not None and self.matches(note, cpfmt.Checkpoint(self.origin, len(leaves), rep.root)):
                self.remember(note)
        return rep

    def _verify_tiled(self, external: bytes | None, remember: bool, full: bool, events: bool) -> VerifyReport:
        rep = VerifyReport()
        remembered = self.remembered()  # first: a writer may extend the log and this file meanwhile
        store = self.store()
        what = "the checkpoint this client last verified"
        cp = None
        if remembered is not None:
            try:
                cp = self._verified(remembered, what)
            except IntegrityError as e:
                rep.errors.append(str(e))
        try:
            head = self.head(store, cp.size if cp is not None and not full else 0)
        except IntegrityError as e:
            rep.errors.append(str(e))
            return rep
        rep.size, rep.root = head.size, head.root
        whole = full or cp is None or cp.size == 0 or cp.size > head.size
        store, head, found = self._settled(store, head, None if whole else cp)
        if not whole:
            self._timestamps(store, head, found, cp.size if cp is not None else 0)
        rep.errors.extend(found.errors)
        rep.warnings.extend(found.warnings)
        rep.witnesses = self.compare_witnesses(rep, store, head)
        rep.timestamps = found.timestamps
        rep.checkpoints = found.checkpoints
        if whole:
            present = found.listed
            if any(layout.log_checkpoint(size) not in present for size in range(1, head.size + 1)):
                present = {i.key for i in self.storage.list(CHECKPOINTS)}  # written since, perhaps
            self._checkpoint_warnings(rep, present, head.size)
        else:
            rep.checkpoints += self._head_checkpoint(head, rep)
        entries = found.entries if whole else []
        if (events and not whole) or (found.foreign and not whole):
            entries = self._tiled_entries(rep.errors if events else [])
        rep.foreign = self._explain(found.foreign, entries, digest=False)
        for f in rep.foreign:
            if f.marked_by is None:
                rep.errors.append(f"{f.message()} (a foreign object, not marked as examined)")
            else:
                rep.warnings.append(f"{f.key}: known foreign object, marked by event {f.marked_by}: {f.reason}")
        rep.warnings.extend(clock_warnings(found.entries, self.clock.now()))
        rep.entries = entries if events else []
        for note, label in ((remembered, what), (external, "the given checkpoint")):
            if note is None:
                continue
            try:
                given = self._verified(note, label)
                self._consistent(store, head, given, label)
                if note is remembered:
                    rep.remembered = given.size
            except IntegrityError as e:
                if str(e) not in rep.errors:
                    rep.errors.append(str(e))
        if rep.ok and remember and head.size:
            note = self._stored_checkpoint(layout.log_checkpoint(head.size))
            if note is not None and self.matches(note, cpfmt.Checkpoint(self.origin, head.size, head.root)):
                self.remember(note)
        return rep

    def _head_checkpoint(self, head: Head, rep: VerifyReport) -> int:
        """Check the stored checkpoint of the head's size: 1 if it is this log's, else 0 with a
        warning (missing) or an error (another root, or not a checkpoint of this log)."""
        if head.size == 0:
            return 0
        key = layout.log_checkpoint(head.size)
        got = self._classify_checkpoint(ObjectInfo(key, 0))
        if got is None:
            rep.warnings.append(
                f"no checkpoint for the full log of {head.size} entries (a writer "
                "stopped between its entry and its checkpoint)"
            )
            return 0
        if isinstance(got, ForeignObject):
            rep.errors.append(f"{got.message()} (a foreign object, not marked as examined)")
            return 0
        if got.root != head.root:
            rep.errors.append(
                f"{key} (size {got.size}) is not a prefix of the log now found: its history was rewritten or forked"
            )
            return 0
        return 1

    @staticmethod
    def _checkpoint_warnings(rep: VerifyReport, present: set[str], size: int) -> None:
        """Every append writes the checkpoint of its size: say which sizes have none stored."""
        if size and layout.log_checkpoint(size) not in present:
            rep.warnings.append(
                f"no checkpoint for the full log of {size} entries (a writer "
                "stopped between its entry and its checkpoint)"
            )
        for n in range(1, size):
            if layout.log_checkpoint(n) not in present:
                rep.warnings.append(
                    f"{CHECKPOINTS}{n:012d}: missing (deleted, or its writer stopped before writing it)"
                )


def _partition(infos: Iterable[ObjectInfo]) -> tuple[list[ObjectInfo], list[ObjectInfo], list[ForeignObject]]:
    """One listing of `log/` as (entries, checkpoints, foreign objects outside both)."""
    entries, checkpoints, others = [], [], []
    for info in infos:
        if info.key.startswith(ENTRIES):
            entries.append(info)
        elif info.key.startswith(CHECKPOINTS):
            checkpoints.append(info)
        else:
            problem = "not part of the audit log (only log/entries/ and log/checkpoints/ are)"
            others.append(ForeignObject(info.key, problem, None, info.size))
    return entries, checkpoints, others


def _order(valid: list, scan: _Scan) -> None:
    """Take the valid entries (slot, key, event, bytes, sha256 and size as stored), in slot
    order, as the leaves 0, 1, 2...
    A byte-for-byte copy of another entry (the envelope does not bind its key, so a copy
    authenticates) is foreign; another event at a position already taken is a fork, and an
    event beyond the next position means events are missing: both end the reading."""
    later: dict[bytes, int] = {}  # entry bytes -> the last slot holding them
    for slot, _key, _ev, raw, _digest, _size in valid:
        later[raw] = slot
    leaf_of: dict[bytes, str] = {}
    for slot, key, ev, raw, digest, size in valid:
        seq, n = ev["seq"], len(scan.entries)
        if raw in leaf_of or (seq > n and later[raw] > slot):
            where = leaf_of.get(raw) or layout.log_entry(later[raw])
            scan.foreign.append(ForeignObject(key, f"a copy of event {seq}, whose entry is {where}", digest, size))
            continue
        if seq < n:
            scan.errors.append(
                f"{key} holds another event {seq} than {scan.keys[seq]}: two writers took the same "
                "position, or the history was forked"
            )
            return
        if seq > n:
            scan.errors.append(_gap(n, seq, scan.homes[-1] if scan.homes else -1, slot, key))
            return
        scan.entries.append((ev, raw))
        scan.keys.append(key)
        scan.homes.append(slot)
        leaf_of[raw] = key


def _gap(n: int, seq: int, prev: int, slot: int, key: str) -> str:
    """What is missing between the last leaf (at slot `prev`) and `key`, which holds `seq`."""
    events = f"event {n}" if seq == n + 1 else f"events {n}-{seq - 1}"
    between = range(prev + 1, slot)
    if len(between) == seq - n:
        where = layout.log_entry(between[0])
        if len(between) > 1:
            where += f" to {layout.log_entry(between[-1])}"
        return f"{where}: {events} missing from the log (deleted, or replaced by bytes that are not it)"
    return (
        f"{events} missing from the log before {key}, which holds event {seq} "
        "(deleted, replaced, or moved to another slot)"
    )


def foreign_marks(entries: list) -> dict[tuple, tuple[int, str]]:
    """(key, sha256, size) -> (seq, reason) of the latest `foreign` event naming that object."""
    marks: dict[tuple, tuple[int, str]] = {}
    for ev, _raw in entries:
        details = ev.get("details") or {}
        if ev.get("type") != "foreign" or not isinstance(details.get("objects"), list):
            continue
        reason = details.get("reason") if isinstance(details.get("reason"), str) else ""
        for o in details["objects"]:
            if isinstance(o, dict) and isinstance(o.get("key"), str):
                marks[(o["key"], o.get("sha256"), o.get("size"))] = (ev["seq"], reason)
    return marks


def clock_warnings(entries: list, now: _dt.datetime, tolerance: _dt.timedelta = CLOCK_TOLERANCE) -> list[str]:
    """Events dated after `now`, or before the event logged just before them, by more than
    `tolerance`: a writer's clock was wrong (or moved) when it wrote them."""
    out = []
    prev: tuple[int, str, _dt.datetime] | None = None
    for ev, _raw in entries:
        t = from_iso(ev["time"])
        if t > now + tolerance:
            out.append(
                f"event {ev['seq']} ({ev['type']}) is dated {ev['time']}, after this clock's "
                f"{to_iso(now)} by more than {_minutes(tolerance)}"
            )
        if prev is not None and t < prev[2] - tolerance:
            out.append(
                f"event {ev['seq']} ({ev['type']}) is dated {ev['time']}, before event {prev[0]} "
                f"({prev[1]}) by more than {_minutes(tolerance)}: a writer's clock went back"
            )
        prev = (ev["seq"], ev["time"], t)
    return out


def _minutes(d: _dt.timedelta) -> str:
    return f"{int(d.total_seconds() // 60)} minutes"


def record_snapshots(
    log: AuditLog, snapshots: SnapshotStore, sid: str, retention: Retention | None = None
) -> list[dict]:
    """Append a `snapshot` event for every stored snapshot the log does not name yet:
    the one just written, and any a crash kept from being recorded (marked recovered)."""
    logged = log.logged_snapshots()
    snapshots.forget()
    out = []
    now = log.clock.now()
    for s in snapshots.all():
        if s.id in logged or not s.readable:  # a write-only key leaves others' to a full key
            continue
        if s.id != sid and not orphaned(snapshots, s, now):
            continue  # another backup's, still about to record itself
        ret = retention if s.id == sid else None
        out.append(log.append("snapshot", s.id, ret, **snapshot_details(s), recovered=s.id != sid))
    return out


def orphaned(snapshots: SnapshotStore, snap: Snapshot, now: _dt.datetime) -> bool:
    """A snapshot stored long enough ago that its own backup cannot still be recording it."""
    stored = snapshots.stored_at(snap.id)
    return stored is not None and now - stored > RECOVER_AFTER


def snapshot_details(s: Snapshot) -> dict:
    return {
        "time": to_iso(s.time),
        "hostname": s.hostname,
        "username": s.username,
        "paths": s.paths,
        "tags": s.tags,
        "tree": s.tree,
        "content_root": s.content_root,
        "retention": s.retention,
        "files": s.summary.get("files_total"),
        "bytes": s.summary.get("bytes_total"),
        **({"clock_jump": s.doc["clock_jump"]} if "clock_jump" in s.doc else {}),
    }


def check_consistency(cp: cpfmt.Checkpoint, leaves: list[bytes], what: str) -> None:
    """Raise unless the log `leaves` extends the tree the checkpoint describes."""
    consistent(cp, len(leaves), merkle.root(leaves), lambda: merkle.consistency_proof(leaves, cp.size), what)


def consistent(cp: cpfmt.Checkpoint, n: int, root: bytes, proof, what: str) -> None:
    """Raise unless a log of `n` leaves with `root` extends the checkpoint; `proof()` gives
    the consistency proof from its size (asked for only when it is needed)."""
    if cp.size > n:
        raise IntegrityError(
            f"{what} covers {cp.size} entries, but the log now has only {n}: "
            "the repository was rolled back or its log truncated"
        )
    if cp.size == 0:
        return
    try:
        merkle.verify_consistency(cp.size, n, cp.root, root, proof() if cp.size < n else [])
    except ProofError:
        raise IntegrityError(
            f"{what} (size {cp.size}) is not a prefix of the log now found: its history was rewritten or forked"
        ) from None
