"""Foreign objects of the audit log: what lies under `log/` and is not the log's.

Junk, damage, a copy, a replaced entry or a checkpoint of another log is
reported by key with what is wrong with it (docs/AUDIT-LOG.md §2.1), and an
admin who has examined one records a `foreign` event naming its key, size and
SHA-256 (`marks`): from then on it is a warning, as long as its bytes stay the
ones examined. Checkpoints are told apart here too (`classify_checkpoint`):
one signed by this log's key, stored under its own size, or a foreign object.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace

from ..errors import CheckpointError, NotFound, StorageError, UsageError
from ..format import layout
from ..storage.base import ObjectInfo, Storage
from . import authors as authorship
from . import checkpoint as cpfmt

CHECKPOINTS = layout.LOG_CHECKPOINTS
HASH_CHUNK = 8 << 20  # a foreign object too large to read whole is hashed in pieces this size
BATCH = 1000  # objects named by one `foreign` event


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


def marks(entries: list) -> dict[tuple, tuple[int, str]]:
    """(key, sha256, size) -> (seq, reason) of the latest `foreign` event naming that object."""
    out: dict[tuple, tuple[int, str]] = {}
    for ev, _raw in entries:
        details = ev.get("details") or {}
        if ev.get("type") != "foreign" or not isinstance(details.get("objects"), list):
            continue
        reason = details.get("reason") if isinstance(details.get("reason"), str) else ""
        for o in details["objects"]:
            if isinstance(o, dict) and isinstance(o.get("key"), str):
                out[(o["key"], o.get("sha256"), o.get("size"))] = (ev["seq"], reason)
    return out


def explain(
    storage: Storage, origin: str, found: list[ForeignObject], entries: list, digest: bool
) -> list[ForeignObject]:
    """`found`, sorted, each with the `foreign` event that marked it as it still is, if any (a
    mark the log does not honour, as by a backup key of format 2, explains nothing).
    `digest=False` leaves unhashed the objects not read whole, unless a mark names them."""
    if not found:
        return []
    marked = marks(authorship.honoured(entries, origin, frozenset({"foreign"})))
    marked_keys = {k for k, _sha, _size in marked}
    out = []
    for f in sorted(found, key=lambda f: f.key):
        if f.sha256 is None and (digest or f.key in marked_keys):
            f = replace(f, sha256=sha256_of(storage, f.key, f.size))
        mark = marked.get((f.key, f.sha256, f.size))
        out.append(f if mark is None else replace(f, marked_by=mark[0], reason=mark[1]))
    return out


def sha256_of(storage: Storage, key: str, size: int) -> str | None:
    """SHA-256 of an object, read in pieces; None if it cannot be read (gone, or a name
    that is not a valid storage key)."""
    h = hashlib.sha256()
    try:
        if size <= HASH_CHUNK:
            h.update(storage.get(key))
        for offset in range(0, size if size > HASH_CHUNK else 0, HASH_CHUNK):
            h.update(storage.get(key, offset, min(HASH_CHUNK, size - offset)))
    except (NotFound, UsageError, StorageError):
        return None
    return h.hexdigest()


def classify_checkpoint(
    storage: Storage, origin: str, public: bytes, info: ObjectInfo
) -> cpfmt.Checkpoint | ForeignObject | None:
    """The checkpoint stored under `info.key` if it is one of this log's (`origin`, signed by
    `public`), stored under its own size; what is wrong otherwise; None if it is gone."""
    key = info.key
    size = layout.log_slot(key, CHECKPOINTS)
    if size is None:
        return ForeignObject(key, "not a checkpoint's name (12 digits under log/checkpoints/)", None, info.size)
    if info.size > cpfmt.MAX_NOTE:
        return ForeignObject(key, f"{info.size} bytes, larger than any checkpoint", None, info.size)
    try:
        note = storage.get(key, 0, cpfmt.MAX_NOTE + 1)  # a note is never longer
    except NotFound:
        return None
    except StorageError as e:
        return ForeignObject(key, f"cannot be read: {e}", None, info.size)
    digest = hashlib.sha256(note).hexdigest()
    try:
        cp = cpfmt.verify(note, origin, public)
    except CheckpointError as e:
        return ForeignObject(key, f"not a checkpoint of this log: {e}", digest, len(note))
    if cp.origin != origin:
        return ForeignObject(key, f"a checkpoint of another log ({cp.origin})", digest, len(note))
    if cp.size != size:
        return ForeignObject(key, f"a checkpoint of size {cp.size}, stored under another size", digest, len(note))
    return cp


def report(rep, found: list[ForeignObject]) -> None:
    """Foreign objects in a verify report: an error each, a warning for one marked as examined."""
    for f in found:
        if f.marked_by is None:
            rep.errors.append(f"{f.message()} (a foreign object, not marked as examined)")
        else:
            rep.warnings.append(f"{f.key}: known foreign object, marked by event {f.marked_by}: {f.reason}")
