"""Turning a chunk into a sealed blob, the same way on a backup's threads and in its worker processes.

A blob's id is the BLAKE3 hash of its plaintext keyed with the repository's id
key; its payload is compressed (or not, see format/compression.py) and then
sealed in an AEAD envelope of its kind. Both results below cross the process
boundary: they are named tuples, immutable, as cheap to build and to pickle
as the bare tuples they name.
"""

from __future__ import annotations

from typing import NamedTuple

import blake3

from ..crypto.aead import KIND_DATA, Sealer
from ..errors import IntegrityError
from ..format import compression as blobfmt


class SealedChunk(NamedTuple):
    """A blob ready to be appended to a pack."""

    id: bytes  # keyed BLAKE3 of the plaintext
    comp: int  # compression of the payload (format/compression.py)
    raw_length: int  # plaintext bytes
    sealed: bytes  # the envelope holding the payload


class FileRead(NamedTuple):
    """What reading one file for a backup yields: its blob ids (hex), SHA-256 (hex) and
    size; from a worker process also `chunks`, its blobs sealed there (else None:
    a thread stored them itself). `new_raw` and `new_stored`: the plaintext and stored bytes
    of the blobs this read added (not those deduplicated), for the compressibility signal
    (backup/anomaly.py)."""

    ids: list[str]
    sha256: str
    size: int
    chunks: list[SealedChunk] | None = None
    new_raw: int = 0
    new_stored: int = 0


def seal_chunk(sealer: Sealer, id_key: bytes, data, kind: int = KIND_DATA, blob_id: bytes | None = None) -> SealedChunk:
    """Compress and seal `data` as a blob of `kind`; its id is computed unless given
    (a writer that deduplicates knows it already)."""
    if blob_id is None:
        blob_id = blake3.blake3(data, key=id_key).digest()
    comp, payload = blobfmt.compress(data)
    return SealedChunk(blob_id, comp, len(data), sealer.seal(kind, payload))


def open_chunk(sealer: Sealer, id_key: bytes, blob_id: bytes, kind: int, comp: int, raw_length: int, sealed, what: str):
    """A blob's plaintext from its sealed bytes: envelope kind, bounded decompression and
    keyed id all checked, the same way in this process and in a restore's worker
    processes; any damage is an IntegrityError naming `what`."""
    data = blobfmt.decompress(comp, sealer.open(kind, sealed, what), raw_length, what)
    if blake3.blake3(data, key=id_key).digest() != blob_id:
        raise IntegrityError(f"{what}: content does not match its id")
    return data
