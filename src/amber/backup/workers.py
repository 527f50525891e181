"""Reading small files in worker processes, for backups large enough to repay them.

Python runs one thread at a time; reading, hashing, compressing and sealing
tens of thousands of small files costs more Python per byte than a thread
pool can spread over the cores. A pool of processes (repo/processes.py) does
that work beside the walk and returns, per file, its blob ids, SHA-256, size
and every chunk already compressed and sealed, as plain tuples; the calling
process only deduplicates and packs them. Large files stay on the threads
(reader.py), which stream them.
"""

from __future__ import annotations

import hashlib
import os

import pyfastcdc

from ..crypto.aead import Sealer
from ..repo.chunks import seal_chunk
from ..repo.processes import PipePool
from .reader import _read_all, split

_state: tuple | None = None


def start(keys, seal: tuple[bytes, int], chunker_config: dict, workers: int) -> PipePool:
    """`seal`: (key, envelope algorithm) the blobs are sealed under (the store's `blob_key`)."""
    args = (*seal, keys.ids, chunker_config["avg"], chunker_config["min"], chunker_config["max"], keys.chunker_seed)
    return PipePool(workers, _init, args, read_batch)


def _init(seal_key: bytes, alg: int, id_key: bytes, avg: int, mn: int, mx: int, seed: int) -> None:
    global _state
    chunker = pyfastcdc.FastCDC(avg, min_size=mn, max_size=mx, seed=seed)
    _state = (Sealer(seal_key, alg), id_key, mn, chunker)


def read_batch(jobs: list) -> list:
    """Per (path, size): (hex blob ids, hex SHA-256, size, [(id, compression, raw
    length, sealed bytes) per chunk]), or (None, errno, strerror, None) if it could not be read."""
    sealer, id_key, min_chunk, chunker = _state
    out: list = []
    for path, size in jobs:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
            try:
                data = _read_all(fd, size)
            finally:
                os.close(fd)
        except OSError as e:
            out.append((None, e.errno, e.strerror, None))
            continue
        chunks = [tuple(seal_chunk(sealer, id_key, chunk)) for chunk in split(data, min_chunk, chunker)]
        out.append(([c[0].hex() for c in chunks], hashlib.sha256(data).hexdigest(), len(data), chunks))
    return out
