"""dump: a folder of a snapshot written to a stream as a tar or zip archive (restic's `dump`).

The archive is written as it is read, to a stream that need not seek (a pipe): tar in
streaming mode, zip with data descriptors. File content is read blob by blob, so memory
stays bounded by one blob whatever the file's size, and each file's SHA-256 is checked
as its last blob is written — a mismatch stops the archive with an IntegrityError (the
archive is then incomplete, never silently wrong).

Names in the archive are the snapshot paths without their leading `/` (as restic writes
them); the folder dumped is the archive's first entry. Tar entries carry mode, mtime (to
the nanosecond in PAX headers), uid/gid and user/group names, symlink targets, device
numbers, hard links (a second path to an inode the tree records as linked is a link to the
first), and extended attributes and ACLs as SCHILY.xattr headers. Zip entries carry Unix
mode and file type in their external attributes, the mtime (local time, two-second steps,
and to the second in an extended-timestamp field), and symlinks as entries whose content is
the target (Info-ZIP's convention); zip has no owners, devices or hard links, so devices and
FIFOs are left out and hard links are stored as copies.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import os
import stat as st_
import struct
import tarfile
import zipfile
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from ..errors import IntegrityError, NotFound, UsageError
from ..repo.snapshots import Snapshot

ARCHIVES = ("tar", "zip")
_TAR_TYPE = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "fifo": tarfile.FIFOTYPE}
_TAR_TYPE.update({"chardev": tarfile.CHRTYPE, "blockdev": tarfile.BLKTYPE, "file": tarfile.REGTYPE})
_S_IF = {"file": st_.S_IFREG, "dir": st_.S_IFDIR, "symlink": st_.S_IFLNK}
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class Dumped(Protocol):
    """What dumping reads: a snapshot's nodes and the blobs of its files."""

    def node_at(self, snap: Snapshot, path: str) -> dict | None: ...

    def walk(self, tree_id: str, prefix: str = "", errors: list[str] | None = None) -> Iterator[tuple[str, dict]]: ...

    def read_blob(self, blob_id: bytes) -> bytes: ...


class FileReader:
    """A file node's content as a readable stream, one blob in memory at a time, its SHA-256
    checked when the last byte has been read. `read(n)` returns n bytes unless the content
    ends first (tarfile needs whole reads)."""

    def __init__(self, repo: Dumped, node: dict, what: str) -> None:
        self.repo = repo
        self.node = node
        self.what = what
        self.blobs = iter(node.get("content") or [])
        self.buf = memoryview(b"")
        self.sha = hashlib.sha256()
        self.done = False

    def read(self, n: int) -> bytes:
        parts = []
        while n > 0:
            if not self.buf:
                hid = next(self.blobs, None)
                if hid is None:
                    self._finish()
                    break
                data = self.repo.read_blob(bytes.fromhex(hid))
                self.sha.update(data)
                self.buf = memoryview(data)
                continue
            part = self.buf[:n]
            parts.append(bytes(part))
            self.buf = self.buf[len(part) :]
            n -= len(part)
        return b"".join(parts)

    def _finish(self) -> None:
        if not self.done and self.sha.hexdigest() != self.node.get("sha256"):
            raise IntegrityError(f"{self.what}: content does not match its SHA-256 in the snapshot")
        self.done = True

    def finish(self) -> None:
        """After the node's size was copied: no content may be left, and the whole must check."""
        if self.read(1):
            raise IntegrityError(f"{self.what}: content is longer than its size in the snapshot")


def nodes(repo: Dumped, snap: Snapshot, path: str) -> Iterator[tuple[str, dict]]:
    """(path, node) of the folder at `path` (unless it is `/`) and everything below it."""
    path = "/" + path.strip("/") if path.strip("/") else "/"
    node = repo.node_at(snap, path)
    if node is None:
        raise NotFound(f"{path}: not in snapshot {snap.short_id}")
    if node["type"] != "dir":
        raise UsageError(f"{path}: is a {node['type']}: only files and folders can be dumped")
    if path != "/":
        yield path, node
    if node.get("subtree"):
        yield from repo.walk(node["subtree"], "" if path == "/" else path)


def write_tar(repo: Dumped, entries: Iterator[tuple[str, dict]], out: BinaryIO) -> int:
    """Stream the entries as a PAX tar to `out`; returns the number of entries."""
    n = 0
    first: dict[tuple, str] = {}  # (device, inode) -> archive name of a hard-linked file's first path
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path, node in entries:
            info = _tar_info(path, node)
            key = _inode(node)
            if key is not None and key in first:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first[key], 0
            elif key is not None:
                first[key] = info.name
            reader = FileReader(repo, node, path) if info.type == tarfile.REGTYPE else None
            tar.addfile(info, reader)
            if reader is not None:
                reader.finish()
            n += 1
    return n


def _inode(node: dict) -> tuple | None:
    if node["type"] == "file" and node.get("links", 1) > 1 and node.get("inode"):
        return node.get("device"), node["inode"]
    return None


