"""The files cache: what each file looked like when its content was last stored.

A file whose size, mtime, ctime and inode match its entry, and whose blobs
are all still indexed, is not read again: an unchanged backup costs one
`lstat` per file. The entry also keeps the file's extended attributes and
flags as read with that ctime (any change to them changes the ctime), so an
unchanged file costs no `listxattr` and no `open` for its flags either.
The cache is local state, never part of the repository; losing it only
costs time.

It is read one folder at a time, when the walk reaches that folder, and the
new cache is written one folder at a time, when that folder's tree is
stored: memory holds a small table of where each folder's entries lie and
the entries of the folders being walked, never the whole tree. One file per
set of backed-up paths (`files-<digest of the paths>.v3`), since a backup
only ever looks up entries below the paths it walks. Layout (little-endian):

    per folder: u32 body length | body
        body: u16 path length | folder path | u32 entry count | entries
        entry: u16 name length | name | u64 size | i64 mtime_ns | i64 ctime_ns |
               u64 inode | 32-byte SHA-256 | u32 blob count | u8 metadata known |
               u32 flags | u32 length of the xattrs | 32-byte blob ids |
               JSON of the `xattrs` field
    table: per folder, sorted: 8-byte BLAKE2b of the folder path | u64 offset
    trailer: u64 table offset | u32 folder count | b"AFC3"

Metadata is "known" unless the file's ctime was too recent when it was read
(a change in the same clock tick would not move it); then the next backup
reads it again. A cache of version 2 (`.v2`, b"AFC2", entries without the
metadata fields) is read where no version 3 cache exists, its metadata
unknown: after an upgrade, unchanged files are not read again.

The folder path inside the body is compared on reading, so two folders whose
digests collide never share entries; anything unreadable counts as no entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from types import MappingProxyType

from ..format import nodemeta

# size, mtime_ns, ctime_ns, inode, content (hex ids), sha256 (hex), and the node's
# {"flags": ..., "xattrs": ...} fields (empty when it has none), or None when not known
Entry = tuple

_TRAILER = struct.Struct("<QI4s")
_MAGIC = b"AFC3"
_SLOT = struct.Struct("<8sQ")
_HEAD = struct.Struct("<QqqQ32sIBII")
_HEAD_V2 = struct.Struct("<QqqQ32sI")  # version 2, without metadata: still read once, after an upgrade
_VERSIONS = ((".v3", _MAGIC, 3), (".v2", b"AFC2", 2))  # name suffix, trailer magic, version
_NO_META = MappingProxyType({})  # known to be none: shared, so it must never change
_LEN16 = struct.Struct("<H")
_LEN32 = struct.Struct("<I")
OLD_NAME = "files.json.zst"  # the cache of earlier versions, one JSON document: removed on save


def cache_name(roots: list[str]) -> str:
    """The file name of the cache for one set of backed-up paths."""
    digest = hashlib.blake2b("\0".join(sorted(roots)).encode("utf-8", "surrogateescape"), digest_size=8)
    return f"files-{digest.hexdigest()}.v3"


def _key(folder: bytes) -> bytes:
    return hashlib.blake2b(folder, digest_size=8).digest()


class FilesCache:
    """The previous run's entries, read per folder, and this run's, written per folder.

    `folder` is None for a backup without a cache (standard input, --no-cache)."""

    def __init__(self, folder: str | None, roots: list[str] | None = None) -> None:
        self.path = os.path.join(folder, cache_name(roots or [])) if folder else None
        self._old: dict[bytes, int] = {}  # folder digest -> offset of its block
        self._old_file = None
        self._old_version = 3
        self._out = None
        self._out_path = ""
        self._table: list[tuple[bytes, int]] = []
        if self.path:
            self._open_old()

    # -- reading the previous run's cache --------------------------------------

    @property
    def present(self) -> bool:
        """Whether a previous run's cache was found (and not yet closed)."""
        return self._old_file is not None

    def _open_old(self) -> None:
        """Open the previous run's cache: this version's, else the one of version 2 (whose
        entries know no metadata, so the first backup after an upgrade reads only that)."""
        assert self.path is not None
        for suffix, magic, version in _VERSIONS:
            if self._open_version(self.path[: -len(".v3")] + suffix, magic):
                self._old_version = version
                return

    def _open_version(self, path: str, want: bytes) -> bool:
        try:
            f = open(path, "rb")  # noqa: SIM115 - read folder by folder until close()
        except OSError:
            return False
        try:
            size = f.seek(0, os.SEEK_END)
            if size < _TRAILER.size:
                raise ValueError("short")
            f.seek(size - _TRAILER.size)
            at, count, magic = _TRAILER.unpack(f.read(_TRAILER.size))
            if magic != want or at + count * _SLOT.size + _TRAILER.size != size:
                raise ValueError("not a files cache")
            f.seek(at)
            table = f.read(count * _SLOT.size)
            self._old = {key: off for key, off in _SLOT.iter_unpack(table) if off < at}
            self._old_file = f
            return True
        except (OSError, ValueError, struct.error):
            f.close()
            return False

    def folder(self, path: str) -> dict[str, Entry]:
        """The previous run's entries of the files directly in one folder, by name."""
        if self._old_file is None:
            return {}
        raw_path = os.fsencode(path)
        off = self._old.get(_key(raw_path))
        if off is None:
            return {}
        try:
            return _decode_block(self._read_block(off), raw_path, self._old_version)
        except (OSError, ValueError, struct.error, UnicodeError):
            return {}

    def _read_block(self, off: int) -> bytes:
        f = self._old_file
        f.seek(off)
        (n,) = _LEN32.unpack(f.read(4))
        body = f.read(n)
        if len(body) != n:
            raise ValueError("truncated")
        return body

    # -- writing this run's cache ----------------------------------------------

    def write_folder(self, path: str, entries: list[tuple[str, Entry]]) -> None:
        """Record the entries of one folder's files (as this backup found and stored them)."""
        if not self.path or not entries:
            return
        try:
            if self._out is None:
                folder = os.path.dirname(self.path)
                os.makedirs(folder, exist_ok=True)
                fd, self._out_path = tempfile.mkstemp(dir=folder, prefix=".files-")
                self._out = os.fdopen(fd, "wb")
            raw_path = os.fsencode(path)
            body = _encode_block(raw_path, entries)
            self._table.append((_key(raw_path), self._out.tell()))
            self._out.write(_LEN32.pack(len(body)))
            self._out.write(body)
        except (OSError, ValueError):
            self._drop_output()  # a cache we cannot write only costs time next run

    def save(self) -> None:
        """Finish this run's cache and put it in place of the previous one."""
        self.close_old()
        if self._out is None:
            return
        try:
            at = self._out.tell()
            self._table.sort()
            self._out.write(b"".join(_SLOT.pack(k, off) for k, off in self._table))
            self._out.write(_TRAILER.pack(at, len(self._table), _MAGIC))
            self._out.close()
            self._out = None
            os.replace(self._out_path, self.path)
            folder = os.path.dirname(self.path)
            for old in (OLD_NAME, os.path.basename(self.path)[:-3] + ".v2"):  # earlier versions' caches
                _remove(os.path.join(folder, old))
        except OSError:
            self._drop_output()

    def discard(self) -> None:
        """Forget this run's cache (the backup failed): the previous one stays."""
        self.close_old()
        self._drop_output()

    def close_old(self) -> None:
        if self._old_file is not None:
            self._old_file.close()
            self._old_file = None
        self._old = {}

    def _drop_output(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
            _remove(self._out_path)
        self._table = []


def _encode_block(raw_path: bytes, entries: list[tuple[str, Entry]]) -> bytes:
    parts = [_LEN16.pack(len(raw_path)), raw_path, _LEN32.pack(len(entries))]
    for name, (size, mtime, ctime, ino, content, sha, meta) in entries:
        raw_name = os.fsencode(name)
        parts.append(_LEN16.pack(len(raw_name)))
        parts.append(raw_name)
        xattrs = json.dumps(meta["xattrs"], sort_keys=True).encode() if meta and "xattrs" in meta else b""
        flags = meta.get("flags", 0) if meta else 0
        parts.append(
            _HEAD.pack(size, mtime, ctime, ino, bytes.fromhex(sha), len(content), meta is not None, flags, len(xattrs))
        )
        parts.append(bytes.fromhex("".join(content)))
        parts.append(xattrs)
    return b"".join(parts)


def _decode_block(body: bytes, raw_path: bytes, version: int = 3) -> dict[str, Entry]:
    (n,) = _LEN16.unpack_from(body, 0)
    if body[2 : 2 + n] != raw_path:
        return {}  # another folder whose digest collides
    pos = 2 + n
    (count,) = _LEN32.unpack_from(body, pos)
    pos += 4
    out: dict[str, Entry] = {}
    for _ in range(count):
        (n,) = _LEN16.unpack_from(body, pos)
        name = os.fsdecode(body[pos + 2 : pos + 2 + n])
        pos += 2 + n
        if version == 3:
            size, mtime, ctime, ino, sha, blobs, known, flags, n = _HEAD.unpack_from(body, pos)
            pos += _HEAD.size
        else:
            size, mtime, ctime, ino, sha, blobs = _HEAD_V2.unpack_from(body, pos)
            pos += _HEAD_V2.size
            known = flags = n = 0
        ids = body[pos : pos + 32 * blobs]
        if len(ids) != 32 * blobs:
            raise ValueError("truncated entry")
        pos += 32 * blobs
        if n or flags:
            meta = _decode_meta(known, flags, body[pos : pos + n])
            pos += n
        else:
            meta = _NO_META if known else None
        content = [ids[i : i + 32].hex() for i in range(0, len(ids), 32)]
        out[name] = (size, mtime, ctime, ino, content, sha.hex(), meta)
    return out


def _decode_meta(known: int, flags: int, xattrs: bytes) -> dict:
    """An entry's metadata, checked as a tree's would be: what goes into a node from here
    must never make the tree unreadable."""
    if not known:
        raise ValueError("metadata not known, yet recorded")
    meta: dict = {"flags": flags} if flags else {}
    if flags and nodemeta.flags_problem(flags) is not None:
        raise ValueError("not flags a node may carry")
    if xattrs:
        field = json.loads(xattrs)
        if nodemeta.xattrs_problem(field) is not None:
            raise ValueError("not an xattrs field")
        meta["xattrs"] = field
    return meta


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
