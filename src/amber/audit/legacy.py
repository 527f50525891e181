"""The audit log's layout before tiles: one sealed event per object under `log/entries/`.

    log/entries/<slot, 12 digits>     one sealed event (kind 10) per object
    log/checkpoints/<size, 12 digits> a signed checkpoint note, plaintext

A storage slot is not a leaf index. The leaves are the valid entries (sealed
by this repository, canonical, well-formed) in slot order, and each carries
its leaf index as `seq`: 0, 1, 2, ... Anything else under `log/` is a foreign
object: reported, skipped, and never able to stop an append, since the writer
takes the first free slot after the last valid entry (put-if-absent, retry on
conflict) and then writes the checkpoint for the new size. Such a log is read,
verified and appended to here; the first append by a version that writes
tiles upgrades it by adding its tiles (log.py, docs/AUDIT-LOG.md §2.2).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..crypto.aead import KIND_LOG, Sealer
from ..errors import AlreadyExists, AmberError, IntegrityError, NotFound, StorageError
from ..format import layout
from ..format.canonical import utf8_json
from ..storage.base import ObjectInfo, Retention, Storage
from . import foreign as fo
from . import merkle
from .entry import leaves, validate_entry
from .foreign import ForeignObject
from .verifying import VerifyReport, check_consistency, checkpoint_warnings, clock_warnings

if TYPE_CHECKING:
    from .log import AuditLog

ENTRIES = layout.LOG_ENTRIES
CHECKPOINTS = layout.LOG_CHECKPOINTS
MAX_SLOT = 10**layout.SEQ_DIGITS - 1
MAX_ENTRY_BYTES = 64 << 20  # no event is this large: a bigger object is foreign without being read


@dataclass
class Scan:
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


def scan(storage: Storage, sealer: Sealer, infos: Iterable[ObjectInfo]) -> Scan:
    """Read every entry listed in `infos` (objects under `log/entries/`) and order the valid ones."""
    out = Scan()
    valid = []
    for info in sorted(infos, key=lambda i: i.key):
        slot = layout.log_slot(info.key)
        if slot is None:
            inside = layout.log_slot(info.key[: len(ENTRIES) + layout.SEQ_DIGITS])
            if inside is not None and info.key[len(ENTRIES) + layout.SEQ_DIGITS :].startswith("/"):
                out.occupied.add(inside)  # a folder in a slot's place (local storage)
            out.foreign.append(
                ForeignObject(info.key, "not an entry's name (12 digits under log/entries/)", None, info.size)
            )
            continue
        out.occupied.add(slot)
        got = open_entry(storage, sealer, info)
        if isinstance(got, ForeignObject):
            out.foreign.append(got)
        elif got is not None:
            valid.append((slot, info.key, *got))
    unreadable = [f for f in out.foreign if f.problem.startswith("cannot be read")]
    if unreadable and not valid:  # the storage, not an object, is failing: no log to build on
        raise StorageError(unreadable[0].problem.removeprefix("cannot be read: "))
    _order(valid, out)
    return out


def writable_scan(storage: Storage, sealer: Sealer) -> Scan:
    """The log as a writer reads it: foreign objects skipped, a missing or doubled event
    refused (an append would build on a log that is not the one others verified)."""
    got = scan(storage, sealer, storage.list(ENTRIES))
    if got.errors:
        raise IntegrityError(got.errors[0], remedy="audit-verify")
    return got


def _read(storage: Storage, key: str) -> bytes:
    """An object's bytes, tried twice: one failed read must not make an entry look foreign
    (an object that can never be read, such as one encrypted with a key amber does not
    hold, stays unreadable and is foreign)."""
    try:
        return storage.get(key)
    except StorageError:
        return storage.get(key)


def open_entry(
    storage: Storage, sealer: Sealer, info: ObjectInfo
) -> tuple[dict, bytes, str, int] | ForeignObject | None:
    """(event, canonical bytes, sha256 and size as stored) of a valid entry; what is wrong
    otherwise; None if it is gone."""
    key = info.key
    if info.size > MAX_ENTRY_BYTES:
        return ForeignObject(key, f"{info.size} bytes, larger than any entry", None, info.size)
    try:
        data = _read(storage, key)
    except NotFound:
        return None  # deleted since it was listed
    except StorageError as e:
        return ForeignObject(key, f"cannot be read: {e}", None, info.size)
    digest = hashlib.sha256(data).hexdigest()

    def foreign(problem: str) -> ForeignObject:
        return ForeignObject(key, problem, digest, len(data))

    try:
        raw = sealer.open(KIND_LOG, data, key)
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


def partition(infos: Iterable[ObjectInfo]) -> tuple[list[ObjectInfo], list[ObjectInfo], list[ForeignObject]]:
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


def _order(valid: list, out: Scan) -> None:
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
        seq, n = ev["seq"], len(out.entries)
        if raw in leaf_of or (seq > n and later[raw] > slot):
            where = leaf_of.get(raw) or layout.log_entry(later[raw])
            out.foreign.append(ForeignObject(key, f"a copy of event {seq}, whose entry is {where}", digest, size))
            continue
        if seq < n:
            out.errors.append(
                f"{key} holds another event {seq} than {out.keys[seq]}: two writers took the same "
                "position, or the history was forked"
            )
            return
        if seq > n:
            out.errors.append(_gap(n, seq, out.homes[-1] if out.homes else -1, slot, key))
            return
        out.entries.append((ev, raw))
        out.keys.append(key)
        out.homes.append(slot)
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


def append(log: AuditLog, event: Callable[[int], dict], lock: Retention | None) -> dict:
    """Append to a log of this layout: the next free slot after the last valid entry, put if
    absent (read on and retry when another writer, or junk, took it), then the checkpoint."""
    remembered = log.remembered()  # before the log is read: another writer may extend both
    got = writable_scan(log.storage, log.sealer)
    known = leaves(got.entries)
    log.check_remembered(known, remembered)
    blocked: set[int] = set()  # slots taken by something no listing shows (an empty folder)
    for _ in range(100):
        ev = event(len(known))
        raw = utf8_json(ev)
        slot = got.next_slot()
        try:
            log.storage.put(layout.log_entry(slot), log.sealer.seal(KIND_LOG, raw), retention=lock)
            break
        except AlreadyExists:  # another writer, or junk, took this slot: read on and retry
            got = writable_scan(log.storage, log.sealer)
            known = leaves(got.entries)
            if slot not in got.occupied:
                blocked.add(slot)
            got.occupied |= blocked
    else:
        raise AmberError("could not append to the audit log (too much contention)")
    log.write_checkpoint(known + [merkle.leaf_hash(raw)], lock)
    return ev


def foreign_objects(log: AuditLog) -> tuple[list[ForeignObject], list]:
    """(foreign objects, the valid entries) of a log of this layout: one listing of `log/`,
    every entry and checkpoint read."""
    entry_infos, checkpoints, others = partition(log.storage.list(layout.LOG))
    got = scan(log.storage, log.sealer, entry_infos)
    found = got.foreign + others
    for info in checkpoints:
        cp = fo.classify_checkpoint(log.storage, log.origin, log.public, info)
        if isinstance(cp, ForeignObject):
            found.append(cp)
    return found, got.entries


def verify(log: AuditLog, external: bytes | None, remember: bool) -> VerifyReport:
    """Check every object of a log of this layout (docs/AUDIT-LOG.md §11)."""
    rep = VerifyReport()
    # what can only have been written before the entries it covers is read first, so a
    # concurrent writer never makes a checkpoint look longer than the log read after it
    remembered = log.remembered()
    cp_infos = sorted(log.storage.list(CHECKPOINTS), key=lambda i: i.key)
    entry_infos, _checkpoints, others = partition(log.storage.list(layout.LOG))
    got = scan(log.storage, log.sealer, entry_infos)
    rep.errors.extend(got.errors)
    entries = got.entries
    known = leaves(entries)
    rep.size, rep.root = len(known), merkle.root(known)
    found = got.foreign + others
    for info in cp_infos:
        cp = fo.classify_checkpoint(log.storage, log.origin, log.public, info)
        if isinstance(cp, ForeignObject):
            found.append(cp)
        elif cp is not None:
            try:
                check_consistency(cp, known, info.key)
                rep.checkpoints += 1
            except IntegrityError as e:
                rep.errors.append(str(e))
    checkpoint_warnings(rep, {i.key for i in cp_infos}, len(known))
    rep.foreign = fo.explain(log.storage, log.origin, found, entries, digest=False)
    fo.report(rep, rep.foreign)
    rep.warnings.extend(clock_warnings(entries, log.clock.now()))
    rep.entries = entries
    for note, what in ((remembered, "the checkpoint this client last verified"), (external, "the given checkpoint")):
        if note is None:
            continue
        try:
            size = log.check_remembered(known, note, what)
            if note is remembered:
                rep.remembered = size
        except IntegrityError as e:
            rep.errors.append(str(e))
    if rep.ok and remember and known:
        log.remember_stored(len(known), rep.root)
    return rep
