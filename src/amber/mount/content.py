"""File content for a mount: blobs read lazily, kept in a bounded cache, read ahead.

A read of a file asks for the blobs that hold its range. A blob not cached is
read from its pack together with the blobs of the same file that follow it in
that pack (one ranged read of at most SPAN bytes); while a file is read, the
blobs of the next READ_AHEAD bytes are fetched the same way by background
threads, and so are the first bytes of the files read next (`prefetch`). A
small blob comes with the rest of its WINDOW of the pack, kept for the files
stored beside it. Every blob is opened and checked as any read checks it (its
keyed id authenticates its plaintext); one that cannot be read is read again
through the blob store's own path, which rebuilds it from the pack's parity
where it can and notes the damage for the command to record; if that fails
too, the read fails (EIO), and the next read tries again.

The cache holds decrypted blobs, least recently used dropped first, up to
CACHE_BYTES (plus the blobs being read at that moment). Concurrent reads of one
blob wait for the one read of it.
"""

from __future__ import annotations

import collections
import functools
import queue
import threading
from bisect import bisect_right
from collections.abc import Callable
from typing import Protocol

from ..errors import AmberError, IntegrityError, NotFound, StorageError
from ..format import layout
from ..repo.blobindex import IndexEntry
from ..storage.base import Storage

CACHE_BYTES = 128 << 20  # decrypted blobs kept (chunks are 0.5-8 MiB, about 0.75 MiB on average)
SPAN = 8 << 20  # the most one ranged read of a pack fetches
READ_AHEAD = 16 << 20  # bytes of a file fetched ahead of the one being read
FETCHERS = 2  # background threads that read ahead
WINDOW = 1 << 20  # small blobs are read with the rest of this aligned stretch of their pack ...
WINDOWS_KEPT = 8  # ... and that many stretches kept: the next small files are usually in it


class BlobSource(Protocol):
    """What content is read from (repo/blobs.BlobStore)."""

    storage: Storage

    def lookup(self, blob_id: bytes) -> IndexEntry: ...

    def read(self, blob_id: bytes) -> bytes: ...

    def open_blob(self, blob_id: bytes, e: IndexEntry, sealed) -> bytes: ...


class OpenFile:
    """One opened file: its blobs, where each is stored, and where each ends in the file."""

    __slots__ = ("ids", "entries", "ends", "what", "read_ahead")

    def __init__(self, ids: list[bytes], entries: list[IndexEntry], what: str) -> None:
        self.read_ahead = False  # whether the files after it were fetched when it was first read
        self.ids = ids
        self.entries = entries
        ends, at = [], 0
        for e in entries:
            at += e.raw_length
            ends.append(at)
        self.ends = ends
        self.what = what


