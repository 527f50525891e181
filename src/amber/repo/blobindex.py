"""The in-memory index: blob id → where the blob is stored, in about 60 bytes per blob.

A dict of Python objects costs about 300 bytes per blob (the key, the entry,
its ints, the dict slot), which at ten million small files is gigabytes.
Here every blob is one fixed-width record in a bytearray — the same fields
as in an index file (FORMAT.md §9), the pack as a number into a list of
pack ids — and lookups go through an open-addressing table of record
numbers (an `array` of 32-bit ints, at most two thirds full). The table is
placed by Python's `hash()` of the id, which is keyed per process, so
blob ids an attacker chose for a planted index file cannot be made to
collide on purpose.

Where the records would outgrow a memory budget (a quarter of the machine's
memory, or AMBER_INDEX_MEMORY MiB), they move to an unnamed file in the
cache folder, mapped into memory (`_Spilled`): the kernel keeps what is
looked up often and reads the rest from disk when memory is short, instead of
the process failing. The table stays in memory (4–6 bytes per blob).

Readers may look up while one writer (under the blob store's lock) adds:
a record is appended before the table names it, a grown table is built
whole before it replaces the old one, and a record is rewritten with one
slice assignment, so a reader sees an entry either before or after a
change, never half of it.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
import weakref
from array import array
from collections.abc import Container, Iterator, Mapping
from typing import NamedTuple

from ..errors import AmberError

_REC = struct.Struct("<32sIBBIII")  # id, pack number, type, compression, offset, length, raw length
_PACK_NO = struct.Struct("<I")
_ID_PACK = struct.Struct("<32sI14x")  # the id and pack number of a record
_INDEX_ROW = struct.Struct("<32sBBIII")  # an entry as an index file stores it (FORMAT.md §9)
_W = _REC.size
_ID = 32
_EMPTY = -1  # a table slot never used
_GONE = -2  # a table slot whose blob was deleted: probing goes past it
_DEAD = 0xFFFFFFFF  # pack number of a deleted record


class IndexEntry(NamedTuple):
    """Where a blob is stored. A named tuple: one is made per lookup."""

    pack: bytes
    type: int
    comp: int
    offset: int
    length: int
    raw_length: int


class BlobIndex:
    """A mapping of 32-byte blob ids to `IndexEntry`, stored compactly.

    Supports what the callers of a dict used: `get`, `[]`, `in`, `len`,
    assignment, `del`, and iteration over keys, values and items (in the
    order blobs were first added)."""

    def __init__(self, expected: int = 0) -> None:
        self._recs = bytearray()
        self._packs: list[bytes] = []
        self._pack_no: dict[bytes, int] = {}
        self._table = array("i", [_EMPTY]) * _table_size(expected)
        self._used = 0  # table slots not empty (live and deleted)
        self._live = 0
        self._spill_if_over(expected)

    def reserve(self, n: int) -> None:
        """Make room for `n` more blobs at once, so loading many index files grows the table
        once; where their records would pass the memory budget, move the records to disk."""
        size = _table_size(self._used + n)
        if size > len(self._table):
            self._rehash(size)
        self._spill_if_over(n)

    def _spill_if_over(self, n: int) -> None:
        """Move the records to disk if `n` more would pass the memory budget."""
        if not isinstance(self._recs, _Spilled) and (self._live + n) * _W >= memory_budget():
            self._recs = _Spilled.of(self._recs, (self._live + n) * _W)

    @property
    def spilled(self) -> bool:
        """Whether the records are on disk (mapped), not in memory."""
        return isinstance(self._recs, _Spilled)

    # -- lookups -------------------------------------------------------------

    def _slot(self, bid: bytes) -> tuple[int, int]:
        """(table position, record number): the blob's, or the empty slot it would take and -1."""
        table, recs = self._table, self._recs
        mask = len(table) - 1
        i = hash(bid) & mask
        while True:
            r = table[i]
            if r == _EMPTY:
                return i, -1
            if r >= 0 and recs.startswith(bid, r * _W):  # compares in place, no copy
                return i, r
            i = (i + 1) & mask

    def _record(self, bid: bytes) -> int:
        """The blob's record number, or -1 (`_slot` for readers, without the tuple)."""
        table, recs = self._table, self._recs
        mask = len(table) - 1
        i = hash(bid) & mask
        while True:
            r = table[i]
            if r == _EMPTY:
                return -1
            if r >= 0 and recs.startswith(bid, r * _W):
                return r
            i = (i + 1) & mask

    def _entry(self, r: int) -> IndexEntry:
        _bid, pn, t, comp, off, length, raw = _REC.unpack_from(self._recs, r * _W)
        return IndexEntry(self._packs[pn], t, comp, off, length, raw)

    def get(self, bid: bytes, default: IndexEntry | None = None) -> IndexEntry | None:
        r = self._record(bid)
        return default if r < 0 else self._entry(r)

    def pack_of(self, bid: bytes) -> bytes | None:
        """The pack holding the blob (cheaper than `get` where only that is needed)."""
        r = self._record(bid)
        if r < 0:
            return None
        return self._packs[_PACK_NO.unpack_from(self._recs, r * _W + _ID)[0]]

    def has_all_hex(self, hex_ids, pack_numbers: set[int] | None = None) -> bool:
        """Whether every id (hex, as trees and the files cache hold a file's content) is
        indexed: one loop for an unchanged file's blobs, run for every file a backup skips.
        With `pack_numbers`, the number of each found blob's pack is added to it (see `pack`)."""
        table, recs = self._table, self._recs
        mask = len(table) - 1
        for h in hex_ids:
            bid = bytes.fromhex(h)
            if len(bid) != _ID:
                return False
            i = hash(bid) & mask
            while True:
                r = table[i]
                if r == _EMPTY:
                    return False
                if r >= 0 and recs.startswith(bid, r * _W):
                    if pack_numbers is not None:
                        pack_numbers.add(_PACK_NO.unpack_from(recs, r * _W + _ID)[0])
                    break
                i = (i + 1) & mask
        return True

    def pack(self, number: int) -> bytes:
        """The pack id of a pack number `has_all_hex` gave."""
        return self._packs[number]

    def __getitem__(self, bid: bytes) -> IndexEntry:
        r = self._record(bid)
        if r < 0:
            raise KeyError(bid)
        return self._entry(r)

    def __contains__(self, bid: object) -> bool:
        return isinstance(bid, bytes) and self._record(bid) >= 0

    def __len__(self) -> int:
        return self._live

    # -- changes -------------------------------------------------------------

    def _pack_number(self, pack: bytes) -> int:
        n = self._pack_no.get(pack)
        if n is None:
            n = self._pack_no[pack] = len(self._packs)
            self._packs.append(pack)
        return n

    def __setitem__(self, bid: bytes, e: IndexEntry) -> None:
        self.put(bid, e.pack, e.type, e.comp, e.offset, e.length, e.raw_length)

    def put(self, bid: bytes, pack: bytes, t: int, comp: int, offset: int, length: int, raw_length: int) -> None:
        """Add or replace a blob's entry (`index[bid] = IndexEntry(...)` without the object)."""
        if len(bid) != _ID:
            raise ValueError(f"a blob id is {_ID} bytes, not {len(bid)}")
        rec = _REC.pack(bid, self._pack_number(pack), t, comp, offset, length, raw_length)
        i, r = self._slot(bid)
        if r >= 0:
            self._recs[r * _W : (r + 1) * _W] = rec
            return
        self._recs += rec
        self._table[i] = len(self._recs) // _W - 1
        self._used += 1
        self._live += 1
        if self._used * 3 > len(self._table) * 2:
            self._rehash(_table_size(self._live))

    def put_pack(
        self, pack: bytes, entries, doomed: frozenset | None = None, damaged: Mapping[bytes, Container] | None = None
    ) -> None:
        """`put` for every entry of one pack (objects with id, type, comp, offset, length
        and raw_length, as format/pack.PackEntry), in one loop with the table grown once:
        what a writer does after each pack.

        With `doomed` (packs a prune plan is about to delete), a blob already indexed
        keeps its entry unless that entry's pack is doomed and this one is not: of two
        copies, the one that will stay. `damaged` (blob id -> packs whose copy of it was
        found damaged, FORMAT.md §8.1) is weighed the same way: of two copies, the one not
        found damaged. Both are looked at only when a blob is met a second time."""
        rows = ((e.id, e.type, e.comp, e.offset, e.length, e.raw_length) for e in entries)
        self._put_rows(pack, rows, len(entries), doomed, damaged)

    def put_records(
        self,
        pack: bytes,
        records: bytes,
        count: int,
        doomed: frozenset | None = None,
        damaged: Mapping[bytes, Container] | None = None,
    ) -> None:
        """`put_pack` for a pack's entries as an index file stores them (`count` records of
        id, type, compression, offset, length and raw length: format/index.PackRecords),
        unpacked one at a time: what loading does per index file, without an object per blob."""
        self._put_rows(pack, _INDEX_ROW.iter_unpack(records), count, doomed, damaged)

    def _put_rows(
        self, pack: bytes, rows, count: int, doomed: frozenset | None, damaged: Mapping[bytes, Container] | None
    ) -> None:
        """`put` for (id, type, compression, offset, length, raw length) rows of one pack."""
        pn = self._pack_number(pack)
        keep_known = doomed is not None or bool(damaged)
        doomed = doomed or frozenset()
        keep_known_always = pack in doomed
        doomed_numbers = {self._pack_no[p] for p in doomed if p in self._pack_no}
        damaged = damaged or {}
        if (self._used + count) * 3 > len(self._table) * 2:
            self._rehash(_table_size(self._live + count))
        table, recs, pack_rec = self._table, self._recs, _REC.pack
        mask = len(table) - 1
        for bid, t, comp, offset, length, raw_length in rows:
            if len(bid) != _ID:
                raise ValueError(f"a blob id is {_ID} bytes, not {len(bid)}")
            rec = pack_rec(bid, pn, t, comp, offset, length, raw_length)
            i = hash(bid) & mask
            while True:
                r = table[i]
                if r == _EMPTY:
                    recs += rec  # the record first, then the slot that names it (readers may look)
                    table[i] = len(recs) // _W - 1
                    self._used += 1
                    self._live += 1
                    break
                if r >= 0 and recs.startswith(bid, r * _W):
                    if keep_known and not self._better(bid, r, pack, keep_known_always, doomed_numbers, damaged):
                        break
                    recs[r * _W : (r + 1) * _W] = rec
                    break
                i = (i + 1) & mask

    def _better(self, bid: bytes, r: int, pack: bytes, doomed: bool, doomed_numbers: set, damaged: Mapping) -> bool:
        """Whether a new copy of a blob in `pack` (itself doomed or not) should replace record `r`:
        only when the known copy is doomed or damaged and the new one is neither."""
        bad = damaged.get(bid, ())
        if doomed or pack in bad:
            return False
        known = _PACK_NO.unpack_from(self._recs, r * _W + _ID)[0]
        return known in doomed_numbers or self._packs[known] in bad

    def __delitem__(self, bid: bytes) -> None:
        i, r = self._slot(bid)
        if r < 0:
            raise KeyError(bid)
        self._table[i] = _GONE
        _PACK_NO.pack_into(self._recs, r * _W + _ID, _DEAD)
        self._live -= 1

    def _rehash(self, size: int) -> None:
        """A new table of `size` slots naming every live record, swapped in whole."""
        table = array("i", [_EMPTY]) * size
        mask = size - 1
        # ids and pack numbers unpacked in C, record by record (the writer alone resizes `_recs`)
        with memoryview(self._recs) as view, view[: len(self._recs)] as used:
            for r, (bid, pn) in enumerate(_ID_PACK.iter_unpack(used)):
                if pn == _DEAD:
                    continue
                i = hash(bid) & mask
                while table[i] != _EMPTY:
                    i = (i + 1) & mask
                table[i] = r
        self._table = table
        self._used = self._live

    # -- iteration -----------------------------------------------------------

    def _live_records(self) -> Iterator[int]:
        recs, unpack = self._recs, _PACK_NO.unpack_from
        for r in range(len(recs) // _W):
            if unpack(recs, r * _W + _ID)[0] != _DEAD:
                yield r

    def __iter__(self) -> Iterator[bytes]:
        recs = self._recs
        for r in self._live_records():
            yield bytes(recs[r * _W : r * _W + _ID])

    def keys(self) -> Iterator[bytes]:
        return iter(self)

    def values(self) -> Iterator[IndexEntry]:
        for r in self._live_records():
            yield self._entry(r)

    def items(self) -> Iterator[tuple[bytes, IndexEntry]]:
        recs = self._recs
        for r in self._live_records():
            yield bytes(recs[r * _W : r * _W + _ID]), self._entry(r)


def _table_size(n: int) -> int:
    """A power of two at least 1.5 × `n` (and at least 8): at most two thirds full, where
    linear probing finds a blob it holds in at most two probes on average (4 bytes per
    slot: 67 MB at ten million blobs, against 134 MB when kept at most half full)."""
    size = 8
    while size * 2 < 3 * n + 2:
        size *= 2
    return size


def memory_budget() -> int:
    """The bytes of index records kept in memory before they move to disk: AMBER_INDEX_MEMORY
    (MiB), else a quarter of the machine's memory."""
    given = os.environ.get("AMBER_INDEX_MEMORY", "").strip()
    if given.isdigit():
        return int(given) << 20
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (ValueError, OSError):
        return 4 << 30


def _no_room(e: OSError, where: str) -> AmberError:
    return AmberError(
        f"the blob index outgrew its memory budget ({memory_budget() >> 20} MiB) and could not be moved "
        f"to disk in {where}: {e.strerror or e} (free space there, set XDG_CACHE_HOME to a folder with "
        "room, or raise AMBER_INDEX_MEMORY, in MiB)"
    )


def spill_dir() -> str:
    """Where spilled records go: the cache folder (on disk, unlike a /tmp that may be memory)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "amber")
    os.makedirs(path, exist_ok=True)
    return path


class _Spilled(mmap.mmap):
    """Index records in an unnamed file, mapped: what `BlobIndex` does with its bytearray of
    records (`len`, `+=`, `startswith`, slices, the buffer) on a mapping that grows by
    doubling. The file's blocks are allocated before they are mapped, so a full disk is an
    OSError when the index grows, never a SIGBUS when a page is first written."""

    end: int
    fd: int

    @classmethod
    def of(cls, recs, capacity: int) -> "_Spilled":
        where = spill_dir()
        try:
            fd, path = tempfile.mkstemp(dir=where, prefix="index-")
        except OSError as e:
            raise _no_room(e, where) from None
        os.unlink(path)  # unnamed: its blocks are freed when the process ends, however it ends
        capacity = max(capacity, len(recs), _W) * 5 // 4
        try:
            os.posix_fallocate(fd, 0, capacity)
            out = cls(fd, capacity)
        except BaseException as e:
            os.close(fd)
            if isinstance(e, OSError):
                raise _no_room(e, where) from None
            raise
        out.fd = fd
        weakref.finalize(out, os.close, fd)
        out[: len(recs)] = bytes(recs)
        out.end = len(recs)
        return out

    def __len__(self) -> int:
        return self.end

    def __iadd__(self, rec):
        end = self.end + len(rec)
        if end > self.size():
            grown = max(end, 2 * self.size())
            try:
                os.posix_fallocate(self.fd, 0, grown)
            except OSError as e:
                raise _no_room(e, spill_dir()) from None
            self.resize(grown)
        self[self.end : end] = rec
        self.end = end
        return self

    def startswith(self, prefix: bytes, start: int) -> bool:
        return self.find(prefix, start, start + len(prefix)) == start
