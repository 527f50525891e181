"""What changed since the parent snapshot, counted folder by folder as the walk goes.

A backup's summary counts files as new, changed or unmodified against its
parent snapshot (same path: same size, mtime and content ⇒ unmodified), not
against the files cache: the cache leaves out a file written moments before
the last backup, so it must be read again, but it was in the parent all the
same. The same pass gathers the ransomware signals (backup/anomaly.py):
files deleted, added and renamed to a new extension, and whether the new
content of a changed file still compresses, from the stored and raw sizes
the index keeps for the parent's blobs and those this backup just stored.
No extra pass over the data: one decoded parent tree per folder walked.

A full key reads the parent's trees (`TreeParent`). A write-only key cannot
(they are sealed to the content key), so it compares with the files cache
of the previous backup of the same paths on this machine (`CacheParent`):
a file written just before that backup is missing from it and counts as
new, and a folder deleted whole is not counted (docs/ANOMALIES.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Protocol

from ..errors import AmberError
from .anomaly import COMPRESSIBLE, INCOMPRESSIBLE, Measured, is_ransom_note

# (type, size, mtime_ns, content ids (hex) or None, subtree id or None) of a parent's entry
Entry = tuple


class ParentFolders(Protocol):
    """The parent snapshot's entries, one folder at a time, in the walk's order."""

    def folder(self, path: str) -> dict[str, Entry]: ...

    def files_below(self, path: str, entry: Entry) -> Iterator[str]:
        """The names of the files below a folder of the parent that is gone now."""
        ...


def _join(folder: str, name: str) -> str:
    return folder + name if folder.endswith("/") else f"{folder}/{name}"


class TreeParent:
    """The parent's trees (a full key): each folder's tree is read when the walk reaches it."""

    def __init__(self, trees, root_tree: str) -> None:
        self.trees = trees
        self._subtrees: dict[str, str] = {"/": root_tree}  # folders reached but not yet walked

    def folder(self, path: str) -> dict[str, Entry]:
        tree_id = self._subtrees.pop(path, None)
        if tree_id is None:
            return {}
        out: dict[str, Entry] = {}
        for n in self.trees.load_tree(tree_id):
            kind = n["type"]
            if kind == "file":
                out[n["name"]] = ("file", n.get("size") or 0, n.get("mtime_ns"), n.get("content") or [], None)
            elif kind == "dir":
                out[n["name"]] = ("dir", 0, None, None, n.get("subtree"))
                if n.get("subtree"):
                    self._subtrees[_join(path, n["name"])] = n["subtree"]
            else:
                out[n["name"]] = (kind, 0, None, None, None)
        return out

    def files_below(self, path: str, entry: Entry) -> Iterator[str]:
        self._subtrees.pop(path, None)
        if entry[4]:
            for _p, node in self.trees.walk(entry[4], path):
                if node["type"] == "file":
                    yield node["name"]


class CacheParent:
    """The files cache of the previous backup of these paths here (a write-only key)."""

    def __init__(self, cache) -> None:
        self.cache = cache

    def folder(self, path: str) -> dict[str, Entry]:
        return {
            name: ("file", size, mtime, content, None)
            for name, (size, mtime, _c, _i, content, _s) in self.cache.folder(path).items()
        }

    def files_below(self, path: str, entry: Entry) -> Iterator[str]:
        return iter(())


class Changes:
    """Counts against the parent (`stats`' new/changed/unmodified) and the signals (`measured`).

    All on the walk's thread: `folder` when a folder is scanned, `file_done` when a file's
    content is known, `scanned` once all of a folder's entries are."""

    def __init__(self, parent: ParentFolders | None, stats, ratio, what: str = "") -> None:
        self.parent = parent
        self.stats = stats
        self.ratio = ratio  # hex ids -> (raw, stored) bytes from the index, or None
        self.measured = Measured()
        if parent is None and what:
            self.measured.unmeasured.append(what)

    @property
    def active(self) -> bool:
        return self.parent is not None

    def folder(self, path: str) -> dict[str, Entry]:
        """The parent's entries of a folder the walk reached ({} if none)."""
        if self.parent is None:
            return {}
        try:
            prev = self.parent.folder(path)
        except AmberError as e:
            self.measured.unmeasured.append(f"{path}: the parent's folder could not be read ({e})")
            return {}
        m = self.measured
        for name, e in prev.items():
            if e[0] == "file":
                m.files_parent += 1
                m.parent_extensions.add(_ext(name))
        return prev

    def scanned(self, path: str, prev: dict[str, Entry], present: set[str], fresh: list) -> None:
        """A folder's entries are all known: count what is gone, and pair each `fresh` file
        (items with an `old`/`renamed` slot, absent from the parent) with a deleted file of the
        same stem and another extension (a rename)."""
        if not prev:
            return
        m = self.measured
        by_name: dict[str, Entry] = {}
        for name, e in prev.items():
            if name in present:
                continue
            if e[0] == "file":
                m.deleted += 1
                by_name[name] = e
            elif e[0] == "dir":
                self._gone_folder(_join(path, name), e)
        if not by_name or not fresh:
            return
        by_stem = {os.path.splitext(n)[0]: n for n in by_name}
        for item in fresh:
            stem, ext = os.path.splitext(item.name)
            old = stem if stem in by_name else by_stem.get(stem)
            if old is None or old not in by_name or _ext(old) == ext.lower():
                continue
            item.old, item.renamed = by_name.pop(old), ext.lower()
            by_stem.pop(os.path.splitext(old)[0], None)
            m.deleted -= 1  # a rename, counted as such (not as deleted and added)

    def _gone_folder(self, path: str, e: Entry) -> None:
        m = self.measured
        try:
            for name in self.parent.files_below(path, e):  # type: ignore[union-attr]
                m.files_parent += 1
                m.deleted += 1
                m.parent_extensions.add(_ext(name))
        except AmberError as err:
            m.unmeasured.append(f"{path}: the parent's folder could not be read ({err})")

    def file_done(self, path: str, node: dict, old: Entry | None, renamed: str | None, added=(0, 0)) -> None:
        """Count one file whose content is known; `old` is the parent's entry at the same
        path (or the file it was renamed from), `added` the (raw, stored) bytes it added."""
        m, stats = self.measured, self.stats
        m.files += 1
        if old is None or old[0] != "file" or renamed is not None:
            stats.files_new += 1
            if self.parent is None:
                return
            if renamed is not None and old is not None:
                m.renamed += 1
                m.renamed_to[renamed] = m.renamed_to.get(renamed, 0) + 1
                self._compressibility(old, added)
                return
            m.added += 1
            if is_ransom_note(node["name"]):
                m.ransom_notes.append(path)
            return
        same_content = old[3] == node.get("content")
        if same_content and old[1] == node.get("size") and old[2] == node.get("mtime_ns"):
            stats.files_unmodified += 1
            return
        stats.files_changed += 1
        if not same_content:
            m.changed += 1
            self._compressibility(old, added)

    def _compressibility(self, old: Entry, added) -> None:
        """Whether a changed file's new blobs stopped compressing where its parent version's did."""
        raw, stored = added
        if not raw:
            return  # nothing new stored (its blobs were known): nothing to compare
        m = self.measured
        m.bytes_changed += raw
        before = self.ratio(old[3] or [])
        if before is None or not before[0]:
            return
        if before[1] / before[0] <= COMPRESSIBLE and stored / raw >= INCOMPRESSIBLE:
            m.bytes_collapsed += raw
            m.files_collapsed += 1


def _ext(name: str) -> str:
    return os.path.splitext(name)[1].lower()
