"""The tiled audit log's names and encodings (docs/AUDIT-LOG.md §2.2): pure functions, no I/O.

Names follow C2SP tlog-tiles: level-L hash tiles at `log/tile/<L>/<N>` and entry
bundles at `log/tile/entries/<N>`, with `N` written in 3-digit groups
(`x001/x234/067`) and a partial object of width W under `<N>.p/<W>`. Storage is
write-once, so a partial object cannot grow: the one of width W holds only the
**block** `[W & (W-1), W)` of its tile — the part a Fenwick (binary indexed)
tree assigns to W — and the object of width 256 is the full tile itself. Any
width's content is the blocks of its binary decomposition (at most 8 objects),
each append writes blocks that together store each hash and entry about
4.5 times, and a block is never rewritten.

Every object is sealed (kind 11 for bundles, 12 for hash tiles) over

    header   level (1 byte, 255 for entries) || N (8) || start (2) || width (2), big-endian
    bundle   frontier count (1) || 32-byte hashes || per entry: length (4, big-endian) || bytes
    tile     32-byte hashes

so an object names its own place, and a copy under another name is detected.
The frontier in a bundle is the tree's compact range after its last entry: the
roots of the perfect subtrees of the binary decomposition of that size, oldest
first. Appending needs only it.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import IntegrityError
from ..format import layout
from . import merkle

WIDTH = 256  # hashes per tile, entries per bundle
HEIGHT = 8  # log2(WIDTH)
HASH = 32
ENTRIES_LEVEL = 255  # the header's level byte of an entry bundle
MAX_LEVEL = 7  # 256**8 leaves is beyond any tree size a checkpoint can name
MAX_FRONTIER = 64
MAX_EVENT = 64 << 20  # no event is this large
ALTERNATES = 8  # names a claim may take when junk holds the one before (§7)
TILE = layout.LOG_TILE
ENTRIES = layout.LOG_TILE + "entries/"
_HEADER = struct.Struct(">BQHH")
LENGTH = struct.Struct(">I")  # an entry's length, before its bytes in a bundle
_KEY = re.compile(
    re.escape(TILE)
    + rf"(entries|[0-{MAX_LEVEL}])/((?:x\d{{3}}/)*)(\d{{3}})(?:\.p/([1-9]\d{{0,2}}))?(?:\.([1-{ALTERNATES - 1}]))?"
)


@dataclass(frozen=True, slots=True)
class Place:
    """Where an object sits: `level` (None for an entry bundle), tile index `index`, the block
    `[start, width)` of that tile it holds, and `alt`, the alternate name (0: its own)."""

    level: int | None
    index: int
    start: int
    width: int
    alt: int = 0

    @property
    def full(self) -> bool:
        return self.width == WIDTH

    def key(self) -> str:
        return object_key(self.level, self.index, self.width, self.alt)


def block_start(width: int) -> int:
    """The first position of the block a partial object of `width` holds (Fenwick)."""
    return width & (width - 1)


def blocks(width: int) -> list[tuple[int, int]]:
    """The blocks [start, end) that together hold positions [0, width), largest first."""
    out = []
    end = width
    while end:
        start = block_start(end)
        out.append((start, end))
        end = start
    return out[::-1]


def index_path(n: int) -> str:
    """C2SP's spelling of a tile index: 3-digit groups, all but the last prefixed with x."""
    s = f"{n:03d}"
    s = "0" * (-len(s) % 3) + s
    groups = [s[i : i + 3] for i in range(0, len(s), 3)]
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def object_key(level: int | None, index: int, width: int, alt: int = 0) -> str:
    base = (ENTRIES if level is None else f"{TILE}{level}/") + index_path(index)
    name = base if width == WIDTH else f"{base}.p/{width}"
    return name if alt == 0 else f"{name}.{alt}"


def parse_key(key: str) -> Place | None:
    """The place a key names, or None if it is no tile or bundle name amber writes (one
    spelling per place: no leading zero groups, no zero-padded width or alternate)."""
    m = _KEY.fullmatch(key)
    if m is None:
        return None
    head, groups, last, width_s, alt_s = m.groups()
    if groups and groups.startswith("x000/"):
        return None
    width = int(width_s) if width_s else WIDTH
    if width >= WIDTH:
        return None if width_s else _place(head, groups, last, WIDTH, alt_s)
    return _place(head, groups, last, width, alt_s)


def _place(head: str, groups: str | None, last: str, width: int, alt_s: str | None) -> Place:
    index = int((groups or "").replace("x", "").replace("/", "") + last)
    level = None if head == "entries" else int(head)
    return Place(level, index, block_start(width) if width < WIDTH else 0, width, int(alt_s or 0))


# -- sizes and the objects a size needs --------------------------------------------------------


def bundle_of(size: int) -> Place:
    """The entry bundle block written by the append that made the tree `size` (>= 1) long."""
    index, width = divmod(size - 1, WIDTH)
    width += 1
    return Place(None, index, block_start(width) if width < WIDTH else 0, width)


def tile_block(level: int, count: int) -> Place:
    """The level-`level` block written when that level came to hold `count` (>= 1) hashes."""
    index, width = divmod(count - 1, WIDTH)
    width += 1
    return Place(level, index, block_start(width) if width < WIDTH else 0, width)


