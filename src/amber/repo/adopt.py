"""Resuming an interrupted backup: index the packs it stored but never named in an index file.

A backup writes an index file only every PACKS_PER_INDEX packs and at its
end, so one stopped half-way leaves up to that many stored packs — and with a
killed process all of its last ones — that no index names. They are sound
(a pack is stored whole or not at all), so the next backup reads their
headers (two ranged reads each: the trailer, then the sealed header) and
indexes their blobs, writing an index file for them at once, so the run after
it need not look again, even if this one is interrupted too.

Only a header that authenticates under the data key is believed, which is
the same trust an index file gets: whoever could forge one could as well
write an index file. Packs a prune plan will delete or has deleted
(tombstoned) are never adopted, nor packs any index file names. The cost
is bounded: at most ADOPT_MAX_PACKS packs, newest first, each two small reads.
"""

from __future__ import annotations

import datetime as _dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import AmberError
from ..format import layout
from ..format.index import IndexedPack
from ..storage.base import ObjectInfo
from . import packcheck
from .blobs import BlobStore
from .records import listing

ADOPT_MAX_PACKS = 1024  # about 16 GiB of packs: far more than one interrupted run leaves behind
HEADER_READERS = 8  # ranged reads in flight (latency bound on S3)


@dataclass
class Adopted:
    """What resuming found: packs indexed again, their blobs and stored bytes, and the packs
    whose header could not be read (left alone: check reports them, prune removes them)."""

    packs: int = 0
    blobs: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)
    index_file: str | None = None


def unindexed(blobs: BlobStore) -> list[tuple[bytes, ObjectInfo]]:
    """Stored packs no index file names, except those a prune plan or tombstone names."""
    named, gone = blobs.pack_index_files, blobs.tombstones | blobs.doomed
    out = []
    for info in listing(blobs.storage, layout.DATA):
        pid = layout.pack_id(info.key)
        if pid is not None and pid not in named and pid not in gone:
            out.append((pid, info))
    return out


def adopt(blobs: BlobStore, found: list[tuple[bytes, ObjectInfo]], limit: int = ADOPT_MAX_PACKS) -> Adopted:
    """Index the newest `limit` of `found` whose headers authenticate, and write their index
    file (in the blob store's writing session, with its retention)."""
    oldest = _dt.datetime.min.replace(tzinfo=_dt.UTC)
    chosen = sorted(found, key=lambda item: item[1].modified or oldest, reverse=True)[:limit]
    out = Adopted()
    with ThreadPoolExecutor(HEADER_READERS, thread_name_prefix="amber-resume") as pool:
        headers = list(pool.map(lambda item: _header(blobs, *item), chosen))
    packs = []
    for (pid, info), header in zip(chosen, headers, strict=True):
        if isinstance(header, str):
            out.skipped.append(header)
            continue
        writer, entries = header
        if entries:
            packs.append(IndexedPack(pid, entries, writer))
            out.packs, out.blobs, out.bytes = out.packs + 1, out.blobs + len(entries), out.bytes + info.size
    if packs:
        out.index_file = blobs.adopt_packs(packs)
    return out


def _header(blobs: BlobStore, pid: bytes, info: ObjectInfo):
    """(writer, entries) of a stored pack's header, or why it cannot be used."""
    key = info.key
    try:
        return packcheck.read_header_at(
            blobs.sealer, pid, info.size, lambda offset, length: blobs.storage.get(key, offset, length)
        )
    except AmberError as e:
        return f"{key}: not reused ({e})"