def _tar_info(path: str, node: dict) -> tarfile.TarInfo:
    kind = node["type"]
    info = tarfile.TarInfo(path.lstrip("/") + ("/" if kind == "dir" else ""))
    info.type = _TAR_TYPE.get(kind, tarfile.REGTYPE)
    info.mode = node.get("mode", 0) & 0o7777
    info.uid, info.gid = node.get("uid") or 0, node.get("gid") or 0
    info.uname, info.gname = node.get("user") or "", node.get("group") or ""
    mt = node.get("mtime_ns")
    info.mtime = mt // 10**9 if type(mt) is int else 0
    if type(mt) is int and mt % 10**9:  # to the nanosecond (tarfile would round a float)
        info.pax_headers["mtime"] = f"{mt // 10**9}.{mt % 10**9:09d}"
    info.size = node.get("size", 0) if kind == "file" else 0
    if kind == "symlink":
        info.linkname = node.get("target") or ""
    if kind in ("chardev", "blockdev"):
        rdev = node.get("rdev") or 0
        info.devmajor, info.devminor = os.major(rdev), os.minor(rdev)
    info.pax_headers.update(_xattr_headers(node))
    return info


def _xattr_headers(node: dict) -> dict[str, str]:
    """A node's extended attributes ({name: base64 value}, POSIX ACLs among them) as the PAX
    headers GNU tar and bsdtar read with --xattrs: SCHILY.xattr.<name>, the raw value (tarfile
    writes bytes that are not UTF-8 as they are, under hdrcharset=BINARY)."""
    attrs = node.get("xattrs")
    if not isinstance(attrs, dict):
        return {}
    out = {}
    for name, value in attrs.items():
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            continue  # the tree decoder refuses such a node; never more than what it accepts
        out[f"SCHILY.xattr.{name}"] = raw.decode("utf-8", "surrogateescape")
    return out


def write_zip(repo: Dumped, entries: Iterator[tuple[str, dict]], out: BinaryIO) -> int:
    """Stream the entries as a zip to `out` (seekable or not); returns the number of entries."""
    n = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for path, node in entries:
            kind = node["type"]
            if kind not in _S_IF:
                continue  # devices and FIFOs have no place in a zip
            info = _zip_info(path, node)
            if kind == "dir":
                zf.writestr(info, b"")
            elif kind == "symlink":
                zf.writestr(info, (node.get("target") or "").encode("utf-8", "surrogateescape"))
            else:
                _zip_file(zf, info, FileReader(repo, node, path), node.get("size", 0))
            n += 1
    return n


def _zip_file(zf: zipfile.ZipFile, info: zipfile.ZipInfo, reader: FileReader, size: int) -> None:
    with zf.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as dest:
        while chunk := reader.read(1 << 20):
            dest.write(chunk)
    reader.finish()


def _zip_info(path: str, node: dict) -> zipfile.ZipInfo:
    kind = node["type"]
    mt = node.get("mtime_ns")
    seconds = mt // 10**9 if type(mt) is int else 0
    # zip names are UTF-8: bytes that are not (a name kept with surrogateescape) become U+FFFD
    name = path.lstrip("/").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    info = zipfile.ZipInfo(name + ("/" if kind == "dir" else ""), _zip_time(seconds))
    info.create_system = 3  # Unix: the external attributes' high 16 bits are st_mode
    info.external_attr = (_S_IF[kind] | (node.get("mode", 0) & 0o7777)) << 16
    if kind == "dir":
        info.external_attr |= 0x10  # MS-DOS directory bit
    info.compress_type = zipfile.ZIP_DEFLATED if kind == "file" else zipfile.ZIP_STORED
    if 0 <= seconds < 1 << 32:  # Info-ZIP extended timestamp (UT): the mtime in UTC seconds
        info.extra = struct.pack("<HHBI", 0x5455, 5, 1, seconds)
    return info


def _zip_time(seconds: int) -> tuple:
    """A zip's local date and time of an mtime, within what the format can hold (1980-2107)."""
    try:
        t = _dt.datetime.fromtimestamp(seconds)
    except (OverflowError, OSError, ValueError):
        return _ZIP_EPOCH
    if t.year < 1980:
        return _ZIP_EPOCH
    if t.year > 2107:
        return (2107, 12, 31, 23, 59, 58)
    return (t.year, t.month, t.day, t.hour, t.minute, t.second)


def dump(repo: Dumped, snap: Snapshot, path: str, out: BinaryIO, archive: str = "tar") -> int:
    """The folder at `path` (`/` for everything) streamed to `out` as a tar or zip; returns
    the number of entries written. A file is the caller's to copy (it needs no archive)."""
    if archive not in ARCHIVES:
        raise UsageError(f"--archive must be one of {', '.join(ARCHIVES)}")
    entries = nodes(repo, snap, path)
    return write_tar(repo, entries, out) if archive == "tar" else write_zip(repo, entries, out)
