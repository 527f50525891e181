"""`amber audit verify` of a tiled log (docs/AUDIT-LOG.md §11): the report, and what it checks
beyond the tiles themselves (tiledverify.py reads and compares those).

From the client's remembered checkpoint a verify reads a consistency proof and
the entries added since; `--full`, or a client that remembers nothing, reads
every object under `log/`. Either way the head's checkpoint, the witnesses,
the RFC 3161 tokens, the foreign objects and the clocks of the events read are
judged, and a log that verifies is remembered.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..clock import from_iso, to_iso
from ..errors import IntegrityError, ProofError
from ..format import layout
from ..storage.base import ObjectInfo
from . import checkpoint as cpfmt
from . import foreign as fo
from . import merkle, tiledverify
from .tiled import Head, TiledStore

if TYPE_CHECKING:
    from .log import AuditLog

CHECKPOINTS = layout.LOG_CHECKPOINTS
CLOCK_TOLERANCE = _dt.timedelta(minutes=10)  # event times may differ this much between clients


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


def verify_tiled(log: AuditLog, external: bytes | None, remember: bool, full: bool, events: bool) -> VerifyReport:
    """Check a tiled log from the remembered checkpoint, or all of it (`full`, or nothing
    remembered); `events` fills `report.entries` with every event."""
    rep = VerifyReport()
    remembered = log.remembered()  # first: a writer may extend the log and this file meanwhile
    store = log.store()
    what = "the checkpoint this client last verified"
    cp = None
    if remembered is not None:
        try:
            cp = log.verified(remembered, what)
        except IntegrityError as e:
            rep.errors.append(str(e))
    try:
        head = log.head(store, cp.size if cp is not None and not full else 0)
    except IntegrityError as e:
        rep.errors.append(str(e))
        return rep
    rep.size, rep.root = head.size, head.root
    whole = full or cp is None or cp.size == 0 or cp.size > head.size
    store, head, found = _settled(log, store, head, None if whole else cp)
    if not whole:
        log.timestamps(store, head, found, cp.size if cp is not None else 0)
    rep.errors.extend(found.errors)
    rep.warnings.extend(found.warnings)
    rep.witnesses = log.witnessing.compare(rep, store, head)
    rep.timestamps = found.timestamps
    rep.checkpoints = found.checkpoints
    if whole:
        present = found.listed
        if any(layout.log_checkpoint(size) not in present for size in range(1, head.size + 1)):
            present = {i.key for i in log.storage.list(CHECKPOINTS)}  # written since, perhaps
        checkpoint_warnings(rep, present, head.size)
    else:
        rep.checkpoints += _head_checkpoint(log, head, rep)
    entries = found.entries if whole else []
    if (events and not whole) or (found.foreign and not whole):
        entries = log.tiled_entries(rep.errors if events else [])
    rep.foreign = fo.explain(log.storage, log.origin, found.foreign, entries, digest=False)
    fo.report(rep, rep.foreign)
    rep.warnings.extend(clock_warnings(found.entries, log.clock.now()))
    rep.entries = entries if events else []
    for note, label in ((remembered, what), (external, "the given checkpoint")):
        if note is None:
            continue
        try:
            given = log.verified(note, label)
            log.consistent(store, head, given, label)
            if note is remembered:
                rep.remembered = given.size
        except IntegrityError as e:
            if str(e) not in rep.errors:
                rep.errors.append(str(e))
    if rep.ok and remember and head.size:
        log.remember_stored(head.size, head.root)
    return rep


def _settled(
    log: AuditLog, store: TiledStore, head: Head, cp: cpfmt.Checkpoint | None
) -> tuple[TiledStore, Head, tiledverify.Found]:
    """The whole log verified (`cp` None) or what came after `cp`, read again (at most
    twice more) while what was found beyond the head or missing at its edge is explained
    by appends running meanwhile: an appender claims its bundle block first and writes
    the tiles after it, so a reader can meet a head whose tiles are not there yet, or
    tiles of entries that came after the head it read."""

    def run(store: TiledStore, head: Head) -> tiledverify.Found:
        return log.everything(store, head) if cp is None else tiledverify.since(log, store, head, cp)

    found = run(store, head)
    for attempt in range(2):
        if not (found.beyond or found.missing):
            break
        time.sleep(0.2 * (attempt + 1))
        fresh = log.store()
        try:
            later = log.head(fresh, head.size)
        except IntegrityError:
            break
        if later.size == head.size and not any(log.storage.exists(k) for k in found.missing):
            break  # nothing moved: what was found stands
        store, head = fresh, later
        found = run(store, head)
    return store, head, found


def _head_checkpoint(log: AuditLog, head: Head, rep: VerifyReport) -> int:
    """Check the stored checkpoint of the head's size: 1 if it is this log's, else 0 with a
    warning (missing) or an error (another root, or not a checkpoint of this log)."""
    if head.size == 0:
        return 0
    key = layout.log_checkpoint(head.size)
    got = log.classify_checkpoint(ObjectInfo(key, 0))
    if got is None:
        rep.warnings.append(
            f"no checkpoint for the full log of {head.size} entries (a writer "
            "stopped between its entry and its checkpoint)"
        )
        return 0
    if isinstance(got, fo.ForeignObject):
        rep.errors.append(f"{got.message()} (a foreign object, not marked as examined)")
        return 0
    if got.root != head.root:
        rep.errors.append(
            f"{key} (size {got.size}) is not a prefix of the log now found: its history was rewritten or forked"
        )
        return 0
    return 1


def checkpoint_warnings(rep: VerifyReport, present: set[str], size: int) -> None:
    """Every append writes the checkpoint of its size: say which sizes have none stored."""
    if size and layout.log_checkpoint(size) not in present:
        rep.warnings.append(
            f"no checkpoint for the full log of {size} entries (a writer stopped between its entry and its checkpoint)"
        )
    for n in range(1, size):
        if layout.log_checkpoint(n) not in present:
            rep.warnings.append(f"{CHECKPOINTS}{n:012d}: missing (deleted, or its writer stopped before writing it)")


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
