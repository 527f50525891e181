"""Which entries a backup takes, with restic's flags: source lists and exclusion rules.

Source lists (`--files-from`, `--files-from-verbatim`, `--files-from-raw`) name the
paths to back up; listed paths that do not exist are returned apart, for a warning
each, and the backup goes on. Exclusion rules (`Selection`) are checked per folder
while the walk reads it: globs (`--exclude`, `--iexclude` and their files), tag files
(`--exclude-if-present`, `--exclude-caches`), a size limit and `--one-file-system`.
Names are `str` decoded with surrogateescape, as everywhere in the walk, so names that
are not UTF-8 are selected and excluded like any other.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import stat as st_
import sys
from dataclasses import dataclass

from ..errors import AmberError, UsageError

CACHEDIR_TAG = "CACHEDIR.TAG"
CACHEDIR_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"  # bford.info/cachedir
MAX_LIST_BYTES = 1 << 30  # a source or pattern list larger than this is refused

_SIZE = re.compile(r"(\d+)([bBkKmMgGtT]?)")
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True, slots=True)
class TagRule:
    """`--exclude-if-present NAME[:HEADER]`: a folder holding NAME (starting with HEADER,
    if given) keeps only that file."""

    name: str
    header: bytes = b""

    @classmethod
    def parse(cls, spec: str) -> TagRule:
        name, _, header = spec.partition(":")
        if not name or "/" in name:
            raise UsageError(f"--exclude-if-present {spec!r}: give a file name, optionally :HEADER")
        return cls(name, os.fsencode(header))

    def marks(self, folder: str) -> bool:
        """Whether `folder`'s file of this name starts with the header (a tag that cannot be
        read marks nothing, as in restic)."""
        if not self.header:
            return True
        try:
            with open(os.path.join(folder, self.name), "rb") as f:
                return f.read(len(self.header)) == self.header
        except OSError:
            return False


@dataclass(frozen=True, slots=True)
class Selection:
    """The exclusion rules of one backup (all empty: everything is taken)."""

    excludes: tuple[str, ...] = ()
    iexcludes: tuple[str, ...] = ()  # lower case: matched against lower-cased paths
    tags: tuple[TagRule, ...] = ()
    larger_than: int | None = None
    one_file_system: bool = False

    def __bool__(self) -> bool:
        limits = self.larger_than is not None or self.one_file_system
        return bool(self.excludes or self.iexcludes or self.tags or limits)

    def excluded(self, path: str, name: str) -> bool:
        """Whether a glob excludes the entry at `path` (base name `name`)."""
        if any(_matches(pat, path, name) for pat in self.excludes):
            return True
        return bool(self.iexcludes) and any(_matches(pat, path.lower(), name.lower()) for pat in self.iexcludes)

    def folder(self, path: str, names, st) -> FolderRule:
        """The rule for the entries of the folder at `path` (stat `st`) holding `names`."""
        marked = {t.name for t in self.tags if t.name in names and t.marks(path)}
        return FolderRule(self, marked, st.st_dev)


class FolderRule:
    """What a folder's entries are checked against: its tag files found, its device."""

    __slots__ = ("selection", "marked", "device")

    def __init__(self, selection: Selection, marked: set[str], device: int) -> None:
        self.selection, self.marked, self.device = selection, marked, device

    def drops(self, path: str, name: str) -> bool:
        """Excluded by name alone: a glob, or a tag file of this folder (each tag rule keeps
        its own tag file only, so two different tags keep nothing)."""
        if self.marked and (len(self.marked) > 1 or name not in self.marked):
            return True
        return self.selection.excluded(path, name)

    def verdict(self, st) -> str:
        """ "keep", "drop" (a file over the size limit; on another filesystem) or "empty" (a
        mount point: the folder is kept, not what is mounted on it, as in restic)."""
        sel = self.selection
        if sel.larger_than is not None and st_.S_ISREG(st.st_mode) and st.st_size > sel.larger_than:
            return "drop"
        if sel.one_file_system and st.st_dev != self.device:
            return "empty" if st_.S_ISDIR(st.st_mode) else "drop"
        return "keep"


def _matches(pat: str, path: str, name: str) -> bool:
    """A glob against the base name or the full path (`*` crossing `/`, as amber always
    matched), or restic's way: component by component (`*` within one, `**` any number),
    anywhere in the path, or from its start for a pattern starting with `/`."""
    if fnmatch.fnmatchcase(name, pat) or fnmatch.fnmatchcase(path, pat):
        return True
    return "/" in pat and _window(_parts(pat), _parts(path), pat.startswith("/"))


