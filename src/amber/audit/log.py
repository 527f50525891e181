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
import getpass
import json
import os
import socket
import threading
from dataclasses import dataclass, field

from ..clock import from_iso, to_iso
from ..crypto.aead import KIND_LOG
from ..errors import AlreadyExists, AmberError, IntegrityError, NotFound
from . import checkpoint as cpfmt
from . import merkle

RECOVER_AFTER = _dt.timedelta(minutes=10)  # then a snapshot without its event is recorded by others
ENTRIES = "log/entries/"
CHECKPOINTS = "log/checkpoints/"


def canonical(obj) -> bytes:
    # UTF-8; a lone surrogate (a file name that is not UTF-8) is written as its \udcXX escape
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "backslashreplace")


@dataclass
class VerifyReport:
    size: int = 0
    root: bytes = b""
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    checkpoints: int = 0
    remembered: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


class AuditLog:
    def __init__(self, repo) -> None:
        self.repo = repo
        self.origin = f"amber/{repo.id}"
        self.signing = repo.keys.signing_key()
        self.public = cpfmt.public_bytes(self.signing)

    # -- reading -----------------------------------------------------------------

    def entries(self, errors: list | None = None) -> list[tuple[dict, bytes]]:
        """Every entry in order as (event, canonical bytes); damage raises unless `errors` collects it."""
        keys = sorted(i.key for i in self.repo.storage.list(ENTRIES))
        out = []
        for seq, key in enumerate(keys):
            want = f"{ENTRIES}{seq:012d}"
            try:
                if key != want:
                    raise IntegrityError(f"{want}: missing from the log (found {key} next)")
                raw = self.repo.sealer.open(KIND_LOG, self.repo.storage.get(key), key)
                ev = json.loads(raw)
                if not isinstance(ev, dict) or ev.get("seq") != seq or canonical(ev) != raw:
                    raise IntegrityError(f"{key}: not the canonical event number {seq}")
            except (IntegrityError, ValueError) as e:
                if errors is None:
                    raise IntegrityError(str(e)) from None
                errors.append(str(e) if isinstance(e, IntegrityError) else f"{key}: {e}")
                return out
            out.append((ev, raw))
        return out

    def leaves(self, entries) -> list[bytes]:
        return [merkle.leaf_hash(raw) for _ev, raw in entries]

    def vkey(self) -> str:
        return cpfmt.verifier_key(self.origin, self.public)

    def latest_checkpoint(self) -> bytes | None:
        keys = sorted(i.key for i in self.repo.storage.list(CHECKPOINTS))
        return self.repo.storage.get(keys[-1]) if keys else None

    # -- writing -----------------------------------------------------------------

    def append(self, kind: str, snapshot: str | None = None, lock=None, **details) -> dict:
        """Append one event; `lock` (a Retention) protects the entry and its checkpoint."""
        remembered = self.remembered()  # before the log is read: another writer may extend both
        entries = self.entries()
        leaves = self.leaves(entries)
        self._check_remembered(leaves, remembered)
        actor = {"host": socket.gethostname(), "user": _user(), "key": self.repo.key_id[:16]}
        for _ in range(100):
            seq = len(leaves)
            ev = {"v": 1, "seq": seq, "time": to_iso(self.repo.clock.now()), "type": kind, "actor": actor,
                  "details": details}
            if snapshot is not None:
                ev["snapshot"] = snapshot
            raw = canonical(ev)
            try:
                self.repo.storage.put(f"{ENTRIES}{seq:012d}", self.repo.sealer.seal(KIND_LOG, raw),
                                      retention=lock)
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
            self.repo.storage.put(f"{CHECKPOINTS}{len(leaves):012d}", note, retention=retention)
        except AlreadyExists:
            note = self.repo.storage.get(f"{CHECKPOINTS}{len(leaves):012d}")
        self.remember(note)
        return note

    def check_history(self) -> None:
        """Refuse (IntegrityError) a log that does not extend what this client last verified."""
        remembered = self.remembered()
        self._check_remembered(self.leaves(self.entries()), remembered)

    def record_snapshots(self, sid: str, retention=None) -> list[dict]:
        """Append a `snapshot` event for every stored snapshot the log does not name yet:
        the one just written, and any a crash kept from being recorded (marked recovered)."""
        logged = {ev.get("snapshot") for ev, _raw in self.entries() if ev.get("type") == "snapshot"}
        self.repo.invalidate_snapshots()
        snaps = [s for s in self.repo.snapshots() if s.id not in logged]
        out = []
        now = self.repo.clock.now()
        for s in snaps:
            if s.id != sid and not self._orphaned(s, now):
                continue  # another backup's, still about to record itself
            ret = retention if s.id == sid else None
            out.append(self.append("snapshot", s.id, ret, **snapshot_details(s), recovered=s.id != sid))
        return out

    def _orphaned(self, snap, now) -> bool:
        """A snapshot stored long enough ago that its own backup cannot still be recording it."""
        try:
            stored = self.repo.storage.stat(f"snapshots/{snap.id}").modified
        except NotFound:
            return False
        return stored is not None and now - stored > RECOVER_AFTER

    # -- the client's memory ---------------------------------------------------------

    def state_path(self) -> str:
        base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
        return os.path.join(base, "amber", self.repo.id, "checkpoint")

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
            except cpfmt.CheckpointError:
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
        except cpfmt.CheckpointError as e:
            raise IntegrityError(f"{what}: {e}") from None
        check_consistency(cp, leaves, what)
        return cp.size

    # -- verification ------------------------------------------------------------------

    def _verify_links(self, entries, rep: VerifyReport) -> None:
        _links(self.repo, entries, rep)

    def verify(self, external: bytes | None = None, remember: bool = True) -> VerifyReport:
        rep = VerifyReport()
        # what can only have been written before the entries it covers is read first, so a
        # concurrent writer never makes a checkpoint look longer than the log read after it
        remembered = self.remembered()
        cps = sorted(i.key for i in self.repo.storage.list(CHECKPOINTS))
        entries = self.entries(rep.errors)
        leaves = self.leaves(entries)
        rep.size, rep.root = len(leaves), merkle.root(leaves)
        for key in cps:
            try:
                note = self.repo.storage.get(key)
                cp = cpfmt.verify(note, self.origin, self.public)
                if key != f"{CHECKPOINTS}{cp.size:012d}":
                    raise IntegrityError(f"names size {cp.size}")
                check_consistency(cp, leaves, key)
                rep.checkpoints += 1
            except (cpfmt.CheckpointError, IntegrityError, NotFound) as e:
                rep.errors.append(f"{key}: {e}" if not str(e).startswith(key) else str(e))
        if leaves and f"{CHECKPOINTS}{len(leaves):012d}" not in cps:
            rep.warnings.append(f"no checkpoint for the full log of {len(leaves)} entries (a writer "
                                "stopped between its entry and its checkpoint)")
        present = set(cps)
        for size in range(1, len(leaves)):
            if f"{CHECKPOINTS}{size:012d}" not in present:  # every append writes one
                rep.warnings.append(f"{CHECKPOINTS}{size:012d}: missing (deleted, or its writer stopped "
                                    "before writing it)")
        self._verify_links(entries, rep)
        for note, what in ((remembered, "the checkpoint this client last verified"),
                           (external, "the given checkpoint")):
            if note is None:
                continue
            try:
                size = self._check_remembered(leaves, note, what)
                if what.startswith("the checkpoint this"):
                    rep.remembered = size
            except IntegrityError as e:
                rep.errors.append(str(e))
        if rep.ok and remember and leaves:
            latest = f"{CHECKPOINTS}{len(leaves):012d}"
            try:
                self.remember(self.repo.storage.get(latest))
            except NotFound:
                pass
        return rep


