"""Index files: which pack holds each blob, at what offset.

Plaintext (zstd-compressed, then sealed as KIND_INDEX):

    b"AMBI" | u8 version (1) | u32 LE pack count |
    per pack: 32-byte pack id | u32 LE blob count |
              per blob: 32-byte blob id | u8 type | u8 compression |
                        u32 LE offset | u32 LE stored length | u32 LE raw length

Version 2 (repositories of format 2) adds, after each pack id, the 32-byte public
writer key its blobs are sealed under (crypto/content.py); all zeros for a pack
whose blobs are sealed under the data key. An index file whose packs all have no
writer key is written as version 1.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ..errors import IntegrityError
from .pack import (
    BLOB_DATA,
    BLOB_TREE,
    COMPRESSIONS,
    ENVELOPE_OVERHEAD,
    MAX_DATA_RAW,
    MAX_PACK,
    MAX_TREE_RAW,
    PackEntry,
    entry_problem,
)

MAGIC = b"AMBI\x01"
MAGIC2 = b"AMBI\x02"
NO_WRITER = bytes(32)
_PACK = struct.Struct("<32sI")
_PACK2 = struct.Struct("<32s32sI")
_BLOB = struct.Struct("<32sBBIII")
_new_tuple = tuple.__new__  # a PackEntry from its six fields without a Python-level __new__


class IndexedPack(NamedTuple):
    """One pack as an index file lists it."""

    pack: bytes
    entries: list[PackEntry]
    writer: bytes | None = None  # the public writer key of its blobs (format 2), else None


def encode(packs: Iterable[IndexedPack | tuple]) -> bytes:
    """An index file's plaintext; each pack an IndexedPack or a (pack, entries) pair."""
    listed = [p if isinstance(p, IndexedPack) else IndexedPack(*p) for p in packs]
    v2 = any(p.writer is not None for p in listed)
    parts = [MAGIC2 if v2 else MAGIC, struct.pack("<I", len(listed))]
    for p in listed:
        parts.append(
            _PACK2.pack(p.pack, p.writer or NO_WRITER, len(p.entries)) if v2 else _PACK.pack(p.pack, len(p.entries))
        )
        parts.extend(_BLOB.pack(e.id, e.type, e.comp, e.offset, e.length, e.raw_length) for e in p.entries)
    return b"".join(parts)


class PackRecords(NamedTuple):
    """One pack as an index file lists it, its entries left as stored: `blobs` records of
    BLOB_RECORD bytes each (id, type, compression, offset, length, raw length), already
    checked. What loading the index reads: no object per blob."""

    pack: bytes
    records: bytes
    blobs: int
    writer: bytes | None = None


BLOB_RECORD = _BLOB.size


def decode(raw: bytes, what: str = "index") -> Iterator[IndexedPack]:
    for pack_id, writer, entries, _records, _n in _packs(raw, what, keep=True):
        yield IndexedPack(pack_id, entries, writer)


def decode_records(raw: bytes, what: str = "index") -> list[PackRecords]:
    """`decode`, every entry checked the same way, with each pack's entries kept as the
    bytes they are stored as (`PackRecords`)."""
    packs = _packs(raw, what, keep=False)
    return [PackRecords(pack, records, n, writer) for pack, writer, _entries, records, n in packs]


def _packs(raw: bytes, what: str, keep: bool) -> Iterator[tuple[bytes, bytes | None, list[PackEntry], bytes, int]]:
    """(pack id, writer key or None, entries, records, blob count) per pack, every entry
    checked: entries as PackEntry tuples when `keep` (records empty), else the pack's
    records as stored (entries empty)."""
    if raw[:5] not in (MAGIC, MAGIC2) or len(raw) < 9:
        raise IntegrityError(f"{what}: not an amber index (bad magic or version)")
    head = _PACK2 if raw[:5] == MAGIC2 else _PACK
    (count,) = struct.unpack_from("<I", raw, 5)
    view = memoryview(raw)
    pos = 9
    for _ in range(count):
        if pos + head.size > len(raw):
            raise IntegrityError(f"{what}: truncated")
        if head is _PACK2:
            pack_id, writer, n = _PACK2.unpack_from(raw, pos)
        else:
            (pack_id, n), writer = _PACK.unpack_from(raw, pos), NO_WRITER
        pos += head.size
        end = pos + n * _BLOB.size
        if end > len(raw):
            raise IntegrityError(f"{what}: truncated")
        entries: list[PackEntry] = []
        for bid, t, c, off, ln, rl in _BLOB.iter_unpack(view[pos:end]):
            # entry_problem's checks, inlined for the millions of entries of a large repository
            if not (
                c in COMPRESSIONS
                and (rl <= MAX_DATA_RAW if t == BLOB_DATA else t == BLOB_TREE and rl <= MAX_TREE_RAW)
                and ENVELOPE_OVERHEAD <= ln <= rl + ENVELOPE_OVERHEAD
                and off + ln <= MAX_PACK
            ):
                problem = entry_problem(t, c, off, ln, rl) or "impossible entry"
                raise IntegrityError(f"{what}: pack {pack_id.hex()[:16]}, blob {bid.hex()[:16]}: {problem}")
            if keep:
                entries.append(_new_tuple(PackEntry, (t, c, off, ln, rl, bid)))
        yield pack_id, None if writer == NO_WRITER else writer, entries, b"" if keep else raw[pos:end], n
        pos = end
    if pos != len(raw):
        raise IntegrityError(f"{what}: trailing bytes")
