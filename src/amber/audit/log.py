"""The audit log in storage, in either of its layouts, and signed checkpoints.

    log/tile/…                        a new repository's log: entry bundles and hash tiles
                                      (tiled.py, tiles.py; docs/AUDIT-LOG.md §2.2)
    log/entries/<slot, 12 digits>     the layout before tiles (legacy.py)
    log/checkpoints/<size, 12 digits> a signed checkpoint note, plaintext (both layouts)

The leaf of an event is SHA-256(0x00 || canonical JSON of the event), the
plaintext, so a verifier holding only the event, a proof, a checkpoint and
the public key can check inclusion without the password.

`AuditLog` tells the layouts apart (`tiled`), appends (a tiled log: O(log n)
reads, put-if-absent on the next bundle block, retry; the layout before tiles is
upgraded by adding tiles at its first append), checks a client's remembered
checkpoint with a consistency proof, keeps folds of the events between runs,
and verifies (verifying.py: a tiled log from the remembered checkpoint or all of
it). Its witnesses are `witnessing`'s (witnessing.py); what under `log/` is not
the log's is foreign.py's. Each client remembers, under
$XDG_STATE_HOME/amber/<repository id>/checkpoint, the last checkpoint it
verified, and refuses a repository whose log is shorter or whose history
differs (a rollback or a fork) with an integrity error.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..clock import Clock, to_iso
from ..crypto.aead import KIND_LOG, Sealer
from ..errors import AlreadyExists, AmberError, CheckpointError, IntegrityError, NotFound, StorageError, UsageError
from ..format import layout
from ..format.canonical import utf8_json
from ..repo import client_state
from ..repo.events import user_name
from ..storage.base import ObjectInfo, Retention, Storage
from . import authors as authorship
from . import checkpoint as cpfmt
from . import foreign as fo
from . import legacy, merkle, tiledverify, verifying
from . import notes as notepool
from . import summary as summ
from . import tiles as tl
from . import timestamps as stamps
from . import witness as wit
from .entry import leaves, parse_entry, validate_entry
from .foreign import ForeignObject
from .tiled import Head, TiledStore
from .verifying import VerifyReport
from .witnessing import Witnessing

ENTRIES = layout.LOG_ENTRIES
CHECKPOINTS = layout.LOG_CHECKPOINTS
FIRST_WIDTHS = (1, 2, 4, 8, 16, 32, 64, 128, tl.WIDTH)  # the bundle blocks that can hold event 0
LAYOUT_ENV = "AMBER_LOG_LAYOUT"  # "entries": start new logs, and keep old ones, in the layout before tiles


class EventFold(Protocol):
    """A fold of the log's events that a client keeps between runs (`AuditLog.kept_fold`)."""

    size: int
    root: bytes

    def add(self, ev: dict) -> None: ...


