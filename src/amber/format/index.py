"""Index files: which pack holds each blob, at what offset.

Plaintext (zstd-compressed, then sealed as KIND_INDEX):

    b"AMBI" | u8 version (1) | u32 LE pack count |
    per pack: 32-byte pack id | u32 LE blob count |
              per blob: 32-byte blob id | u8 type | u8 compression |
                        u32 LE offset | u32 LE stored length | u32 LE raw length
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

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
_PACK = struct.Struct("<32sI")
_BLOB = struct.Struct("<32sBBIII")
_new_tuple = tuple.__new__  # a PackEntry from its six fields without a Python-level __new__


def encode(packs: Iterable[tuple[bytes, list[PackEntry]]]) -> bytes:
    packs = list(packs)
    parts = [MAGIC, struct.pack("<I", len(packs))]
    for pack_id, entries in packs:
        parts.append(_PACK.pack(pack_id, len(entries)))
        parts.extend(_BLOB.pack(e.id, e.type, e.comp, e.offset, e.length, e.raw_length) for e in entries)
    return b"".join(parts)


def decode(raw: bytes, what: str = "index") -> Iterator[tuple[bytes, list[PackEntry]]]:
    if raw[:5] != MAGIC or len(raw) < 9:
        raise IntegrityError(f"{what}: not an amber index (bad magic or version)")
    (count,) = struct.unpack_from("<I", raw, 5)
    view = memoryview(raw)
    pos = 9
    for _ in range(count):
        if pos + _PACK.size > len(raw):
            raise IntegrityError(f"{what}: truncated")
        pack_id, n = _PACK.unpack_from(raw, pos)
        pos += _PACK.size
        end = pos + n * _BLOB.size
        if end > len(raw):
            raise IntegrityError(f"{what}: truncated")
        entries = []
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
            entries.append(_new_tuple(PackEntry, (t, c, off, ln, rl, bid)))
        pos = end
        yield pack_id, entries
    if pos != len(raw):
        raise IntegrityError(f"{what}: trailing bytes")
