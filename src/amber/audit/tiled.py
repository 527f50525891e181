"""The tiled audit log in storage: finding its head, reading entries and tiles, appending.

Pure names and encodings are in `tiles.py`; the layout is docs/AUDIT-LOG.md §2.2.
The entry bundles are the log; the hash tiles are derived from them and only
speed reading up. Every object is sealed, and names its own place inside.

An append reads the head's bundle block (its frontier gives the root), the older
blocks the new ones merge (at most 8 per level, usually none), and writes the
bundle block that makes the tree one longer — put-if-absent, so it is the one
place two writers meet: the loser reads the winner's block and tries again one
further. Junk that holds that name is passed over to the next alternate name
(`<name>.1` … `.7`). Then each level's tile block and the checkpoint.

A tile that is missing or does not open is rebuilt from the level below (the
level-0 tile from the bundle): readers report it, appends go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..crypto.aead import KIND_LOG_BUNDLE, KIND_LOG_TILE, Sealer
from ..errors import AlreadyExists, AmberError, IntegrityError, NotFound, StorageError
from ..storage.base import Retention, Storage
from . import merkle
from . import tiles as t


@dataclass
class Head:
    """The log as one read found it: its size, the compact range after its last entry, and the
    key of the bundle block that holds that entry (None for an empty log)."""

    size: int
    frontier: list[bytes]
    key: str | None = None

    @property
    def root(self) -> bytes:
        return t.frontier_root(self.frontier)


@dataclass
class Problems:
    """What readers met on the way: objects that are not what their name says (`foreign`: key
    -> what is wrong) and damage to the log itself (`errors`). Appends carry on past both."""

    foreign: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # keys of tiles found missing

    def error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)


class TiledStore:
    """Reads and writes one repository's tiled log. `problems` collects what reads met;
    `reads` counts storage requests (for the benchmark and the tests that bound them)."""

    def __init__(self, storage: Storage, sealer: Sealer) -> None:
        self.storage = storage
        self.sealer = sealer
        self.problems = Problems()
        self.reads = 0
        self._blocks: dict[str, tuple[list[bytes], list[bytes]]] = {}  # bundle blocks read or written
        self._tiles: dict[str, list[bytes]] = {}  # tile blocks verified or written
        self.frontiers: dict[int, list[bytes]] = {}  # tree size -> its compact range, as read

    # -- raw objects ------------------------------------------------------------------------

    def _get(self, key: str) -> bytes | None:
        self.reads += 1
        try:
            return self.storage.get(key)
        except NotFound:
            return None
        except StorageError:
            self.reads += 1
            try:
                return self.storage.get(key)
            except NotFound:
                return None
            except StorageError as e:
                self.problems.foreign[key] = f"cannot be read: {e}"
                return None

    def unseal(self, place: t.Place, data: bytes) -> bytes:
        """The plaintext of the object stored under `place`'s name (not yet decoded)."""
        return self.sealer.open(KIND_LOG_BUNDLE if place.level is None else KIND_LOG_TILE, data, place.key())

    def open_bundle(self, place: t.Place, data: bytes) -> tuple[list[bytes], list[bytes]]:
        plain = self.unseal(place, data)
        return t.decode_bundle(plain, t.Place(None, place.index, place.start, place.width), place.key())

    def open_tile(self, place: t.Place, data: bytes) -> list[bytes]:
        plain = self.unseal(place, data)
        return t.decode_tile(plain, t.Place(place.level, place.index, place.start, place.width), place.key())

    # -- bundles ----------------------------------------------------------------------------

    def bundle(self, place: t.Place) -> tuple[list[bytes], list[bytes]] | None:
        """(frontier, entries) of a bundle block: the first of its names, in order, that holds a
        valid block; None when a name before any valid one is free. Junk met is foreign."""
        if place.key() in self._blocks:
            return self._blocks[place.key()]
        found = None
        for alt in range(t.ALTERNATES):
            p = t.Place(None, place.index, place.start, place.width, alt)
            data = self._get(p.key())
            if data is None:
                break
            try:
                found = self.open_bundle(p, data)
                break
            except IntegrityError as e:
                self.problems.foreign[p.key()] = _problem(e, p.key())
        if found is not None:
            self._blocks[place.key()] = found
        return found

    def bundle_key(self, place: t.Place) -> str:
        """The name the valid block of `place` is stored under (after `bundle` found it)."""
        for alt in range(t.ALTERNATES):
            key = t.Place(None, place.index, place.start, place.width, alt).key()
            if key not in self.problems.foreign:
                return key
        return place.key()

    def head(self, hint: int = 0) -> Head:
        """The log's size and compact range, found from `hint` (a size the log reached: this
        client's remembered checkpoint) with O(log(size - hint)) reads: full bundles by
        doubling and halving, then one listing of the last bundle's partial blocks (or, when
        nothing came after the hint, one probe of the next place)."""
        full = hint // t.WIDTH
        if self.bundle(t.Place(None, full, 0, t.WIDTH)) is not None:
            step, lo = 1, full
            while self.bundle(t.Place(None, lo + step, 0, t.WIDTH)) is not None:
                lo, step = lo + step, step * 2
            hi = lo + step  # bundle `lo` is full, `hi` is not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self.bundle(t.Place(None, mid, 0, t.WIDTH)) is not None:
                    lo = mid
                else:
                    hi = mid
            full = hi
        size = full * t.WIDTH
        self._refuse_replaced(full)
        if size < hint and self._ends_at(hint):
            size = hint  # the common case, nothing appended since the hint: no listing needed
        else:
            for width in self._partial_widths(full):
                if self.bundle(t.bundle_of(size + width)) is not None:
                    size += width
                    break
        if size == 0:
            self.frontiers[0] = []
            return Head(0, [])
        frontier = self.frontier(size)
        return Head(size, frontier, self.bundle_key(t.bundle_of(size)))

    def frontier(self, size: int) -> list[bytes]:
        """The compact range of the tree of `size` (>= 1) entries, stored with its last entry;
        IntegrityError naming the block when it is missing or does not fit that size."""
        if size in self.frontiers:
            return self.frontiers[size]
        place = t.bundle_of(size)
        got = self.bundle(place)
        if got is None:
            what = self.problems.foreign.get(place.key(), "missing (deleted)")
            raise IntegrityError(f"{place.key()}: {what}: the last entry of a tree of {size} entries cannot be read")
        if len(got[0]) != len(t.frontier_sizes(size)):
            raise IntegrityError(f"{self.bundle_key(place)}: its frontier does not fit a tree of {size} entries")
        self.frontiers[size] = got[0]
        return got[0]

    def _refuse_replaced(self, full: int) -> None:
        """Junk under the name of full bundle `full`, where the log goes on after it, is a block
        replaced (or deleted and planted over): the log cannot be read past it. Junk with
        nothing valid after it is a planted next place, which appends pass over."""
        key = t.Place(None, full, 0, t.WIDTH).key()
        if key not in self.problems.foreign:
            return
        after = self.bundle(t.Place(None, full + 1, 0, t.WIDTH)) is not None or any(
            self.bundle(t.bundle_of((full + 1) * t.WIDTH + w)) is not None for w in self._partial_widths(full + 1)
        )
        if after:
            raise IntegrityError(f"{key}: {self.problems.foreign[key]}; the log goes on after it, so it was replaced")

    def _ends_at(self, size: int) -> bool:
        """Whether the tree of `size` is stored and nothing claims the next place (one probe of
        its name; junk there, or anything unusual, makes the caller list instead)."""
        self.reads += 1
        return not self.storage.exists(t.bundle_of(size + 1).key()) and self.bundle(t.bundle_of(size)) is not None

    def _partial_widths(self, index: int) -> list[int]:
        """The widths of the partial bundle blocks stored for bundle `index`, largest first."""
        prefix = t.object_key(None, index, 1).rsplit("/", 1)[0] + "/"
        self.reads += 1
        widths = set()
        for info in self.storage.list(prefix):
            place = t.parse_key(info.key)
            if place is not None and place.level is None and place.index == index:
                widths.add(place.width)
        return sorted(widths, reverse=True)

    def entry_key(self, pos: int, size: int) -> str:
        """The key of the bundle block that holds entry `pos` of a log of `size` entries."""
        place = t.containing(0, size, pos)
        return self.bundle_key(t.Place(None, place.index, place.start, place.width))

    def entries(self, lo: int, hi: int, size: int) -> list[bytes]:
        """The entries at positions [lo, hi) of a log of `size` entries, as stored."""
        out: list[bytes] = []
        full = size // t.WIDTH
        pos = lo
        while pos < hi:
            index = pos // t.WIDTH
            base = index * t.WIDTH
            place = t.Place(None, index, 0, t.WIDTH) if index < full else None
            if place is None:
                place = t.containing(0, size, pos)
                place = t.Place(None, place.index, place.start, place.width)
            got = self.bundle(place)
            if got is None:
                what = self.problems.foreign.get(place.key(), "missing from the log (deleted)")
                events = f"events {base + place.start}-{base + place.width - 1}"
                raise IntegrityError(f"{place.key()}: {what}: {events} cannot be read")
            end = min(hi, base + place.width)
            out.extend(got[1][pos - base - place.start : end - base - place.start])
            pos = end
        return out

    # -- hash tiles -------------------------------------------------------------------------

    def hashes(self, level: int, size: int, lo: int, hi: int, strict: bool = False) -> list[bytes]:
        """Level `level`'s hashes at positions [lo, hi) of the tree of `size` leaves, whose
        frontier this store has read (`head`, `claim`). Each block is verified before it is
        used — its root against the frontier (a block of a partial tile) or the level above (a
        full tile) — and one that is missing, junk or wrong is passed over for its alternates,
        else rebuilt from the level below; `strict` reports a missing one."""
        count = t.level_count(size, level)
        out: list[bytes] = []
        pos = lo
        while pos < hi:
            place = t.containing(level, count, pos)
            base = place.index * t.WIDTH
            block = self.tile(place, size, strict)
            end = min(hi, base + place.width)
            out.extend(block[pos - base - place.start : end - base - place.start])
            pos = end
        return out

    def tile(self, place: t.Place, size: int, strict: bool = False) -> list[bytes]:
        key = place.key()
        if key in self._tiles:
            return self._tiles[key]
        want = self._expected(place, size, strict)
        block = self._load(place, want, strict)
        if block is None:
            block = self._rebuild(place, size)
            if merkle.root(block) != want:
                raise IntegrityError(f"{key}: the entries below it do not give the hash the log names for it")
        self._tiles[key] = block
        return block

    def _load(self, place: t.Place, want: bytes | None, strict: bool = False) -> list[bytes] | None:
        """The first block stored under `place`'s names whose root is `want` (any authentic
        one when `want` is None); None when there is none."""
        for alt in range(t.ALTERNATES):
            p = t.Place(place.level, place.index, place.start, place.width, alt)
            key = p.key()
            data = self._get(key)
            if data is None:
                if alt == 0 and strict:
                    self.problems.error(f"{key}: tile missing from the log (deleted, or its writer stopped)")
                    self.problems.missing.append(key)
                return None
            try:
                got = self.open_tile(p, data)
            except IntegrityError as e:
                self.problems.foreign[key] = _problem(e, key)
                continue
            if want is None or merkle.root(got) == want:
                return got
            self.problems.error(f"{key}: its hashes do not match its entries")
        return None

    def _expected(self, place: t.Place, size: int, strict: bool) -> bytes:
        """The root a block of the tree of `size` must have: a hash of the level above for a
        full tile, an element of the frontier for a block of a partial tile."""
        if place.full:
            return self.hashes(place.level + 1, size, place.index, place.index + 1, strict)[0]  # type: ignore[operator]
        frontier = self.frontier(size)
        span = t.WIDTH**place.level  # type: ignore[operator]
        start, width = (place.index * t.WIDTH + place.start) * span, (place.width - place.start) * span
        pos = 0
        for h, w in zip(frontier, t.frontier_sizes(size), strict=True):
            if (pos, w) == (start, width):
                return h
            pos += w
        raise IntegrityError(f"{place.key()}: no block of the tree of {size} entries")

    def _rebuild(self, place: t.Place, size: int) -> list[bytes]:
        """A tile block computed from the level below: leaf hashes of the bundle block, or the
        roots of the full tiles one level down (the caller checks the result)."""
        base = place.index * t.WIDTH
        if place.level == 0:
            got = self.bundle(t.Place(None, place.index, place.start, place.width))
            if got is None:
                raise IntegrityError(f"{place.key()}: neither the tile nor its bundle block can be read")
            return [merkle.leaf_hash(e) for e in got[1]]
        below = place.level - 1  # type: ignore[operator]
        out = []
        for i in range(base + place.start, base + place.width):
            lower = t.Place(below, i, 0, t.WIDTH)
            block = self._tiles.get(lower.key()) or self._load(lower, None) or self._rebuild(lower, size)
            out.append(merkle.root(block))
        return out

    def perfect(self, size: int, lo: int, width: int, strict: bool = False) -> bytes:
        """The hash of the perfect subtree of `width` (a power of two) leaves at `lo`."""
        k = width.bit_length() - 1
        level = min(k // t.HEIGHT, t.MAX_LEVEL)
        shift = t.HEIGHT * level
        return merkle.root(self.hashes(level, size, lo >> shift, (lo + width) >> shift, strict))

    def mth(self, size: int, strict: bool = False) -> Callable[[int, int], bytes]:
        """`mth(lo, hi)`: the RFC 6962 hash of leaves [lo, hi) of a tree of `size`, from tiles."""

        def mth(lo: int, hi: int) -> bytes:
            return t.frontier_root([self.perfect(size, a, w, strict) for a, w in t.perfect_ranges(lo, hi)])

        return mth

    def consistency(self, m: int, n: int) -> list[bytes]:
        return merkle.consistency_path(self.mth(n), n, m)

    def inclusion(self, index: int, n: int) -> list[bytes]:
        return merkle.inclusion_path(self.mth(n), n, index)

    # -- writing ----------------------------------------------------------------------------

    def claim(self, head: Head, raw: bytes, retention: Retention | None) -> Head | None:
        """Put the bundle block that appends `raw` after `head`; the new head, or None when
        another writer's block holds that place (read the head again and retry)."""
        size = head.size + 1
        place = t.bundle_of(size)
        base = place.index * t.WIDTH
        older = self.entries(base + place.start, head.size, head.size) if place.start + base < head.size else []
        frontier = t.extend(head.frontier, head.size, merkle.leaf_hash(raw))
        plain = t.encode_bundle(place, frontier, [*older, raw])
        for alt in range(t.ALTERNATES):
            p = t.Place(None, place.index, place.start, place.width, alt)
            try:
                self.storage.put(p.key(), self.sealer.seal(KIND_LOG_BUNDLE, plain), retention=retention)
            except AlreadyExists:
                data = self._get(p.key())
                try:
                    if data is not None:
                        self.open_bundle(p, data)
                        return None  # another writer's: the log is longer than `head`
                except IntegrityError as e:
                    self.problems.foreign[p.key()] = _problem(e, p.key())
                continue  # junk holds this name: the next one
            self._blocks[place.key()] = (frontier, [*older, raw])
            self.frontiers[size] = frontier
            return Head(size, frontier, p.key())
        raise IntegrityError(
            f"{place.key()}: junk holds this name and all {t.ALTERNATES - 1} alternates; nothing "
            "can be appended until an administrator removes it (`amber audit verify --full` lists it)"
        )

    def write_tiles(self, size: int, leaves: list[bytes], retention: Retention | None) -> None:
        """The tile blocks the append that made the tree `size` long writes: level 0's, and each
        level above that a full tile below it completes. `leaves` are the leaf hashes of the
        new bundle block. A name already taken is left alone (another writer's, or junk that
        readers pass over)."""
        place = t.tile_block(0, size)
        block = leaves
        level = 0
        while True:
            self._put_tile(place, block, retention)
            if not place.full or level + 1 > t.MAX_LEVEL:
                return
            level += 1
            count = t.level_count(size, level)
            place = t.tile_block(level, count)
            base = place.index * t.WIDTH
            prev = self.hashes(level, size - 1, base + place.start, count - 1) if count - 1 > base + place.start else []
            block = [*prev, merkle.root(block)]  # the full tile just written, one level down

    def _put_tile(self, place: t.Place, block: list[bytes], retention: Retention | None) -> None:
        """Put a tile block under its name, or, when another block holds it, check that one:
        the same hashes (another writer's) are as good; anything else is passed over for the
        next alternate name, which readers reach because they verify before trusting."""
        self._tiles[place.key()] = block
        sealed = self.sealer.seal(KIND_LOG_TILE, t.encode_tile(place, block))
        for alt in range(t.ALTERNATES):
            p = t.Place(place.level, place.index, place.start, place.width, alt)
            try:
                self.storage.put(p.key(), sealed, retention=retention)
                return
            except AlreadyExists:
                data = self._get(p.key())
                try:
                    if data is None or self.open_tile(p, data) == block:
                        return
                except IntegrityError:
                    pass

    def append(self, head: Head, raw: bytes, retention: Retention | None) -> Head | None:
        """Claim the next place, then write its tiles; None if another writer was first."""
        new = self.claim(head, raw, retention)
        if new is None:
            return None
        place = t.bundle_of(new.size)
        entries = self._blocks[place.key()][1]
        self.write_tiles(new.size, [merkle.leaf_hash(e) for e in entries], retention)
        return new

    def write_all(self, raws: list[bytes]) -> Head:
        """Store a whole log of `raws` as bundles and tiles (the upgrade from `log/entries/`):
        the full bundles and tiles, and the blocks of the decomposition of each partial one."""
        leaves = [merkle.leaf_hash(r) for r in raws]
        frontier: list[bytes] = []
        ends = {}
        for i, leaf in enumerate(leaves):
            frontier = t.extend(frontier, i, leaf)
            ends[i + 1] = list(frontier)
        n = len(raws)
        full = n // t.WIDTH
        wanted = [(k * t.WIDTH, t.Place(None, k, 0, t.WIDTH)) for k in range(full)]
        wanted += [(full * t.WIDTH, t.Place(None, full, s, e)) for s, e in t.blocks(n % t.WIDTH)]
        for base, place in wanted:
            size = base + place.width
            plain = t.encode_bundle(place, ends[size], raws[base + place.start : size])
            self._put_claim(place, plain)
        level, hashes = 0, leaves
        while hashes:
            count = len(hashes)
            for k in range(count // t.WIDTH):
                self._put_tile(t.Place(level, k, 0, t.WIDTH), hashes[k * t.WIDTH : (k + 1) * t.WIDTH], None)
            base = count // t.WIDTH * t.WIDTH
            for s, e in t.blocks(count % t.WIDTH):
                self._put_tile(t.Place(level, count // t.WIDTH, s, e), hashes[base + s : base + e], None)
            hashes = [merkle.root(hashes[k * t.WIDTH : (k + 1) * t.WIDTH]) for k in range(count // t.WIDTH)]
            level += 1
        return Head(n, frontier, t.bundle_of(n).key() if n else None)

    def _put_claim(self, place: t.Place, plain: bytes) -> None:
        for alt in range(t.ALTERNATES):
            p = t.Place(None, place.index, place.start, place.width, alt)
            try:
                self.storage.put(p.key(), self.sealer.seal(KIND_LOG_BUNDLE, plain))
                return
            except AlreadyExists:
                data = self._get(p.key())
                try:
                    if data is not None and self.open_bundle(p, data) == t.decode_bundle(plain, place, p.key()):
                        return  # another upgrader's
                except IntegrityError:
                    pass
        raise AmberError(f"{place.key()}: could not store the upgraded log (every name is taken)")


def _problem(e: IntegrityError, key: str) -> str:
    return str(e).removeprefix(key + ": ").removeprefix(key + " ")
