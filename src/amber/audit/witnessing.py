"""A log's witnesses (docs/AUDIT-LOG.md §14): who they are, publishing each new checkpoint to
them, comparing the log with what they hold, and the recorded way out of a legitimate alarm.

The witnesses themselves — a folder, a bucket, an `amber serve`, an RFC 3161
time-stamping authority — are witness.py's; this is the log's side of them.
Every change publishes the new signed checkpoint to each; `audit verify`
reports a log shorter than a witness's checkpoint (a rollback) or one that
does not contain it (a fork), even when the client's own remembered checkpoint
is gone; `audit trust --reset` records the checkpoints it abandons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import AmberError, CheckpointError, IntegrityError, UsageError
from . import checkpoint as cpfmt
from . import witness as wit
from .tiled import Head, TiledStore

if TYPE_CHECKING:
    from .log import AuditLog
    from .verifying import VerifyReport

MAX_ABANDONED = 10_000  # witness checkpoints one `trust-reset` may give up


class Witnessing:
    """The witnesses of one log (`AuditLog.witnessing`)."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.resetting = False  # a `trust-reset` gives its witnesses a reset, not a publication

    def config(self) -> dict[str, dict]:
        """Every witness the log names, and those this client remembers (a rolled-back log may
        have lost their events); the log's are mirrored into the client state."""
        log = self.log
        logged = log.summary().witnesses if log.tiled() else {}
        wit.mirror(log.repository_id, logged)
        found = {**wit.mirrored(log.repository_id), **logged}
        return {**self._serving(found), **found}

    def _serving(self, found: dict[str, dict]) -> dict[str, dict]:
        """A repository on `amber serve` has that server as a witness too (SERVER.md §10), its
        key pinned on first use in the client's mirror; nothing when one is configured already."""
        log = self.log
        url = wit.serving_url(log.storage)
        if url is None or not log.tiled() or any(doc.get("url") == url for doc in found.values()):
            return {}
        try:
            doc = {"name": wit.SERVING, "url": url, "server_key": wit.fetch_server_key(url, log.cacert)}
        except AmberError as e:
            log.warn(f"the key of the server at {url} could not be read to pin it: {e}")
            return {}
        wit.mirror(log.repository_id, {wit.SERVING: doc})
        return {wit.SERVING: doc}

    def opened(self, report) -> list[wit.Witness]:
        """Every configured witness that can be opened; `report(message)` hears the others."""
        log = self.log
        out = []
        for name, doc in sorted(self.config().items()):
            try:
                out.append(wit.open_witness(doc, log.repository_id, log.vkey(), log.cacert, log.storage))
            except (AmberError, KeyError, OSError) as e:
                report(f"witness {name} ({doc.get('url')}) cannot be reached: {e}")
        return out

    def publish(self, head: Head, store: TiledStore) -> None:
        """Publish the checkpoint of `head` to every witness. One that cannot be reached or
        refuses is a warning: the change is stored and recorded; `audit verify` reports the gap."""
        if self.resetting:
            return
        log = self.log
        cp = cpfmt.Checkpoint(log.origin, head.size, head.root)
        note = log.note(head.size, head.root)
        for w in self.opened(log.warn):
            try:
                w.publish(note, cp, lambda m: store.consistency(m, head.size))
            except (AmberError, OSError, KeyError) as e:
                log.warn(f"witness {w.name}: the checkpoint of {head.size} events was not published: {e}")

    def with_cosignatures(self, note: bytes, cp: cpfmt.Checkpoint) -> bytes:
        """`note` with the cosignature line of each `amber serve` witness this client kept for
        exactly this checkpoint (for evidence bundles)."""
        for w in self.opened(lambda message: None):
            line = w.cosignature(cp) if isinstance(w, wit.RestWitness) else None
            if line is not None and line.encode() not in note:
                note += line.encode()
        return note

    def add(self, name: str, url: str, **details) -> dict:
        """Record a witness (a `witness` event, then mirrored in the client state); the
        checkpoint of that event is its first."""
        log = self.log
        if not log.tiled():
            raise UsageError("witnesses need the tiled audit log (append once without AMBER_LOG_LAYOUT=entries)")
        if not name or not name.isascii() or not name.replace("-", "").replace("_", "").isalnum():
            raise UsageError(f"invalid witness name {name!r}: letters, digits, '-' and '_'")
        if name in self.config():
            raise UsageError(f"there is a witness named {name} already")
        doc = {"name": name, "url": url, **{k: v for k, v in details.items() if v}}
        # refuse what cannot be opened
        wit.open_witness(doc, log.repository_id, log.vkey(), log.cacert, log.storage)
        return log.append(wit.EVENT, None, None, **doc)  # publishing mirrors it and gives it its first

    def compare(self, rep: VerifyReport, store: TiledStore, head: Head) -> list[dict]:
        """Check each witness's newest checkpoint against the log at `head`: signed by this
        log's key, and a prefix of it (a consistency proof from tiles). A log shorter than it
        is a rollback, one that does not contain it a fork: both are errors naming the witness
        and the checkpoint. A witness that cannot be reached is a warning."""
        log = self.log
        abandoned = log.summary().abandoned
        out = []
        for w in self.opened(rep.warnings.append):
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
                    cp = cpfmt.verify(note, log.origin, log.public)
                except CheckpointError as e:
                    rep.errors.append(f"{what}: not a checkpoint of this log ({log.origin}): {e}")
                    continue
                status["size"] = cp.size
                try:
                    log.consistent(store, head, cp, what)
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
        log = self.log
        store = log.store()
        head = log.head(store)
        given_up = {(name, obj) for name, obj in log.summary().abandoned}
        abandoned: list[dict] = []
        failed: list[str] = []
        witnesses = self.opened(failed.append)
        for w in witnesses:
            abandoned += self._abandoned(w, store, head, {obj for name, obj in given_up if name == w.name})
        log.forget_remembered()
        self.resetting = True
        try:
            ev = log.append(wit.RESET, None, None, reason=reason, abandoned=abandoned, size=head.size)
        finally:
            self.resetting = False
        store = log.store()
        new = log.head(store, head.size + 1)
        cp = cpfmt.Checkpoint(log.origin, new.size, new.root)
        for w in witnesses:
            try:
                w.reset(log.note(new.size, new.root), cp)
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
        log = self.log
        try:
            cp = cpfmt.verify(note, log.origin, log.public)
        except CheckpointError:
            return False
        return log.extends(store, head, cp.size, cp.root)
