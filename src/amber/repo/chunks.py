"""Turning a chunk into a sealed blob, the same way on a backup's threads and in its worker processes.

A blob's id is the BLAKE3 hash of its plaintext keyed with the repository's id
key; its payload is compressed (or not, see format/compression.py) and then
sealed in an AEAD envelope of its kind. Both results below cross the process
boundary, so they pickle as compactly as the tuples they replace, and the
functions below build them without the generated `__init__` (which sets each
field through `object.__setattr__`): a chunk costs about a microsecond less.
"""

from __future__ import annotations

from dataclasses import dataclass

import blake3

from ..crypto.aead import KIND_DATA, Sealer
from ..format import compression as blobfmt


@dataclass(frozen=True, slots=True)
class SealedChunk:
    """A blob ready to be appended to a pack."""

    id: bytes  # keyed BLAKE3 of the plaintext
    comp: int  # compression of the payload (format/compression.py)
    raw_length: int  # plaintext bytes
    sealed: bytes  # the envelope holding the payload

    def __reduce__(self):
        return _sealed_chunk, (self.id, self.comp, self.raw_length, self.sealed)


@dataclass(frozen=True, slots=True)
class FileRead:
    """What reading one file for a backup yields: its blob ids (hex), SHA-256 (hex) and
    size; from a worker process also `chunks`, its blobs sealed there (else None:
    a thread stored them itself)."""

    ids: list[str]
    sha256: str
    size: int
    chunks: list[SealedChunk] | None = None

    def __reduce__(self):
        return file_read, (self.ids, self.sha256, self.size, self.chunks)


_new = object.__new__
_set_id, _set_comp, _set_raw_length, _set_sealed = (
    SealedChunk.__dict__[f].__set__ for f in ("id", "comp", "raw_length", "sealed")
)
_set_ids, _set_sha256, _set_size, _set_chunks = (
    FileRead.__dict__[f].__set__ for f in ("ids", "sha256", "size", "chunks")
)


def _sealed_chunk(blob_id: bytes, comp: int, raw_length: int, sealed: bytes) -> SealedChunk:
    c = _new(SealedChunk)
    _set_id(c, blob_id)
    _set_comp(c, comp)
    _set_raw_length(c, raw_length)
    _set_sealed(c, sealed)
    return c


def file_read(ids: list[str], sha256: str, size: int, chunks: list[SealedChunk] | None = None) -> FileRead:
    """FileRead(ids, sha256, size, chunks), made the fast way."""
    r = _new(FileRead)
    _set_ids(r, ids)
    _set_sha256(r, sha256)
    _set_size(r, size)
    _set_chunks(r, chunks)
    return r


def seal_chunk(sealer: Sealer, id_key: bytes, data, kind: int = KIND_DATA, blob_id: bytes | None = None) -> SealedChunk:
    """Compress and seal `data` as a blob of `kind`; its id is computed unless given
    (a writer that deduplicates knows it already)."""
    if blob_id is None:
        blob_id = blake3.blake3(data, key=id_key).digest()
    comp, payload = blobfmt.compress(data)
    return _sealed_chunk(blob_id, comp, len(data), sealer.seal(kind, payload))