F = TypeVar("F", bound=EventFold)


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
        self.witnessing = Witnessing(self)

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
            return self.tiled_entries(errors)
        scan = legacy.scan(self.storage, self.sealer, self.storage.list(ENTRIES))
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
            found, entries = self.everything(store, self.head(store)).foreign, self.tiled_entries([])
        else:
            found, entries = legacy.foreign_objects(self)
        return fo.explain(self.storage, self.origin, found, entries, digest)

    def unexplained(self) -> list[str]:
        """A message for each foreign object no `foreign` event explains."""
        return [f.message() for f in self.foreign_objects(digest=False) if f.marked_by is None]

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

    @staticmethod
    def leaves(entries) -> list[bytes]:
        return leaves(entries)

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
                if isinstance(self.classify_checkpoint(info), cpfmt.Checkpoint):
                    return self._stored_checkpoint(info.key)
        infos = sorted(self.storage.list(CHECKPOINTS), key=lambda i: i.key, reverse=True)
        newest = None
        for info in infos:
            got = self.classify_checkpoint(info)
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
        return legacy.append(self, event, lock)

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
            self.consistent(store, head, known, "the log this append read a moment ago")
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
        """Publish the new checkpoint to every witness (witnessing.py)."""
        self.witnessing.publish(head, store)

    # -- witnesses (witnessing.py) ------------------------------------------------------

    def witness_config(self) -> dict[str, dict]:
        return self.witnessing.config()

    def witnesses(self, report) -> list[wit.Witness]:
        return self.witnessing.opened(report)

    def add_witness(self, name: str, url: str, **details) -> dict:
        return self.witnessing.add(name, url, **details)

    def reset_trust(self, reason: str) -> tuple[dict, list[str]]:
        return self.witnessing.reset_trust(reason)

    # -- history -------------------------------------------------------------------------

    def forget_remembered(self) -> None:
        try:
            os.remove(self.state_path())
        except OSError:
            pass

    def _upgrade(self, store: TiledStore, remembered: bytes | None) -> None:
        """Store a log of the layout before tiles as bundles and tiles too (only adding
        objects); its entries stay where they are and `verify --full` compares them."""
        scan = legacy.writable_scan(self.storage, self.sealer)
        self.check_remembered(leaves(scan.entries), remembered)
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
        cp = self.verified(remembered, what) if remembered is not None else None
        head = self.head(store, cp.size if cp is not None else 0)
        if cp is not None:
            self.consistent(store, head, cp, what)
        return head

    def verified(self, note: bytes, what: str) -> cpfmt.Checkpoint:
        try:
            return cpfmt.verify(note, self.origin, self.public)
        except CheckpointError as e:
            raise IntegrityError(f"{what}: {e}") from None

    def consistent(self, store: TiledStore, head: Head, cp: cpfmt.Checkpoint, what: str) -> None:
        """Raise unless the tiled log at `head` extends the checkpoint `cp`: an RFC 9162
        consistency proof from O(log n) tiles."""
        verifying.consistent(cp, head.size, head.root, lambda: store.consistency(cp.size, head.size), what)

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
        if kept is None or not self.extends(store, head, kept.size, kept.root):
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

    def extends(self, store: TiledStore, head: Head, size: int, root: bytes) -> bool:
        try:
            verifying.consistent(
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

    def tiled_entries(self, errors: list | None) -> list[tuple[dict, bytes]]:
        """Every event of the tiled log. Within one process the events read last time are kept
        with their size and root: a command that replays the log several times (forget: the
        protection, the clock guard, the overrides) reads it once, then only the head, a
        consistency proof and what was appended since."""
        store = self.store()
        kept = self._events
        out: list[tuple[dict, bytes]] = []
        try:
            head = self.head(store, kept[0] if kept else 0)
            if kept is None or not self.extends(store, head, kept[0], kept[1]):
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
        for i in range(0, len(chosen), fo.BATCH):
            objects = [
                {"key": f.key, "sha256": f.sha256, "size": f.size, "problem": f.problem}
                for f in chosen[i : i + fo.BATCH]
            ]
            events.append(self.append("foreign", None, None, objects=objects, reason=reason))
        return events

    def remember_stored(self, size: int, root: bytes) -> None:
        """Remember the stored checkpoint of `size` if it is this log's for `root`."""
        note = self._stored_checkpoint(layout.log_checkpoint(size))
        if note is not None and self.matches(note, cpfmt.Checkpoint(self.origin, size, root)):
            self.remember(note)

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
        self.check_remembered(leaves(self.entries()), remembered)

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

    def check_remembered(self, leaves: list[bytes], note: bytes | None = None, what: str = "") -> int | None:
        note = note if note is not None else self.remembered()
        if note is None:
            return None
        what = what or "the checkpoint this client last verified"
        try:
            cp = cpfmt.verify(note, self.origin, self.public)
        except CheckpointError as e:
            raise IntegrityError(f"{what}: {e}") from None
        legacy.check_consistency(cp, leaves, what)
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

    def classify_checkpoint(self, info: ObjectInfo) -> cpfmt.Checkpoint | ForeignObject | None:
        return fo.classify_checkpoint(self.storage, self.origin, self.public, info)

    def legacy_leaves(self, infos: list[ObjectInfo]) -> tuple[list[bytes], list, list[str]]:
        """(leaves, foreign objects, errors) of the entries under `log/entries/` (an upgraded log)."""
        scan = legacy.scan(self.storage, self.sealer, infos)
        return leaves(scan.entries), scan.foreign, scan.errors

    def everything(self, store: TiledStore, head: Head) -> tiledverify.Found:
        with tiledverify.uncollected():
            listing = list(self.storage.list(layout.LOG))
            legacy = [i for i in listing if i.key.startswith(ENTRIES)]
            tokens = [i for i in listing if i.key.startswith(stamps.PREFIX)]
            others = [i for i in listing if not i.key.startswith((ENTRIES, stamps.PREFIX))]
            del listing
            found = tiledverify.everything(self, store, head, legacy, others)
        self.timestamps(store, head, found, None, tokens)
        return found

    def timestamps(self, store: TiledStore, head: Head, found: tiledverify.Found, lo: int | None, tokens=()) -> None:
        """Check the TSA witnesses' tokens (timestamps.py): those `tokens` listed (all of them),
        or, given `lo`, those of the checkpoints after size `lo` and the head's."""
        pinned, problems = stamps.chains(self.witness_config())
        found.errors.extend(problems)
        if lo is None:
            stamps.listed(self, store, head, list(tokens), pinned, found)
        else:
            stamps.since(self, store, head, lo, pinned, found)

    # -- verification ------------------------------------------------------------------

    def verify(
        self, external: bytes | None = None, remember: bool = True, full: bool = False, events: bool = False
    ) -> VerifyReport:
        """Check the log (docs/AUDIT-LOG.md §11). A tiled log is verified from this client's
        remembered checkpoint — a consistency proof and the entries added since — unless `full`
        (or nothing is remembered): then every object under `log/` is read. `events` fills
        `report.entries` with every event, for the checks of their meaning (`check.py`)."""
        if self.tiled():
            return verifying.verify_tiled(self, external, remember, full, events)
        return legacy.verify(self, external, remember)
