"""Reading files for a backup: chunk, hash, and hand each new chunk to the blob store.

Runs on the archiver's worker threads. Small files are read in one call and
chunked in memory; large files are streamed, chunked and hashed here while
their chunks are compressed and sealed on a separate pool, so one big file
keeps every core busy.
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pyfastcdc

from ..format.pack import BLOB_DATA
from ..repo.chunks import FileRead

READ_WHOLE = 8 << 20  # files up to this size are read in one call
LARGE_INFLIGHT = 4  # chunks of one large file being compressed at once


class FileReader:
    def __init__(self, store, keys, chunker_config: dict, stats, workers: int) -> None:
        self.store = store
        self.keys = keys
        self.stats = stats
        self.workers = workers
        self._chunker_args = (chunker_config["avg"], chunker_config["min"], chunker_config["max"], keys.chunker_seed)
        self._tls = threading.local()
        self._mu = threading.Lock()
        self._blobs: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._blobs is not None:
            self._blobs.shutdown(wait=True, cancel_futures=True)

    def chunker(self) -> pyfastcdc.FastCDC:
        c = getattr(self._tls, "chunker", None)
        if c is None:
            avg, mn, mx, seed = self._chunker_args
            c = self._tls.chunker = pyfastcdc.FastCDC(avg, min_size=mn, max_size=mx, seed=seed)
        return c

    def _read_large(self, fd: int, added: list[int]):
        """Stream a large file: chunk and hash here, compress and seal on the blob pool,
        so one big file uses every core. `added` gets [raw, stored] bytes of the new blobs."""
        store, blob_id = self.store, self.keys.blob_id
        sha = hashlib.sha256()
        ids: list[str] = []
        size = 0
        inflight: collections.deque = collections.deque()

        def done(fut, raw: int) -> None:
            stored = fut.result()
            if stored:
                added[0] += raw
                added[1] += stored

        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            for c in self.chunker().cut_stream(f):
                data = bytes(c.data)  # the stream reuses its buffer
                bid = blob_id(data)
                sha.update(data)
                ids.append(bid.hex())
                size += c.length
                with self._mu:  # counted as it goes: progress moves through a large file
                    self.stats.bytes_read += c.length
                if not store.has(bid):
                    inflight.append((self._blob_pool().submit(store.add, BLOB_DATA, bid, data), len(data)))
                    while len(inflight) > LARGE_INFLIGHT:
                        done(*inflight.popleft())
        for fut, raw in inflight:
            done(fut, raw)
        return ids, sha, size

    def _blob_pool(self) -> ThreadPoolExecutor:
        with self._mu:
            if self._blobs is None:
                self._blobs = ThreadPoolExecutor(self.workers, thread_name_prefix="amber-blob")
            return self._blobs

    def store_chunks(self, chunks, sha, added: list[int] | None = None) -> list[str]:
        """Store chunks, returning their ids; `added` gets [raw, stored] bytes of the new ones."""
        store, blob_id = self.store, self.keys.blob_id
        ids = []
        for data in chunks:
            bid = blob_id(data)
            sha.update(data)
            stored = store.add(BLOB_DATA, bid, data)
            if stored and added is not None:
                added[0] += len(data)
                added[1] += stored
            ids.append(bid.hex())
        return ids

    def read_files(self, jobs: list) -> list:
        """Results of `read_file` for several files; an OSError stands for a file that failed."""
        out = []
        for path, size in jobs:
            try:
                out.append(self.read_file(path, size))
            except OSError as e:
                out.append(e)
        return out

    def read_file(self, path: str, size_hint: int) -> FileRead:
        """The content ids, SHA-256 and size of one regular file, its new chunks stored."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        self.stats.current = path
        added = [0, 0]
        try:
            if size_hint > READ_WHOLE:  # counted in bytes_read chunk by chunk as it is read
                ids, sha, size = self._read_large(fd, added)
                return FileRead(ids, sha.hexdigest(), size, None, added[0], added[1])
            data = _read_all(fd, size_hint)
            sha = hashlib.sha256()
            ids = self.store_chunks(split(data, self._chunker_args[1], self.chunker()), sha, added)
            size = len(data)
        finally:
            os.close(fd)
        with self._mu:
            self.stats.bytes_read += size
        return FileRead(ids, sha.hexdigest(), size, None, added[0], added[1])

    # -- the walk (calling thread) ---------------------------------------------


def split(data: bytes, min_chunk: int, chunker: pyfastcdc.FastCDC):
    """The chunks of a file read whole: none, itself, or FastCDC's cuts."""
    if not data:
        return ()
    if len(data) <= min_chunk:
        return (data,)
    return (c.data for c in chunker.cut_buf(data))


def _read_all(fd: int, hint: int) -> bytes:
    data = os.read(fd, hint + 1) if hint else os.read(fd, 65536)
    if len(data) <= hint:
        return data
    parts = [data]
    while True:
        more = os.read(fd, 1 << 20)
        if not more:
            return b"".join(parts)
        parts.append(more)
