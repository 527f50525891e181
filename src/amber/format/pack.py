"""Pack files: sealed blobs back to back, then a sealed header, then its length.

    blob_0 | blob_1 | ... | header envelope | u32 LE length of the header envelope

The header plaintext is a sequence of 42-byte records, one per blob, in file
order (offsets are cumulative from 0):

    u8 type (0 data, 1 tree) | u8 compression | u32 LE stored length |
    u32 LE raw length | 32-byte blob id

In a repository of format 2 the header envelope is of kind 13 and its plaintext
starts with the 32-byte public writer key every blob of the pack is sealed under
(crypto/content.py), then the records.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..errors import IntegrityError
from .compression import COMP_NONE, COMP_ZSTD, MAX_BLOB_RAW

BLOB_DATA = 0
BLOB_TREE = 1

_REC = struct.Struct("<BBII32s")
REC_LEN = _REC.size
MAX_HEADER = 64 << 20

# The format's limits on one blob (FORMAT.md §7, §18). A data blob is one chunk, at most
# the chunker's largest cut; a tree blob at most MAX_BLOB_RAW. The stored envelope is the
# payload plus ENVELOPE_OVERHEAD, and the payload is never longer than the plaintext
# (zstd is kept only when it saves at least 1/32), so a stored length is at most
# raw length + ENVELOPE_OVERHEAD. Offsets and lengths are u32: a pack stays below 4 GiB.
ENVELOPE_OVERHEAD = 31
MAX_DATA_RAW = 8 << 20
MAX_TREE_RAW = MAX_BLOB_RAW
MAX_PACK = 1 << 32
COMPRESSIONS = (COMP_NONE, COMP_ZSTD)


def entry_problem(t: int, comp: int, offset: int, length: int, raw_length: int) -> str | None:
    """What makes a blob's claimed place and size impossible in this format (None if nothing)."""
    if t not in (BLOB_DATA, BLOB_TREE):
        return f"unknown blob type {t}"
    if comp not in COMPRESSIONS:
        return f"unknown compression {comp}"
    limit = MAX_DATA_RAW if t == BLOB_DATA else MAX_TREE_RAW
    if raw_length > limit:
        return f"a {'data' if t == BLOB_DATA else 'tree'} blob of {raw_length} bytes (the format allows {limit})"
    if not ENVELOPE_OVERHEAD <= length <= raw_length + ENVELOPE_OVERHEAD:
        return f"stored length {length} impossible for {raw_length} bytes of plaintext"
    if offset < 0 or offset + length > MAX_PACK:
        return f"blob at {offset}+{length} beyond what a pack can hold"
    return None


class PackEntry(NamedTuple):
    """One blob's place in a pack. A named tuple: millions are made when index files
    are read, and a tuple is made several times faster than a frozen dataclass."""

    type: int
    comp: int
    offset: int
    length: int
    raw_length: int
    id: bytes


def encode_header(entries: list[PackEntry]) -> bytes:
    return b"".join(_REC.pack(e.type, e.comp, e.length, e.raw_length, e.id) for e in entries)


def decode_header(plain: bytes, pack_body_len: int, what: str) -> list[PackEntry]:
    if len(plain) % REC_LEN:
        raise IntegrityError(f"{what}: header length {len(plain)} is not a whole number of records")
    out = []
    offset = 0
    for t, comp, length, raw, blob_id in _REC.iter_unpack(plain):
        problem = entry_problem(t, comp, offset, length, raw)
        if problem is not None:
            raise IntegrityError(f"{what}: blob {blob_id.hex()[:16]}: {problem}")
        out.append(PackEntry(t, comp, offset, length, raw, blob_id))
        offset += length
    if offset != pack_body_len:
        raise IntegrityError(f"{what}: header describes {offset} bytes of blobs, pack holds {pack_body_len}")
    return out


WRITER_KEY_LEN = 32


def encode_sealed_header(writer: bytes, entries: list[PackEntry]) -> bytes:
    """A format-2 header's plaintext: the writer key, then the records."""
    return writer + encode_header(entries)


def split_sealed_header(plain: bytes, what: str) -> tuple[bytes, bytes]:
    """(writer key, records) of a format-2 header's plaintext."""
    if len(plain) < WRITER_KEY_LEN:
        raise IntegrityError(f"{what}: header too short to name its writer key")
    return bytes(plain[:WRITER_KEY_LEN]), plain[WRITER_KEY_LEN:]


def split_trailer(tail: bytes, pack_size: int, what: str) -> int:
    """Header envelope length from the pack's last 4 bytes, bounds-checked."""
    if pack_size < 4 or len(tail) < 4:
        raise IntegrityError(f"{what}: too short to be a pack")
    (n,) = struct.unpack("<I", tail[-4:])
    if n > MAX_HEADER or n + 4 > pack_size:
        raise IntegrityError(f"{what}: header length {n} out of bounds")
    return n


def trailer(header_envelope_len: int) -> bytes:
    return struct.pack("<I", header_envelope_len)