class BlobCache:
    """Decrypted blobs shared by every open file of a mount."""

    def __init__(self, source: BlobSource, lock: threading.RLock, limit: int = CACHE_BYTES) -> None:
        self.source = source
        self.index_lock = lock  # held while the index is read again (fs.Mount.refresh)
        self.limit = limit
        self._mu = threading.Lock()
        self._blobs: collections.OrderedDict[bytes, bytes] = collections.OrderedDict()
        self._size = 0
        self._pending: dict[bytes, Pending] = {}
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = False
        self._fetchers = [
            threading.Thread(target=self._fetching, name=f"amber-read-ahead-{n}", daemon=True) for n in range(FETCHERS)
        ]
        for t in self._fetchers:
            t.start()
        self._windows: collections.OrderedDict[tuple[bytes, int], bytes] = collections.OrderedDict()

    def close(self) -> None:
        self._closing = True  # what is still queued is dropped: nobody reads any more
        for _ in self._fetchers:
            self._jobs.put(None)
        for t in self._fetchers:
            t.join()

    def _fetching(self) -> None:
        """A background fetcher: runs queued by read-ahead, one after the other, until None."""
        while (job := self._jobs.get()) is not None:
            if not self._closing:
                job()

    def later(self, job: Callable[[], object]) -> None:
        """Run `job` on a fetcher, after what is queued (it must not raise)."""
        self._jobs.put(job)

    def read(self, f: OpenFile, size: int, offset: int) -> bytes:
        """Up to `size` bytes of the file from `offset` (fewer only at its end)."""
        out: list[bytes] = []
        i = bisect_right(f.ends, offset)
        while size > 0 and i < len(f.ids):
            data = self.blob(f, i)
            start = offset - (f.ends[i - 1] if i else 0)
            piece = data[start : start + size]
            out.append(piece)
            size -= len(piece)
            offset += len(piece)
            i += 1
        return out[0] if len(out) == 1 else b"".join(out)

    def blob(self, f: OpenFile, i: int) -> bytes:
        """The plaintext of the file's i-th blob; blobs after it are fetched in the background."""
        bid = f.ids[i]
        run: list = []
        with self._mu:
            data = self._blobs.get(bid)
            if data is not None:
                self._blobs.move_to_end(bid)
                fut = None
            else:
                fut = self._pending.get(bid)
                if fut is None:
                    run = self._claim(f, i)
                    fut = run[0][2]
            ahead = self._claim_ahead(f, i)
        for r in ahead:
            self._jobs.put(functools.partial(self._fetch, r, f.what))
        if run:
            self._fetch(run, f.what)
        if fut is not None:
            data = fut.result()
        return data

    def _claim(self, f: OpenFile, i: int) -> list:
        """Blob i and those after it stored right behind it in the same pack, up to SPAN bytes,
        that are neither cached nor being read: each with a future its readers wait on."""
        run = []
        span = 0
        prev = None
        for j in range(i, len(f.ids)):
            e, bid = f.entries[j], f.ids[j]
            if prev is not None and (e.pack != prev.pack or e.offset != prev.offset + prev.length):
                break
            if span + e.length > SPAN and run:
                break
            if j > i and (bid in self._blobs or bid in self._pending):
                break
            if any(b == bid for b, _e, _f in run):
                break
            fut = Pending()
            self._pending[bid] = fut
            run.append((bid, e, fut))
            span += e.length
            prev = e
        return run

    def _claim_ahead(self, f: OpenFile, i: int) -> list[list]:
        """Runs to fetch in the background: the blobs of the READ_AHEAD bytes after blob i."""
        return self._claim_from(f, i + 1, f.ends[i] + READ_AHEAD)

    def _claim_from(self, f: OpenFile, j: int, limit: int) -> list[list]:
        """Runs of the blobs from the j-th on that start before `limit` bytes of the file,
        neither cached nor being read."""
        runs = []
        while j < len(f.ids) and (f.ends[j - 1] if j else 0) < limit:
            bid = f.ids[j]
            if bid in self._blobs or bid in self._pending:
                j += 1
                continue
            run = self._claim(f, j)
            runs.append(run)
            j += len(run)
        return runs

    def prefetch(self, f: OpenFile) -> None:
        """Fetch the first READ_AHEAD bytes of a file in the background: the file that is
        likely read next (fs.Mount reads ahead the files after the one being read)."""
        with self._mu:
            runs = self._claim_from(f, 0, READ_AHEAD)
        for r in runs:
            self._jobs.put(functools.partial(self._fetch, r, f.what))

    def _fetch(self, run: list, what: str) -> None:
        """Read a run of blobs with one ranged read and open each; settle their futures."""
        first, last = run[0][1], run[-1][1]
        try:
            span = self._span(first.pack, first.offset, last.offset + last.length - first.offset)
        except Exception:  # each blob is read again below, where the error is told
            span = b""
        view = memoryview(span)
        for bid, e, fut in run:
            start = e.offset - first.offset
            try:
                try:
                    data = self.source.open_blob(bid, e, view[start : start + e.length])
                except IntegrityError:
                    with self.index_lock:
                        data = self.source.read(bid)  # parity, another copy; notes the damage
            except Exception as err:  # whatever it is, it fails this blob's reads, never a reader's wait
                with self._mu:
                    self._pending.pop(bid, None)
                fut.set_exception(_unreadable(err, what))
                continue
            with self._mu:
                self._pending.pop(bid, None)
                self._keep(bid, data)
            fut.set_result(data)

    def _span(self, pack: bytes, offset: int, length: int):
        """`length` bytes of a pack from `offset`. A stretch within one aligned WINDOW is served
        from that window, read whole once (shorter at the pack's end): files backed up one
        after the other lie side by side in their pack, so reading many small files costs a
        few reads, not one each."""
        start = offset - offset % WINDOW
        if offset + length > start + WINDOW:
            return self.source.storage.get(layout.pack(pack), offset, length)
        with self._mu:
            window = self._windows.get((pack, start))
            if window is not None:
                self._windows.move_to_end((pack, start))
        if window is None or len(window) < offset + length - start:
            window = self.source.storage.get(layout.pack(pack), start, WINDOW)
            if len(window) < offset + length - start:  # the index places it past the pack's end
                return self.source.storage.get(layout.pack(pack), offset, length)
            with self._mu:
                self._windows[(pack, start)] = window
                while len(self._windows) > WINDOWS_KEPT:
                    self._windows.popitem(last=False)
        return memoryview(window)[offset - start : offset - start + length]

    def _keep(self, bid: bytes, data: bytes) -> None:
        if bid in self._blobs:
            return
        self._blobs[bid] = data
        self._size += len(data)
        while self._size > self.limit and len(self._blobs) > 1:
            _old, dropped = self._blobs.popitem(last=False)
            self._size -= len(dropped)


class Pending:
    """A blob being read: its readers wait in `result` until the fetcher settles it. (A lock
    held until then: far cheaper than a Future, and one is made for every blob read.)"""

    __slots__ = ("_unsettled", "_value", "_error")

    def __init__(self) -> None:
        self._unsettled = threading.Lock()
        self._unsettled.acquire()
        self._value: bytes = b""
        self._error: BaseException | None = None

    def set_result(self, value: bytes) -> None:
        self._value = value
        self._unsettled.release()

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._unsettled.release()

    def result(self) -> bytes:
        with self._unsettled:  # each waiter passes once it is released
            pass
        if self._error is not None:
            raise self._error
        return self._value


def _unreadable(err: BaseException, what: str) -> AmberError:
    if isinstance(err, NotFound):
        return IntegrityError(f"{what}: {err}")
    if isinstance(err, StorageError | IntegrityError):
        return type(err)(f"{what}: {err}")
    return IntegrityError(f"{what}: {err}")