def level_count(size: int, level: int) -> int:
    """How many hashes level `level` holds in a tree of `size` leaves."""
    return size >> (HEIGHT * level)


def levels(size: int) -> int:
    """How many levels hold at least one hash."""
    n = 0
    while level_count(size, n):
        n += 1
    return n


def containing(level: int, count: int, pos: int) -> Place:
    """The stored block of level `level`, as that level stands at `count` hashes, that holds
    position `pos` (< count): the full tile, or the block of the partial tile's decomposition."""
    index, offset = divmod(pos, WIDTH)
    if (index + 1) * WIDTH <= count:
        return Place(level, index, 0, WIDTH)
    for start, end in blocks(count - index * WIDTH):
        if start <= offset < end:
            return Place(level, index, start, end)
    raise ValueError(f"position {pos} is beyond {count} hashes")


# -- encodings -----------------------------------------------------------------------------------


def header(place: Place) -> bytes:
    return _HEADER.pack(ENTRIES_LEVEL if place.level is None else place.level, place.index, place.start, place.width)


def encode_tile(place: Place, hashes: list[bytes]) -> bytes:
    if len(hashes) != place.width - place.start or any(len(h) != HASH for h in hashes):
        raise ValueError("a tile block holds one 32-byte hash per position")
    return header(place) + b"".join(hashes)


def encode_bundle(place: Place, frontier: list[bytes], entries: list[bytes]) -> bytes:
    if len(entries) != place.width - place.start or len(frontier) > MAX_FRONTIER:
        raise ValueError("a bundle block holds one entry per position")
    out = [header(place), bytes([len(frontier)]), *frontier]
    for e in entries:
        out += [LENGTH.pack(len(e)), e]
    return b"".join(out)


def _check_header(data: bytes, place: Place, key: str) -> memoryview:
    if len(data) < _HEADER.size:
        raise IntegrityError(f"{key}: truncated")
    if bytes(data[: _HEADER.size]) != header(place):
        level, index, start, width = _HEADER.unpack_from(data)
        raise IntegrityError(
            f"{key}: holds block [{start}, {width}) of {'bundle' if level == ENTRIES_LEVEL else f'level {level} tile'} "
            f"{index}, not this name's"
        )
    return memoryview(data)[_HEADER.size :]


def decode_tile(data: bytes, place: Place, key: str) -> list[bytes]:
    body = _check_header(data, place, key)
    if len(body) != HASH * (place.width - place.start):
        raise IntegrityError(f"{key}: {len(body)} bytes of hashes, not {HASH * (place.width - place.start)}")
    return [bytes(body[i : i + HASH]) for i in range(0, len(body), HASH)]


def decode_bundle(data: bytes, place: Place, key: str) -> tuple[list[bytes], list[bytes]]:
    """(frontier, entries) of a bundle block; IntegrityError naming `key` for anything malformed."""
    body = _check_header(data, place, key)
    if not body:
        raise IntegrityError(f"{key}: truncated")
    count, pos = body[0], 1
    if len(body) < pos + HASH * count:
        raise IntegrityError(f"{key}: truncated frontier")
    frontier = [bytes(body[pos + HASH * i : pos + HASH * (i + 1)]) for i in range(count)]
    pos += HASH * count
    entries = []
    for _ in range(place.width - place.start):
        if len(body) < pos + LENGTH.size:
            raise IntegrityError(f"{key}: fewer entries than its width")
        (n,) = LENGTH.unpack_from(body, pos)
        pos += LENGTH.size
        if n > MAX_EVENT or len(body) < pos + n:
            raise IntegrityError(f"{key}: an entry runs past the end")
        entries.append(bytes(body[pos : pos + n]))
        pos += n
    if pos != len(body):
        raise IntegrityError(f"{key}: bytes after its last entry")
    return frontier, entries


# -- the compact range ---------------------------------------------------------------------------


def frontier_sizes(size: int) -> list[int]:
    """The sizes of the perfect subtrees a tree of `size` leaves decomposes into, largest first."""
    return [1 << b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]


def extend(frontier: list[bytes], size: int, leaf: bytes) -> list[bytes]:
    """The compact range after appending `leaf` to a tree of `size` leaves."""
    out = list(frontier)
    node = leaf
    while size & 1:
        node = merkle.node_hash(out.pop(), node)
        size >>= 1
    out.append(node)
    return out


def frontier_root(frontier: list[bytes]) -> bytes:
    """The RFC 6962 root of a tree given its compact range."""
    if not frontier:
        return merkle.EMPTY_ROOT
    sha = hashlib.sha256
    node = frontier[-1]
    for k in range(len(frontier) - 2, -1, -1):
        node = sha(b"\x01" + frontier[k] + node).digest()
    return node


def perfect_ranges(lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """[lo, hi) cut into aligned power-of-two ranges, left to right (RFC 6962's split order
    when lo is a multiple of the first one's size)."""
    while lo < hi:
        size = lo & -lo if lo else 1 << (hi.bit_length() - 1)
        while lo + size > hi:
            size >>= 1
        yield lo, size
        lo += size
