"""Verifying the tiled audit log (docs/AUDIT-LOG.md §11): from a remembered checkpoint, or all of it.

From a checkpoint of size m (`since`): the head's frontier gives the root of size n;
a consistency proof m → n from O(log n) tiles; the new entries [m, n) are read,
checked as events, folded onto the frontier stored with entry m - 1 (which must
give the checkpoint's root) up to the head's root, and compared with the tiles
that hold them, level by level. Nothing older is read.

All of it (`everything`): every entry, every level's hashes recomputed, and every
object under `log/` read and compared with what the log says it must hold —
junk is foreign, an authentic object that disagrees is an error naming it, a
full tile or an edge block that is missing is an error; every checkpoint is
checked against the root of its size.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import IntegrityError
from ..format import layout
from ..storage.base import ObjectInfo
from . import checkpoint as cpfmt
from . import merkle
from . import tiles as t
from .entry import parse_entry
from .notes import Notes
from .tiled import Head, TiledStore


class Foreign(Protocol):
    """What the verifier reports an object with (the log's ForeignObject)."""

    key: str


class Log(Protocol):
    """The parts of AuditLog verification uses."""

    origin: str
    public: bytes

    def store(self) -> TiledStore: ...

    def head(self, store: TiledStore, hint: int = 0) -> Head: ...

    def foreign(self, key: str, problem: str, size: int) -> Foreign: ...

    def note(self, size: int, root: bytes) -> bytes: ...

    def notes(self, wanted: list[cpfmt.Checkpoint]) -> Notes: ...

    def classify_checkpoint(self, info: ObjectInfo) -> cpfmt.Checkpoint | Foreign | None: ...

    def legacy_leaves(self, infos: list[ObjectInfo]) -> tuple[list[bytes], list, list[str]]: ...


@dataclass
class Found:
    """What one verification found, before the log's report is made from it."""

    head: Head
    entries: list = field(default_factory=list)  # (event, canonical bytes) of what was read
    errors: list[str] = field(default_factory=list)
    foreign: list = field(default_factory=list)
    checkpoints: int = 0
    listed: set[str] = field(default_factory=set)  # the checkpoints' keys a full verify listed
    # what appends running meanwhile may explain: objects beyond the head, tiles missing
    beyond: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    timestamps: list[dict] = field(default_factory=list)  # each RFC 3161 token checked (timestamps.py)
    warnings: list[str] = field(default_factory=list)


def read_events(store: TiledStore, lo: int, size: int, found: Found) -> list[bytes]:
    """Entries [lo, size) checked as events at their positions; stops at the first bad one."""
    raws = store.entries(lo, size, size)
    add = found.entries.append
    for i, raw in enumerate(raws, lo):
        try:
            add((parse_entry(raw, i, ""), raw))
        except IntegrityError:
            try:  # again, to say where it is (naming every event would cost more than parsing it)
                parse_entry(raw, i, f"{store.entry_key(i, size)} (event {i})")
            except IntegrityError as e:
                found.errors.append(str(e))
            return raws[: i - lo]
    return raws


def since(log: Log, store: TiledStore, head: Head, cp: cpfmt.Checkpoint) -> Found:
    """Verify what was added after the checkpoint `cp` (already checked to be a prefix)."""
    found = Found(head)
    n, m = head.size, cp.size
    try:
        raws = read_events(store, m, n, found)
        if found.errors:
            return found
        fr = store.frontier(m)
        if t.frontier_root(fr) != cp.root:
            found.errors.append(
                f"{store.bundle_key(t.bundle_of(m))}: does not give the root of the checkpoint of size {m}"
            )
            return found
        leaves = [merkle.leaf_hash(r) for r in raws]
        for i, leaf in enumerate(leaves, m):
            fr = t.extend(fr, i, leaf)
        if t.frontier_root(fr) != head.root:
            found.errors.append(f"{head.key}: entries {m}-{n - 1} do not lead to the root of the log's head")
        _compare_tiles(store, n, m, leaves, found)
    except IntegrityError as e:
        found.errors.append(str(e))
    _problems(log, store, found)
    return found


def _compare_tiles(store: TiledStore, n: int, m: int, leaves: list[bytes], found: Found) -> None:
    """The tiles holding positions [m, n), each level against the one below it."""
    below = leaves
    lo = m
    level = 0
    while True:
        count = t.level_count(n, level)
        stored = store.hashes(level, n, lo, count, strict=True)
        for pos, (want, got) in enumerate(zip(below, stored, strict=False), lo):
            if want != got:
                found.errors.append(f"{t.containing(level, count, pos).key()}: its hashes do not match its entries")
                break
        level += 1
        lo = lo >> t.HEIGHT
        up = t.level_count(n, level)
        if up <= lo:
            return
        below = [
            merkle.root(store.hashes(level - 1, n, k * t.WIDTH, (k + 1) * t.WIDTH, strict=True)) for k in range(lo, up)
        ]


@contextmanager
def uncollected() -> Iterator[None]:
    """The cyclic garbage collector paused for a full verify: it holds millions of small
    objects (listings, entries, hashes) and makes no cycles worth collecting meanwhile, and
    each collection would walk them all again (at 10^6 events, a good part of the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def everything(log: Log, store: TiledStore, head: Head, legacy: list[ObjectInfo], others: list[ObjectInfo]) -> Found:
    """Verify the whole tiled log and classify every object under `log/` (`others`: every
    listed object outside `log/entries/` and `log/timestamps/`, which timestamps.py checks)."""
    found = Found(head)
    n = head.size
    try:
        raws = read_events(store, 0, n, found)
    except IntegrityError as e:
        found.errors.append(str(e))
        raws = []
    leaves = merkle.leaf_hashes(raws)
    levels = [leaves]
    while len(levels[-1]) >= t.WIDTH:
        levels.append(merkle.tile_roots(levels[-1], t.WIDTH))
    complete = len(raws) == n
    folder = layout.LOG_CHECKPOINTS
    cps = [(i, layout.log_slot(i.key, folder)) for i in others if i.key.startswith(folder)]
    found.listed = {i.key for i, _size in cps}
    sizes = {size for _i, size in cps}
    objects = []
    for info in others:
        if info.key.startswith(t.TILE):
            place = t.parse_key(info.key)
            objects.append((info, place))
            if place is not None and place.level is None:
                sizes.add(place.index * t.WIDTH + place.width)
    sizes.add(n)
    roots = _roots(leaves, {s for s in sizes if s is not None})
    if complete and n and roots[n] != head.root:
        found.errors.append(f"{head.key}: its frontier does not match the log's entries")
    # the notes to compare the checkpoints with are signed meanwhile (notes.py)
    fits = [s if s is not None and s in roots and i.size <= cpfmt.MAX_NOTE else None for i, s in cps]
    made = log.notes([cpfmt.Checkpoint(log.origin, s, roots[s]) for s in fits if s is not None])
    try:
        expected = Expected(raws, levels, roots)
        for info, place in objects:
            _check_object(log, store, info, place, expected, n, found)
        if complete:
            _missing_tiles(levels, {i.key for i, _place in objects}, found)
        _check_checkpoints(log, store, cps, fits, made, roots, n, found)
    finally:
        made.close()
    _check_legacy(log, legacy, leaves, found)
    for info in others:
        if not info.key.startswith((layout.LOG_CHECKPOINTS, t.TILE)):
            problem = (
                "not part of the audit log (only log/tile/, log/checkpoints/, log/timestamps/ and log/entries/ are)"
            )
            found.foreign.append(log.foreign(info.key, problem, info.size))
    _problems(log, store, found)
    return found


def _roots(leaves: list[bytes], sizes: set[int]) -> dict[int, bytes]:
    """The root at each of `sizes` (up to the log's length), in one pass over the leaves: the
    compact range is kept as a stack, and folded into a root only at the sizes asked for."""
    out = {}
    fr: list[bytes] = []
    sha = hashlib.sha256
    for i, leaf in enumerate(leaves):
        node, size = leaf, i
        while size & 1:
            node = sha(b"\x01" + fr.pop() + node).digest()
            size >>= 1
        fr.append(node)
        if i + 1 in sizes:
            out[i + 1] = t.frontier_root(fr)
    return out


class Expected:
    """What the blocks the log's entries define must hold: the entries, each level's hashes,
    the root at each size. A stored block is compared with the bytes these make, and decoded
    only when it differs (to say how)."""

    def __init__(self, raws: list[bytes], levels: list[list[bytes]], roots: dict[int, bytes]) -> None:
        self.raws = raws
        self.levels = levels
        self.roots = roots

    def entries(self, lo: int, hi: int) -> bytes:
        """Entries [lo, hi) as a bundle stores them (length || bytes each)."""
        pack = t.LENGTH.pack
        return b"".join([pack(len(r)) + r for r in self.raws[lo:hi]])

    def beyond(self, place: t.Place) -> bool:
        """Whether `place` holds positions the log does not have."""
        end = place.index * t.WIDTH + place.width
        if place.level is None:
            return end > len(self.raws)
        return place.level >= len(self.levels) or end > len(self.levels[place.level])


def _check_object(
    log: Log, store: TiledStore, info: ObjectInfo, place: t.Place | None, expected: Expected, n: int, found: Found
) -> None:
    """One object under `log/tile/` against what the log says its name must hold."""
    if place is None:
        found.foreign.append(log.foreign(info.key, "not a tile or bundle name", info.size))
        return
    if expected.beyond(place):
        what = f"beyond the log of {n} entries: planted, or written after this verify read the head"
        found.foreign.append(log.foreign(info.key, what, info.size))
        found.beyond.append(info.key)
        return
    data = store._get(info.key)
    if data is None:
        return
    own = place if place.alt == 0 else t.Place(place.level, place.index, place.start, place.width)  # its header's
    lo, hi = place.index * t.WIDTH + place.start, place.index * t.WIDTH + place.width
    try:
        plain = store.unseal(place, data)
        head = t.header(own)
        if place.level is None:
            stored = expected.entries(lo, hi)
            count = plain[len(head)] if len(plain) > len(head) else -1
            body = len(head) + 1 + t.HASH * count
            if plain.startswith(head) and len(plain) == body + len(stored) and plain.endswith(stored):
                frontier = [plain[k : k + t.HASH] for k in range(len(head) + 1, body, t.HASH)]
            else:
                frontier, entries = t.decode_bundle(plain, own, info.key)
                if entries != expected.raws[lo:hi]:
                    found.errors.append(f"{info.key}: authentic, but its entries are not the log's")
                    return
            if t.frontier_root(frontier) != expected.roots.get(hi):
                found.errors.append(f"{info.key}: authentic, but its frontier is not the log's")
        elif plain != head + b"".join(expected.levels[place.level][lo:hi]):
            t.decode_tile(plain, own, info.key)  # IntegrityError if it is no block of this place
            found.errors.append(f"{info.key}: its hashes do not match its entries")
    except IntegrityError as e:
        found.foreign.append(log.foreign(info.key, str(e).removeprefix(info.key + ": "), info.size))


def _missing_tiles(levels: list[list[bytes]], present: set[str], found: Found) -> None:
    """Every full tile, and each block of each level's partial tile, must be stored."""
    for level, hashes in enumerate(levels):
        count = len(hashes)
        want = [t.Place(level, k, 0, t.WIDTH) for k in range(count // t.WIDTH)]
        want += [t.Place(level, count // t.WIDTH, s, e) for s, e in t.blocks(count % t.WIDTH)]
        for place in want:
            if place.key() not in present:
                found.errors.append(f"{place.key()}: tile missing from the log (deleted, or its writer stopped)")
                found.missing.append(place.key())


def _check_checkpoints(
    log: Log,
    store: TiledStore,
    cps: list[tuple[ObjectInfo, int | None]],
    fits: list[int | None],
    made: Iterator[bytes],
    roots: dict[int, bytes],
    n: int,
    found: Found,
) -> None:
    """Every stored checkpoint (with the size its name says) against the root of its size.
    Ed25519 signatures are deterministic, so a note byte for byte equal to the one this log's
    key signs for that size and root is this log's, and needs no verification (signing costs
    a third of verifying). `made` yields that note for each checkpoint that `fits` gives a
    size (its name's, within the log, its length a note's), in order."""
    for (info, _size), fit in zip(cps, fits, strict=True):
        if fit is not None:
            want = next(made)
            note = store._get(info.key)
            if note is not None and note == want:
                found.checkpoints += 1
                continue
        got = log.classify_checkpoint(info)
        if got is None:
            continue
        if not isinstance(got, cpfmt.Checkpoint):
            found.foreign.append(got)
            continue
        if got.size > n:
            found.errors.append(
                f"{info.key} covers {got.size} entries, but the log now has only {n}: "
                "the repository was rolled back or its log truncated"
            )
        elif got.size and roots.get(got.size) not in (None, got.root):
            found.errors.append(
                f"{info.key} (size {got.size}) is not a prefix of the log now found: "
                "its history was rewritten or forked"
            )
        else:
            found.checkpoints += 1


def _check_legacy(log: Log, legacy: list[ObjectInfo], leaves: list[bytes], found: Found) -> None:
    """A log upgraded from `log/entries/`: its entries must be the first leaves of the tiles."""
    if not legacy:
        return
    old, foreign, errors = log.legacy_leaves(legacy)
    found.foreign.extend(foreign)
    found.errors.extend(errors)
    if old != leaves[: len(old)] or len(old) > len(leaves):
        found.errors.append(
            f"{layout.LOG_ENTRIES}: its entries are not the first entries of the tiled log (appended by an "
            "amber version that does not read tiles, or changed after the upgrade)"
        )


def _problems(log: Log, store: TiledStore, found: Found) -> None:
    """What the store met while reading: junk (foreign) and missing tiles (errors)."""
    known = {f.key for f in found.foreign}
    for key, problem in store.problems.foreign.items():
        if key not in known:
            found.foreign.append(log.foreign(key, problem, 0))
    found.errors.extend(e for e in store.problems.errors if e not in found.errors)
    found.missing.extend(k for k in store.problems.missing if k not in found.missing)
