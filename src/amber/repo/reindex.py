"""`amber repair index`: index files made again from the packs' own headers, by adding.

Stored packs that no readable index file names — because their index files are damaged,
replaced or gone, or because the backup that wrote them was interrupted before it indexed
them — are read header only (two range reads per pack), and every one whose header
authenticates is indexed in new index files. Unreadable index files are then named in a
**supersede record** (FORMAT.md §9.1) with the SHA-256 of their stored bytes: from then on
the index loader reports them as superseded instead of as errors, and prune's preflight no
longer stops on them. Nothing is deleted or rewritten; a superseded file whose bytes change
afterwards is no longer superseded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..crypto.aead import KIND_CONFIG, Sealer
from ..errors import AmberError, IntegrityError, NotFound
from ..format import canonical, layout
from ..format import superseded as supfmt
from ..format.index import IndexedPack
from ..storage.base import Storage
from . import adopt, packcheck
from .blobs import PACKS_PER_INDEX, BlobStore
from .records import Records, RecordType

SUPERSEDE: RecordType[dict] = RecordType(
    "supersede record",
    KIND_CONFIG,
    canonical.sorted_json,
    lambda raw, what: supfmt.validate(canonical.decode_object(raw, what, "a supersede record"), what),
)


def read_header(storage: Storage, sealer: Sealer, pack_id: bytes, size: int) -> IndexedPack:
    """A stored pack's entries and writer key from its header alone (IntegrityError if damaged)."""
    key = layout.pack(pack_id)
    writer, entries = packcheck.read_header_at(sealer, pack_id, size, lambda off, n: storage.get(key, off, n))
    return IndexedPack(pack_id, entries, writer)


@dataclass
class Superseded:
    """What the supersede records say: index file key -> the SHA-256 of the bytes superseded."""

    digests: dict[str, set[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # records that could not be read

    def covers(self, key: str, raw: bytes) -> bool:
        return hashlib.sha256(raw).hexdigest() in self.digests.get(key, ())


def load_superseded(records: Records) -> Superseded:
    out = Superseded()
    for _info, doc in records.scan(SUPERSEDE, layout.SUPERSEDED, out.problems):
        for e in doc["superseded"]:
            out.digests.setdefault(e["key"], set()).add(e["sha256"])
    return out


def split_superseded(storage: Storage, records: Records, errors: list[str]) -> tuple[list[str], list[str]]:
    """(index errors still standing, superseded ones as warnings) of `errors` ("<key>: why")."""
    if not errors:
        return errors, []
    sup = load_superseded(records)
    standing, superseded = list(sup.problems), []
    for message in errors:
        key = message.split(":", 1)[0]
        try:
            raw = storage.get(key) if key in sup.digests else None
        except (AmberError, NotFound):
            raw = None
        if raw is not None and sup.covers(key, raw):
            superseded.append(f"{message} (superseded by `repair index`)")
        else:
            standing.append(message)
    return standing, superseded


@dataclass
class IndexReport:
    packs_read: int = 0
    packs_indexed: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)  # packs whose header does not authenticate
    index_files: list[str] = field(default_factory=list)  # written
    superseded: list[str] = field(default_factory=list)  # unreadable index files now superseded
    dry_run: bool = False

    def to_json(self) -> dict:
        return {
            "packs_read": self.packs_read,
            "packs_indexed": self.packs_indexed,
            "damaged": self.damaged,
            "index_files": self.index_files,
            "superseded": self.superseded,
            "dry_run": self.dry_run,
        }


def rebuild(
    storage: Storage,
    records: Records,
    blobs: BlobStore,
    index_errors: list[str],
    record: Callable[[list[tuple[str, str, str]], list[str]], None],
    *,
    dry_run: bool = False,
) -> IndexReport:
    """Index every stored pack no readable index file names; supersede the unreadable index
    files (`index_errors`: "<key>: why") through `record(superseded, by)` once all is indexed."""
    report = IndexReport(dry_run=dry_run)
    found: list[IndexedPack] = []
    for pid, info in sorted(adopt.unindexed(blobs), key=lambda item: item[0]):
        report.packs_read += 1
        try:
            found.append(read_header(storage, blobs.sealer, pid, info.size))
        except (IntegrityError, NotFound) as e:
            report.damaged.append(f"{pid.hex()}: {e}")
    report.packs_indexed = [p.pack.hex() for p in found]
    unreadable = []
    for message in index_errors:
        key, _, why = message.partition(": ")
        try:
            raw = storage.get(key)
        except (AmberError, NotFound):
            continue  # gone: nothing left to supersede
        unreadable.append((key, hashlib.sha256(raw).hexdigest(), why))
    report.superseded = [k for k, _h, _w in unreadable]
    if dry_run:
        return report
    for start in range(0, len(found), PACKS_PER_INDEX):
        key = blobs.adopt_packs(found[start : start + PACKS_PER_INDEX])
        if key is not None:
            report.index_files.append(key)
    if unreadable:
        record(unreadable, report.index_files)
    return report


def supersede(records: Records, time: str, host: str, superseded: list[tuple[str, str, str]], by: list[str]) -> str:
    """Write one supersede record; returns its key."""
    name = records.put(SUPERSEDE, supfmt.document(time, host, superseded, by), layout.superseded_record)
    return layout.superseded_record(name)
