"""Reading packs whole and checking every blob in them: `check --read-data`.

Checking a pack is per-byte work (hashing, decrypting, decompressing, hashing
again) with some Python per blob; the structure check that runs beside it is
all Python. Sharing one interpreter lock, the two took turns. Packs large
enough to repay it are therefore checked in a pool of spawned processes
(repo/processes.py) holding only the data and id keys: the calling process
reads each pack from storage on a thread and hands its bytes over, with the
index's entries for it, and gets back what is wrong. Where processes cannot
start, or the packs are few and small, threads do the same work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import blake3

from ..crypto.aead import KIND_PACK_HEADER, KIND_PACK_HEADER_SEALED, Sealer, envelope_kind
from ..crypto.content import ContentOpener
from ..errors import IntegrityError
from ..format import pack as packfmt
from ..format.pack import PackEntry
from .blobs import ENVELOPE_KINDS
from .chunks import open_chunk
from .processes import PipePool

PROCESS_AFTER_BYTES = 64 << 20  # stored packs below this many bytes are checked on threads


class Opening(NamedTuple):
    """What opens packs: the data key's sealer (headers, and blobs written before format 2),
    the id key, and the content key (format 2) for blobs sealed under writer keys."""

    sealer: Sealer
    id_key: bytes
    content: ContentOpener | None
    only_sealed: bool = False  # made in format 2: no blob may be sealed under the data key

    @classmethod
    def of(cls, data_key: bytes, id_key: bytes, content_private: bytes | None, only_sealed: bool = False) -> "Opening":
        opener = ContentOpener(content_private) if content_private else None
        return cls(Sealer(data_key), id_key, opener, only_sealed)

    def blob_sealer(self, writer: bytes | None, what: str) -> Sealer:
        if writer is None:
            if self.only_sealed:
                raise IntegrityError(f"{what}: sealed under the data key in a repository made in format 2")
            return self.sealer
        if self.content is None:
            raise IntegrityError(f"{what}: sealed to the content key, which this key does not hold")
        return self.content.sealer(writer, what)


_state: Opening | None = None


def read_header(sealer: Sealer, pack_id: bytes, data) -> tuple[bytes | None, list[PackEntry]]:
    """(the writer key its blobs are sealed under, None before format 2; the entries) of a
    whole pack's sealed header; IntegrityError if it is damaged."""
    what = f"pack {pack_id.hex()}"
    n = packfmt.split_trailer(data[-4:], len(data), what)
    return open_header(sealer, what, data[len(data) - 4 - n : len(data) - 4], len(data) - 4 - n)


def read_header_at(
    sealer: Sealer, pack_id: bytes, size: int, get: Callable[[int, int], bytes]
) -> tuple[bytes | None, list[PackEntry]]:
    """`read_header` of a stored pack of `size` bytes by two ranged reads (`get(offset,
    length)`): its trailer, then its header, without fetching the blobs."""
    what = f"pack {pack_id.hex()}"
    if size < 4:
        raise IntegrityError(f"{what}: too short to be a pack")
    n = packfmt.split_trailer(get(size - 4, 4), size, what)
    envelope = get(size - 4 - n, n)
    if len(envelope) != n:
        raise IntegrityError(f"{what}: header cut short")
    return open_header(sealer, what, envelope, size - 4 - n)


def open_header(sealer: Sealer, what: str, envelope, blobs_end: int) -> tuple[bytes | None, list[PackEntry]]:
    """(writer key or None, entries) of a pack's header envelope, whose blobs end at `blobs_end`."""
    if envelope_kind(envelope) == KIND_PACK_HEADER_SEALED:
        plain = sealer.open(KIND_PACK_HEADER_SEALED, envelope, what + " header")
        writer, records = packfmt.split_sealed_header(plain, what + " header")
        return writer, packfmt.decode_header(records, blobs_end, what)
    header = sealer.open(KIND_PACK_HEADER, envelope, what + " header")
    return None, packfmt.decode_header(header, blobs_end, what)


def verify_pack(
    opening: Opening, pack_id: bytes, data: bytes, indexed: list, writer: bytes | None = None
) -> tuple[list[str], list[tuple[bytes, str]], list[bytes]]:
    """(problems of the pack itself, damaged blobs as (id, problem), spare copies) of one pack
    read whole. `indexed`: per blob the index places in it, (id, type, compression, offset,
    length, raw length). Blobs its header lists that the index places elsewhere (another copy
    is preferred, repo/damage.py) are checked too: those that read correctly are the spare
    copies. A damaged header makes every indexed blob of the pack count as damaged, and so
    does an index entry the header contradicts: either way the pack cannot be indexed again
    from its header, so those blobs are stored again by the next backup. `writer`: the writer
    key the index names for the pack (format 2); the header must name the same."""
    problems: list[str] = []
    bad: list[tuple[bytes, str]] = []
    if blake3.blake3(data).digest() != pack_id:
        problems.append("content does not match its name (bytes changed or truncated)")
    header = None
    try:
        header_writer, header = read_header(opening.sealer, pack_id, data)
        if indexed and header_writer != writer:
            problems.append("header: names another writer key than the index does")
            header = None
        writer = header_writer
    except IntegrityError as e:
        problems.append(f"header: {e}")
    try:
        sealer = opening.blob_sealer(writer, f"pack {pack_id.hex()[:16]}")
    except IntegrityError as e:
        return problems + [str(e)], [(blob[0], str(e)) for blob in indexed], []
    id_key = opening.id_key
    entries = {e.id: e for e in header} if header is not None else {}
    view = memoryview(data)  # each blob opened where it lies, not copied out first
    short = pack_id.hex()[:16]
    for bid, typ, comp, offset, length, raw_length in indexed:
        h = entries.pop(bid, None)
        why = _open(sealer, id_key, view, short, (bid, typ, comp, offset, length, raw_length))
        if why is None and header is None:
            why = f"blob {bid.hex()[:16]} in pack {short}: the pack's header is damaged"
        elif why is None and (h is None or h.offset != offset or h.length != length):
            why = f"blob {bid.hex()[:16]} is indexed here but not in the pack header"
        if why is not None:
            bad.append((bid, why))
    spares = []
    for e in entries.values():
        why = _open(sealer, id_key, view, short, (e.id, e.type, e.comp, e.offset, e.length, e.raw_length))
        if why is None:
            spares.append(e.id)
        else:
            bad.append((e.id, why))
    return problems, bad, spares


def _open(sealer: Sealer, id_key: bytes, view, pack: str, blob: tuple) -> str | None:
    """What is wrong with one blob, (id, type, compression, offset, length, raw length), where
    it lies in a pack read whole (`view`; `pack` is its short id), or None."""
    bid, typ, comp, offset, length, raw_length = blob
    what = f"blob {bid.hex()[:16]} in pack {pack}"
    try:
        if offset + length > len(view):
            raise IntegrityError(f"{what}: truncated pack")
        open_chunk(sealer, id_key, bid, ENVELOPE_KINDS[typ], comp, raw_length, view[offset : offset + length], what)
    except IntegrityError as e:
        return str(e)
    return None


def start(opening: tuple, workers: int) -> PipePool:
    """`opening`: the arguments of `Opening.of`. Batches: (pack id, its bytes, its indexed
    blobs, its writer key), see `verify_pack`."""
    return PipePool(workers, _init, opening, _check_batch)


def _init(*opening) -> None:
    global _state
    _state = Opening.of(*opening)


def _check_batch(batch: tuple) -> tuple:
    return verify_pack(_state, *batch)  # type: ignore[arg-type]
