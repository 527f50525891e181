"""Reading a bundle's zip safely: member names, sizes, methods and overlaps are judged
from the central directory before a byte of any member is read."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator

from ..errors import IntegrityError
from .limits import (
    COPY_MEMBER,
    FILE_MEMBER,
    FIXED_MEMBERS,
    MAX_MEMBERS,
    MAX_RATIO,
    METHODS,
    SMALL,
    TIMESTAMP_MEMBER,
    TREE_MEMBER,
    ZIP_ERRORS,
)


class Unreadable(Exception):
    """A member that is missing, too large, a bomb or damaged; the message says which."""


class Bad(Exception):
    """A manifest field that is not what the format allows; the message names it."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


class Bundle:
    """A zip opened for verification: every member's name, and its place in the archive,
    checked before any is read; then members read only within their limits."""

    def __init__(self, z: zipfile.ZipFile, path: str) -> None:
        self.z = z
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            raise IntegrityError(f"{path}: more than {MAX_MEMBERS} members")
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            problem = _member_name_problem(info)
            if problem is not None:
                raise IntegrityError(f"{path}: member {info.orig_filename!r} {problem}")
            if name in self.infos:
                raise IntegrityError(f"{path}: member {name!r} appears more than once (a duplicate entry)")
            self.infos[name] = info
        _check_no_overlap(path, z, infos)

    def problem(self, name: str, limit: int) -> str | None:
        """Why the member cannot be read within `limit`, judged from its headers alone."""
        info = self.infos.get(name)
        if info is None:
            return "missing"
        if info.flag_bits & 0x1:
            return "encrypted"
        if info.compress_type not in METHODS:
            return f"compression method {info.compress_type} (only stored and deflate are allowed)"
        if info.file_size > limit:
            return f"declares {info.file_size} bytes, over the limit of {limit}"
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            return "stored, but its compressed and uncompressed sizes differ"
        if info.file_size > SMALL + info.compress_size * MAX_RATIO:
            return f"declares {info.file_size} bytes from {info.compress_size} compressed (a zip bomb)"
        return None

    def chunks(self, name: str, limit: int) -> Iterator[bytes]:
        """The member's bytes in pieces, never more than it declares; Unreadable otherwise."""
        why = self.problem(name, limit)
        if why is not None:
            raise Unreadable(why)
        info = self.infos[name]
        n = 0
        try:
            with self.z.open(info) as f:
                while chunk := f.read(min(1 << 20, info.file_size - n + 1)):
                    n += len(chunk)
                    if n > info.file_size:
                        raise Unreadable(f"holds more than the {info.file_size} bytes it declares")
                    yield chunk
        except ZIP_ERRORS as e:
            raise Unreadable(f"damaged ({brief(e)})") from None
        if n != info.file_size:
            raise Unreadable(f"holds {n} bytes, not the {info.file_size} it declares")

    def read(self, name: str, limit: int) -> bytes:
        return b"".join(self.chunks(name, limit))


def _member_name_problem(info: zipfile.ZipInfo) -> str | None:
    raw = info.orig_filename
    if "\x00" in raw:
        return "has a NUL byte in its name"
    if not raw:
        return "has an empty name"
    if raw.endswith(("/", "\\")):
        return "is a directory"
    if raw.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", raw):
        return "has an absolute name"
    if "\\" in raw:
        return "has a backslash in its name"
    if any(part in ("", ".", "..") for part in raw.split("/")):
        return "has an empty, '.' or '..' component"
    if (
        raw in FIXED_MEMBERS
        or raw == COPY_MEMBER
        or any(m.fullmatch(raw) for m in (FILE_MEMBER, TREE_MEMBER, TIMESTAMP_MEMBER))
    ):
        return None
    return "is not a member an evidence bundle has"


def _check_no_overlap(path: str, z: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse members whose data overlap each other or the central directory (the overlapping
    zip bomb, and two names for the same bytes)."""
    end_of_data = getattr(z, "start_dir", None)
    spans = sorted(infos, key=lambda i: i.header_offset)
    for i, info in enumerate(spans):
        if info.header_offset < 0:
            raise IntegrityError(f"{path}: member {info.filename!r} starts before the archive")
        try:
            name_len = len(info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437"))
        except UnicodeError:
            raise IntegrityError(f"{path}: member {info.filename!r} has a name that cannot be stored") from None
        end = info.header_offset + 30 + name_len + info.compress_size  # local header without extra
        limit = spans[i + 1].header_offset if i + 1 < len(spans) else end_of_data
        if limit is not None and end > limit:
            other = f"member {spans[i + 1].filename!r}" if i + 1 < len(spans) else "the central directory"
            raise IntegrityError(f"{path}: member {info.filename!r} overlaps {other}")


def brief(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 200 else text[:200] + "…"
