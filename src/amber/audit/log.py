"""The audit log in storage: one write-once object per leaf, signed checkpoints.

    log/entries/<seq, 12 digits>      the event's canonical JSON, sealed (kind 10)
    log/checkpoints/<size, 12 digits> a signed checkpoint note, plaintext

The leaf of entry `seq` is SHA-256(0x00 || canonical JSON of the event), the
plaintext, so a verifier holding only the event, a proof, a checkpoint and
the public key can check inclusion without the password. Writers append with
put-if-absent on the next sequence number and retry on conflict, then write
the checkpoint for the new size. Each client remembers, under
$XDG_STATE_HOME/amber/<repository id>/checkpoint, the last checkpoint it
verified, and refuses a repository whose log is shorter or whose history
differs (a rollback or a fork) with an integrity error.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import socket
import threading
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..clock import Clock, from_iso, to_iso
from ..crypto.aead import KIND_LOG, Sealer
from ..errors import AlreadyExists, AmberError, CheckpointError, IntegrityError, NotFound, ProofError
from ..format import layout
from ..format.canonical import utf8_json
from ..repo import client_state
from ..repo.events import user_name
from ..repo.snapshots import Snapshot, SnapshotStore
from ..storage.base import Retention, Storage
from . import checkpoint as cpfmt
from . import merkle

RECOVER_AFTER = _dt.timedelta(minutes=10)  # then a snapshot without its event is recorded by others
ENTRIES = layout.LOG_ENTRIES
CHECKPOINTS = layout.LOG_CHECKPOINTS


@dataclass
class VerifyReport:
    size: int = 0
    root: bytes = b""
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    checkpoints: int = 0
    remembered: int | None = None
    entries: list = field(default_factory=list, repr=False)  # (event, canonical bytes), as read

    @property
    def ok(self) -> bool:
        return not self.errors


class AuditLog:
    """The log of one repository: its storage, its sealer, and the key that signs checkpoints."""

    def __init__(
        self,
        storage: Storage,
        sealer: Sealer,
        signing: Ed25519PrivateKey,
        repository_id: str,
        clock: Clock,
        key_id: str,
    ) -> None:
        self.storage = storage
        self.sealer = sealer
        self.clock = clock
        self.repository_id = repository_id
        self.key_id = key_id
        self.origin = f"amber/{repository_id}"
        self.signing = signing
        self.public = cpfmt.public_bytes(self.signing)

    # -- reading -----------------------------------------------------------------

    def entries(self, errors: list | None = None) -> list[tuple[dict, bytes]]:
        """Every entry in order as (event, canonical bytes); damage raises unless `errors` collects it."""
        keys = sorted(i.key for i in self.storage.list(ENTRIES))
        out = []
        for seq, key in enumerate(keys):
            want = layout.log_entry(seq)
            try:
                if key != want:
                    raise IntegrityError(f"{want}: missing from the log (found {key} next)")
                raw = self.sealer.open(KIND_LOG, self.storage.get(key), key)
                ev = json.loads(raw)
                if not isinstance(ev, dict) or ev.get("seq") != seq or utf8_json(ev) != raw:
                    raise IntegrityError(f"{key}: not the canonical event number {seq}")
            except (IntegrityError, ValueError, RecursionError) as e:
                if errors is None:
                    raise IntegrityError(str(e) if isinstance(e, IntegrityError) else f"{key}: {e}") from None
                errors.append(str(e) if isinstance(e, IntegrityError) else f"{key}: {e}")
                return out
            try:
                validate_entry(ev, key)
            except IntegrityError as e:  # authentic and in place (its leaf counts), but malformed
                if errors is not None:
                    errors.append(str(e))
                ev = invalid_entry(ev, seq, str(e))
            out.append((ev, raw))
        return out

    @staticmethod
    def init_event(storage: Storage, sealer: Sealer) -> dict | None:
        """The log's first entry alone (the `init` event, which pins the config), authenticated
        under `sealer`; None when the log has no entry 0. IntegrityError when it does not open
        or is not the canonical, well-formed event 0."""
        key = layout.log_entry(0)
        try:
            stored = storage.get(key)
        except NotFound:
            return None
        raw = sealer.open(KIND_LOG, stored, key)
        try:
            ev = json.loads(raw)
        except (ValueError, RecursionError):
            raise IntegrityError(f"{key}: not valid JSON") from None
        if not isinstance(ev, dict) or ev.get("seq") != 0 or utf8_json(ev) != raw:
            raise IntegrityError(f"{key}: not the canonical event number 0")
        return validate_entry(ev, key)

    def leaves(self, entries) -> list[bytes]:
        return [merkle.leaf_hash(raw) for _ev, raw in entries]

    def vkey(self) -> str:
        return cpfmt.verifier_key(self.origin, self.public)

    def latest_checkpoint(self) -> bytes | None:
        """The newest stored checkpoint signed by this repository's key and stored under its own
        size; junk or a foreign note at a later slot is passed over (`verify` reports it). When
        none verifies, the newest as stored (its reader reports it); None for no checkpoint."""
        keys = sorted(i.key for i in self.storage.list(CHECKPOINTS))
        newest = None
        for key in reversed(keys):
            note = self._stored_checkpoint(key)
            if note is None:
                continue
            newest = note if newest is None else newest
            try:
                cp = cpfmt.verify(note, self.origin, self.public)
            except CheckpointError:
                continue
            if key == layout.log_checkpoint(cp.size):
                return note
        return newest

    # -- writing -----------------------------------------------------------------

    def append(self, kind: str, snapshot: str | None = None, lock=None, **details) -> dict:
        """Append one event; `lock` (a Retention) protects the entry and its checkpoint."""
        remembered = self.remembered()  # before the log is read: another writer may extend both
        entries = self.entries()
        leaves = self.leaves(entries)
        self._check_remembered(leaves, remembered)
        actor = {"host": socket.gethostname(), "user": user_name(), "key": self.key_id[:16]}
        for _ in range(100):
            seq = len(leaves)
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
            raw = utf8_json(ev)
            try:
                self.storage.put(layout.log_entry(seq), self.sealer.seal(KIND_LOG, raw), retention=lock)
                break
            except AlreadyExists:  # another writer took this position: read on and retry
                entries = self.entries()
                leaves = self.leaves(entries)
        else:
            raise AmberError("could not append to the audit log (too much contention)")
        leaves = leaves + [merkle.leaf_hash(raw)]
        self.write_checkpoint(leaves, lock)
        return ev

    def write_checkpoint(self, leaves: list[bytes], retention=None) -> bytes:
        cp = cpfmt.Checkpoint(self.origin, len(leaves), merkle.root(leaves))
        note = cpfmt.sign(cp, self.origin, self.signing)
        try:
            self.storage.put(layout.log_checkpoint(len(leaves)), note, retention=retention)
        except AlreadyExists:
            # another writer's checkpoint of the same log is as good as ours; anything else found
            # at this slot (junk, another repository's, another history's) is never remembered:
            # the client remembers its own signed note, and `audit verify` reports the object
            stored = self._stored_checkpoint(layout.log_checkpoint(len(leaves)))
            if stored is not None and self.matches(stored, cp):
                note = stored
        self.remember(note)
        return note

    def _stored_checkpoint(self, key: str) -> bytes | None:
        try:
            return self.storage.get(key)
        except NotFound:
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

    # -- verification ------------------------------------------------------------------

    def verify(self, external: bytes | None = None, remember: bool = True) -> VerifyReport:
        rep = VerifyReport()
        # what can only have been written before the entries it covers is read first, so a
        # concurrent writer never makes a checkpoint look longer than the log read after it
        remembered = self.remembered()
        cps = sorted(i.key for i in self.storage.list(CHECKPOINTS))
        entries = self.entries(rep.errors)
        leaves = self.leaves(entries)
        rep.size, rep.root = len(leaves), merkle.root(leaves)
        for key in cps:
            try:
                note = self.storage.get(key)
                cp = cpfmt.verify(note, self.origin, self.public)
                if key != layout.log_checkpoint(cp.size):
                    raise IntegrityError(f"names size {cp.size}")
                check_consistency(cp, leaves, key)
                rep.checkpoints += 1
            except (CheckpointError, IntegrityError, NotFound) as e:
                rep.errors.append(f"{key}: {e}" if not str(e).startswith(key) else str(e))
        if leaves and layout.log_checkpoint(len(leaves)) not in cps:
            rep.warnings.append(
                f"no checkpoint for the full log of {len(leaves)} entries (a writer "
                "stopped between its entry and its checkpoint)"
            )
        present = set(cps)
        for size in range(1, len(leaves)):
            if layout.log_checkpoint(size) not in present:  # every append writes one
                rep.warnings.append(
                    f"{CHECKPOINTS}{size:012d}: missing (deleted, or its writer stopped before writing it)"
                )
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


ENTRY_TYPE = re.compile(r"[a-z][a-z0-9-]{0,31}")
MAX_ENTRY_TEXT = 4096


def validate_entry(ev: dict, what: str) -> dict:
    """The fields every reader of a log entry relies on (docs/AUDIT-LOG.md §3): IntegrityError
    naming the entry otherwise. `details` is free-form but must be an object."""
    if type(ev.get("v")) is not int or ev["v"] != 1:
        raise IntegrityError(f"{what}: not an amber log entry (v)")
    if not isinstance(ev.get("type"), str) or not ENTRY_TYPE.fullmatch(ev["type"]):
        raise IntegrityError(f"{what}: type is not an event type")
    if not isinstance(ev.get("time"), str) or len(ev["time"]) > 64:
        raise IntegrityError(f"{what}: time is not an ISO 8601 time")
    try:
        from_iso(ev["time"])
    except (ValueError, OverflowError):
        raise IntegrityError(f"{what}: time is not an ISO 8601 time") from None
    if "snapshot" in ev and not _is_hex64(ev["snapshot"]):
        raise IntegrityError(f"{what}: snapshot is not 64 lowercase hex characters")
    actor = ev.get("actor", {})
    if not isinstance(actor, dict) or any(not isinstance(v, str) or len(v) > MAX_ENTRY_TEXT for v in actor.values()):
        raise IntegrityError(f"{what}: actor is not an object of strings")
    if not isinstance(ev.get("details", {}), dict):
        raise IntegrityError(f"{what}: details is not an object")
    if ev["type"] == "snapshot":
        d = ev.get("details", {})
        if not _is_hex64(ev.get("snapshot")) or not _is_hex64(d.get("tree")) or not _is_hex64(d.get("content_root")):
            raise IntegrityError(f"{what}: a snapshot event without a valid snapshot, tree and content root")
    return ev


def invalid_entry(ev: dict, seq: int, error: str) -> dict:
    """What readers see of an authentic but malformed entry: its place, and what is wrong."""
    t = ev.get("time")
    return {
        "v": 1,
        "seq": seq,
        "time": t if isinstance(t, str) else "?",
        "type": "invalid",
        "actor": {},
        "details": {"error": error},
    }


def _is_hex64(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def record_snapshots(
    log: AuditLog, snapshots: SnapshotStore, sid: str, retention: Retention | None = None
) -> list[dict]:
    """Append a `snapshot` event for every stored snapshot the log does not name yet:
    the one just written, and any a crash kept from being recorded (marked recovered)."""
    logged = {ev.get("snapshot") for ev, _raw in log.entries() if ev.get("type") == "snapshot"}
    snapshots.forget()
    out = []
    now = log.clock.now()
    for s in snapshots.all():
        if s.id in logged:
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
    }


def check_consistency(cp: cpfmt.Checkpoint, leaves: list[bytes], what: str) -> None:
    """Raise unless the log `leaves` extends the tree the checkpoint describes."""
    n = len(leaves)
    if cp.size > n:
        raise IntegrityError(
            f"{what} covers {cp.size} entries, but the log now has only {n}: "
            "the repository was rolled back or its log truncated"
        )
    if cp.size == 0:
        return
    try:
        proof = merkle.consistency_proof(leaves, cp.size)
        merkle.verify_consistency(cp.size, n, cp.root, merkle.root(leaves), proof)
    except ProofError:
        raise IntegrityError(
            f"{what} (size {cp.size}) is not a prefix of the log now found: its history was rewritten or forked"
        ) from None
