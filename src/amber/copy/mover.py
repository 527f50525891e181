"""Blobs moved from the source's packs into the destination, region by region, each verified."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import blake3

from ..errors import AmberError, IntegrityError, NotFound
from ..format import compression as blobfmt
from ..format import layout
from ..repo.blobindex import IndexEntry
from ..repo.blobs import ENVELOPE_KINDS, WriteSession
from .target import CopyRepo, CopyReport

MAX_SPAN = 4 << 20  # bytes of one ranged read of a source pack (several blobs)
READERS = 4  # threads reading and re-sealing regions
PACKS_PER_INDEX = 4  # an index file at least this often, so a killed copy resumes


class Mover:
    """Blobs from the source's packs into the destination's write session."""

    def __init__(self, dest: CopyRepo, source: CopyRepo, session: WriteSession, report: CopyReport) -> None:
        self.dest, self.source, self.session, self.report = dest, source, session, report
        self._mu = threading.Lock()
        self._indexed_at = dest.blobs.packs_written

    def move(self, blobs: Iterable[bytes]) -> None:
        """Store every blob of `blobs` the destination lacks, read region by region."""
        lookup = self.source.blobs.lookup
        by_pack: dict[bytes, list[tuple[bytes, IndexEntry]]] = {}
        for bid in blobs:
            if not self.session.has(bid):
                e = lookup(bid)
                by_pack.setdefault(e.pack, []).append((bid, e))
        spans = [(pack, r) for pack, items in by_pack.items() for r in regions(items)]
        errors: list[str] = []
        pool = ThreadPoolExecutor(READERS, thread_name_prefix="amber-copy")
        try:
            for fut in [pool.submit(self._region, pack, items) for pack, items in spans]:
                problem = fut.result()
                if problem:
                    errors.append(problem)
        finally:  # interrupted: the regions not started are dropped, not read
            pool.shutdown(wait=True, cancel_futures=True)
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise IntegrityError(f"the source does not verify: {errors[0]}{more}")

    def _region(self, pack: bytes, items: list[tuple[bytes, IndexEntry]]) -> str | None:
        """Read one region of a source pack and store the blobs that verify; the first
        problem, or None."""
        start = items[0][1].offset
        end = max(e.offset + e.length for _, e in items)
        try:
            region = memoryview(self.source.storage.get(layout.pack(pack), start, end - start))
        except (NotFound, AmberError) as err:
            return f"pack {pack.hex()[:16]}: {err}"
        problem = None
        for bid, e in items:
            try:
                payload = self._open(bid, e, region[e.offset - start : e.offset - start + e.length])
            except IntegrityError as err:
                problem = problem or str(err)  # never stored; the blobs that verify are
                continue
            self.store(e.type, bid, e.comp, e.raw_length, payload)
        return problem

    def _open(self, bid: bytes, e: IndexEntry, sealed: Any) -> bytes:
        """A source blob's compressed payload, after its plaintext was checked against its id."""
        what = f"blob {bid.hex()[:16]} in pack {e.pack.hex()[:16]}"
        if len(sealed) != e.length:
            raise IntegrityError(f"{what}: truncated pack")
        payload = self.source.blobs.content_sealer(e.pack, what).open(ENVELOPE_KINDS[e.type], sealed, what)
        data = blobfmt.decompress(e.comp, payload, e.raw_length, what)
        if blake3.blake3(data, key=self.source.keys.ids).digest() != bid:
            raise IntegrityError(f"{what}: content does not match its id")
        return payload

    def store(self, blob_type: int, bid: bytes, comp: int, raw_length: int, payload: bytes) -> None:
        """Seal a verified payload for the destination and add it (no recompression)."""
        sealed = self.dest.blobs.blob_sealer.seal(ENVELOPE_KINDS[blob_type], payload)
        if self.session.add_sealed(blob_type, bid, comp, raw_length, sealed):
            with self._mu:
                self.report.blobs_copied += 1
                self.report.bytes_copied += raw_length
        self.index_often()

    def add(self, blob_type: int, data: bytes) -> str:
        """Store plaintext under the destination's id (re-chunking); returns the id in hex."""
        bid = self.dest.keys.blob_id(data)
        if self.session.add(blob_type, bid, data):
            with self._mu:
                self.report.blobs_copied += 1
                self.report.bytes_copied += len(data)
        self.index_often()
        return bid.hex()

    def index_often(self) -> None:
        """An index file once PACKS_PER_INDEX packs wait for one: a killed copy then loses
        at most that many packs to the next run's deduplication."""
        blobs = self.dest.blobs
        with self._mu:
            if blobs.packs_written - self._indexed_at < PACKS_PER_INDEX:
                return
            self._indexed_at = blobs.packs_written
        blobs.write_index()


def regions(items: list[tuple[bytes, IndexEntry]]) -> list[list[tuple[bytes, IndexEntry]]]:
    """A pack's blobs in order of offset, cut into regions of at most MAX_SPAN bytes."""
    items.sort(key=lambda it: it[1].offset)
    out: list[list] = []
    for it in items:
        if out and it[1].offset + it[1].length - out[-1][0][1].offset <= MAX_SPAN:
            out[-1].append(it)
        else:
            out.append([it])
    return out