def _links(repo, entries, rep) -> None:
    """Every stored snapshot has a matching `snapshot` event; every logged one still stored
    or forgotten by a `forget` event."""
    logged: dict[str, dict] = {}
    forgotten: set[str] = set()
    for ev, _raw in entries:
        if ev.get("type") == "snapshot" and ev.get("snapshot"):
            logged[ev["snapshot"]] = ev
        elif ev.get("type") == "forget":
            forgotten.add(ev.get("snapshot"))
    repo.invalidate_snapshots()
    stored = {s.id: s for s in repo.snapshots()}
    # a log that begins with `init` is as old as the repository: nothing can predate it; one that
    # begins later was started by an upgrade, and older snapshots were made without a log
    first_time = None
    born_with_log = bool(entries) and entries[0][0].get("type") == "init"
    if entries and not born_with_log:
        try:
            first_time = from_iso(entries[0][0]["time"])
        except (KeyError, ValueError, TypeError):
            first_time = None
    now = repo.clock.now()
    for sid, s in stored.items():
        ev = logged.get(sid)
        if ev is None:
            if not entries or (not born_with_log and (first_time is None or s.time < first_time)):
                rep.warnings.append(f"snapshot {sid[:8]} predates the audit log (made by an earlier version)")
                continue
            try:
                stored_at = repo.storage.stat(f"snapshots/{sid}").modified
            except NotFound:
                stored_at = None
            if stored_at is not None and now - stored_at <= RECOVER_AFTER:
                rep.warnings.append(f"snapshot {sid[:8]} has no event in the audit log yet (its backup may "
                                    "still be recording it)")
                continue
            rep.errors.append(f"snapshot {sid[:8]} has no event in the audit log (a crash before it was "
                              "recorded is repaired by the next backup; otherwise it was added behind the log)")
        elif ev.get("details", {}).get("content_root") != s.content_root or \
                ev.get("details", {}).get("tree") != s.tree:
            rep.errors.append(f"snapshot {sid[:8]} does not match its event {ev['seq']} in the audit log")
    for sid, ev in logged.items():
        if sid not in stored and sid not in forgotten:
            rep.errors.append(f"snapshot {sid[:8]} (event {ev['seq']}) is gone from the repository, but the "
                              "log has no forget event for it: it was deleted behind the log")
    for err in repo.snapshot_errors:
        rep.errors.append(err)


def snapshot_details(s) -> dict:
    return {"time": to_iso(s.time), "hostname": s.hostname, "username": s.username, "paths": s.paths,
            "tags": s.tags, "tree": s.tree, "content_root": s.content_root, "retention": s.retention,
            "files": s.summary.get("files_total"), "bytes": s.summary.get("bytes_total")}


def check_consistency(cp: cpfmt.Checkpoint, leaves: list[bytes], what: str) -> None:
    """Raise unless the log `leaves` extends the tree the checkpoint describes."""
    n = len(leaves)
    if cp.size > n:
        raise IntegrityError(f"{what} covers {cp.size} entries, but the log now has only {n}: "
                             "the repository was rolled back or its log truncated")
    if cp.size == 0:
        return
    try:
        proof = merkle.consistency_proof(leaves, cp.size)
        merkle.verify_consistency(cp.size, n, cp.root, merkle.root(leaves), proof)
    except merkle.ProofError:
        raise IntegrityError(f"{what} (size {cp.size}) is not a prefix of the log now found: "
                             "its history was rewritten or forked") from None


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "?"