def _parts(text: str) -> list[str]:
    return [p for p in text.split("/") if p]


def _window(pat: list[str], parts: list[str], anchored: bool) -> bool:
    """Whether the pattern's components match consecutive components of the path (restic's
    filter.Match): at its start when `anchored`, else at any place; `**` stands for any
    number of components, none included."""
    if "**" in pat:
        i = pat.index("**")
        return any(
            _window(pat[:i] + ["*"] * k + pat[i + 1 :], parts, anchored) for k in range(len(parts) - len(pat) + 2)
        )
    n = len(pat)
    last = 0 if anchored else len(parts) - n
    for offset in range(last + 1):
        if n and n <= len(parts) and all(fnmatch.fnmatchcase(parts[offset + i], pat[i]) for i in range(n)):
            return True
    return False


def selection(
    *,
    excludes=(),
    exclude_files=(),
    iexcludes=(),
    iexclude_files=(),
    exclude_caches: bool = False,
    if_present=(),
    larger_than: str | None = None,
    one_file_system: bool = False,
) -> Selection:
    """The rules from the command line: a bad size or tag spec is UsageError (exit 2), a list
    that cannot be read AmberError (exit 1)."""
    pats = [e.rstrip("/") or "/" for e in excludes] + [p for f in exclude_files for p in read_patterns(f)]
    ipats = [e.rstrip("/") or "/" for e in iexcludes] + [p for f in iexclude_files for p in read_patterns(f)]
    tags = [TagRule.parse(spec) for spec in if_present]
    if exclude_caches:
        tags.append(TagRule(CACHEDIR_TAG, CACHEDIR_SIGNATURE))
    return Selection(
        excludes=tuple(pats),
        iexcludes=tuple(p.lower() for p in ipats),
        tags=tuple(dict.fromkeys(tags)),
        larger_than=parse_size(larger_than) if larger_than is not None else None,
        one_file_system=one_file_system,
    )


def parse_size(text: str) -> int:
    """restic's SIZE: a whole number of bytes, or with a suffix k, m, g or t (powers of 1024)."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise UsageError(f"{text!r} is not a size (give bytes, or a number with k, m, g or t: 500k, 2M, 1G)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


# -- lists ---------------------------------------------------------------------------------------


def read_list(path: str) -> bytes:
    """A list file's bytes (`-`: standard input); AmberError naming it if it cannot be read."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_LIST_BYTES + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_LIST_BYTES + 1)
    except OSError as e:
        raise AmberError(f"cannot read the list {path}: {e.strerror or e}") from None
    if len(data) > MAX_LIST_BYTES:
        raise AmberError(f"the list {path} is larger than {MAX_LIST_BYTES >> 20} MiB")
    return data


def _lines(data: bytes) -> list[str]:
    """Lines decoded as file names are (surrogateescape), without their line ends."""
    return [os.fsdecode(line.removesuffix(b"\r")) for line in data.split(b"\n")]


def read_patterns(path: str) -> list[str]:
    """An exclude file: one pattern a line, surrounding blanks dropped, `#` comments and
    empty lines ignored, $VAR and ${VAR} expanded (restic's --exclude-file)."""
    out = []
    for line in _lines(read_list(path)):
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(os.path.expandvars(line).rstrip("/") or "/")
    return out


@dataclass(frozen=True, slots=True)
class Listed:
    """The sources the lists name: paths that exist, and what names nothing (for warnings)."""

    paths: list[str]
    missing: list[str]


def listed_sources(files_from=(), verbatim=(), raw=()) -> Listed:
    """The sources of restic's three list flags. `--files-from`: a pattern a line, blanks
    trimmed, `#` comments and empty lines ignored, globs expanded (a pattern matching
    nothing is missing); `--files-from-verbatim`: exact paths a line (only empty lines
    ignored); `--files-from-raw`: exact paths ended by NUL bytes."""
    paths: list[str] = []
    missing: list[str] = []
    for f in files_from:
        for line in _lines(read_list(f)):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            found = sorted(glob.glob(line, include_hidden=True)) if glob.has_magic(line) else [line]
            _take(found or [line], paths, missing)
    for f in verbatim:
        _take([line for line in _lines(read_list(f)) if line], paths, missing)
    for f in raw:
        _take([os.fsdecode(p) for p in read_list(f).split(b"\0") if p], paths, missing)
    return Listed(paths, missing)


def _take(names: list[str], paths: list[str], missing: list[str]) -> None:
    for name in names:
        (paths if os.path.lexists(name) else missing).append(name)
