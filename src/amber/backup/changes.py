"""What changed since the parent snapshot, counted folder by folder as the walk goes.

A backup's summary counts files as new, changed or unmodified against its
parent snapshot (same path: same size, mtime and content ⇒ unmodified), not
against the files cache: the cache leaves out a file written moments before
the last backup, so it must be read again, but it was in the parent all the
same. The same pass gathers the ransomware signals (backup/anomaly.py):
files deleted, added and renamed to a new extension, and whether the new
content of a changed file still compresses, from the stored and raw sizes
the index keeps for the parent's blobs and those this backup just stored.
No extra pass over the data.

A full key compares the parent's trees with the new ones once the walk is
done (`TreeChanges`), descending only where a folder's tree id differs:
trees are Merkle-hashed, so an unchanged re-backup reads no tree at all and
a small change reads the folders on its path. The walk only notes the
bytes each file added. A write-only key cannot read trees (they are sealed
to the content key), so it compares, during the walk, with the files cache
of the previous backup of the same paths on this machine (`CacheParent`):
a file written just before that backup is missing from it and counts as
new, and a folder deleted whole is not counted (docs/ANOMALIES.md).

`backup -v` lists each file with the status these counts give it (`listing`),
so the listing and the summary always agree: a file read again whose content,
size and mtime equal the parent's is listed unmodified.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ..errors import AmberError
from ..repo.trees import Trees
from .anomaly import COMPRESSIBLE, INCOMPRESSIBLE, Measured, is_ransom_note
from .filescache import FilesCache

# (type, size, mtime_ns, content ids (hex) or None, subtree id or None) of a parent's entry
Entry = tuple
STORED_ENTRIES = 50_000  # entries of the trees a backup stored kept for the comparison (~25 MB at most)
# hex blob ids -> (plaintext, stored) bytes from the index, or None when one is not indexed
Ratio = Callable[[list[str]], "tuple[int, int] | None"]
# (status: "new", "changed" or "unmodified"; path; size) of each file stored, for `backup -v`
Listing = list


class ParentFolders(Protocol):
    """The parent snapshot's entries, one folder at a time, in the walk's order."""

    def folder(self, path: str) -> dict[str, Entry]: ...

    def files_below(self, path: str, entry: Entry) -> Iterator[str]:
        """The names of the files below a folder of the parent that is gone now."""
        ...  # pragma: no cover - a protocol


def _join(folder: str, name: str) -> str:
    return folder + name if folder.endswith("/") else f"{folder}/{name}"


class CacheParent:
    """The files cache of the previous backup of these paths here (a write-only key)."""

    def __init__(self, cache: FilesCache) -> None:
        self.cache = cache

    def folder(self, path: str) -> dict[str, Entry]:
        return {
            name: ("file", size, mtime, content, None)
            for name, (size, mtime, _c, _i, content, *_rest) in self.cache.folder(path).items()
        }

    def files_below(self, path: str, entry: Entry) -> Iterator[str]:
        return iter(())


class Changes:
    """Counts against the parent (`stats`' new/changed/unmodified) and the signals (`measured`).

    All on the walk's thread: `folder` when a folder is scanned, `file_done` when a file's
    content is known, `scanned` once all of a folder's entries are."""

    def __init__(self, parent: ParentFolders | None, stats: Any, ratio: Ratio, what: str = "") -> None:
        self.parent = parent
        self.stats = stats
        self.ratio = ratio  # hex ids -> (raw, stored) bytes from the index, or None
        self.measured = Measured()
        self.listing: Listing | None = None  # filled with each file's status, when asked
        if parent is None and what:
            self.measured.unmeasured.append(what)

    @property
    def active(self) -> bool:
        """Whether the walk compares each folder with the parent's as it goes."""
        return self.parent is not None

    @property
    def measures(self) -> bool:
        """Whether there is a parent to compare with at all."""
        return self.parent is not None

    def tree_stored(self, tree_id: str, nodes: list[dict]) -> None:
        """A folder's tree the walk has just stored (new to the repository)."""

    def finish(self, root_tree: str) -> None:
        """The walk is done and the new root tree stored (`TreeChanges` compares then)."""

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
        for name, entry in prev.items():
            if entry[0] == "file":
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
        if by_name and fresh:
            _pair(by_name, fresh, m)

    def _gone_files(self, path: str, e: Entry) -> Iterator[str]:
        return self.parent.files_below(path, e)  # type: ignore[union-attr]

    def _gone_folder(self, path: str, e: Entry) -> None:
        m = self.measured
        try:
            for name in self._gone_files(path, e):
                m.files_parent += 1
                m.deleted += 1
                m.parent_extensions.add(_ext(name))
        except AmberError as err:
            m.unmeasured.append(f"{path}: the parent's folder could not be read ({err})")

    def file_done(
        self, path: str, node: dict, old: Entry | None, renamed: str | None, added: tuple[int, int] = (0, 0)
    ) -> None:
        """Count one file whose content is known; `old` is the parent's entry at the same
        path (or the file it was renamed from), `added` the (raw, stored) bytes it added."""
        m, stats = self.measured, self.stats
        m.files += 1
        status = _status(node, old, renamed)
        if self.listing is not None:
            self.listing.append((status, path, node.get("size", 0)))
        if status == "new":
            stats.files_new += 1
            if self.parent is None:
                if self.measured.unmeasured and is_ransom_note(node["name"]):
                    m.ransom_notes.append(path)  # nothing to compare with: a note is still a note
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
        if status == "unmodified":
            stats.files_unmodified += 1
            return
        stats.files_changed += 1
        if old is not None and old[3] != node.get("content"):
            m.changed += 1
            self._compressibility(old, added)

    def _compressibility(self, old: Entry, added: tuple[int, int]) -> None:
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


def _status(node: dict, old: Entry | None, renamed: str | None) -> str:
    """A file against the parent's entry at its path (or the file it was renamed from): new
    (none, or renamed), unmodified (same content, size and mtime) or changed."""
    if old is None or old[0] != "file" or renamed is not None:
        return "new"
    if old[3] == node.get("content") and old[1] == node.get("size") and old[2] == node.get("mtime_ns"):
        return "unmodified"
    return "changed"


def _pair(gone: dict[str, Entry], fresh: list, m: Measured) -> None:
    """Give each fresh item (with `name`, `old`, `renamed`) whose stem is a gone file's, with
    another extension, that file as `old` and its new extension as `renamed`."""
    by_stem = {os.path.splitext(n)[0]: n for n in gone}
    for item in fresh:
        stem, ext = os.path.splitext(item.name)
        old = stem if stem in gone else by_stem.get(stem)
        if old is None or old not in gone or _ext(old) == ext.lower():
            continue
        item.old, item.renamed = gone.pop(old), ext.lower()
        by_stem.pop(os.path.splitext(old)[0], None)
        m.deleted -= 1  # a rename, counted as such (not as deleted and added)


class TreeParent:
    """The parent snapshot's trees, read folder by folder as the walk reaches them: for a walk
    whose new trees are never stored (`backup --dry-run`), where `TreeChanges` cannot compare
    after it. A folder's subtree ids are kept until the walk reaches that subfolder."""

    def __init__(self, trees: Trees, root: str) -> None:
        self.trees = trees
        self._ids = {"/": root}

    def folder(self, path: str) -> dict[str, Entry]:
        tree = self._ids.pop(path, None)
        if tree is None:
            return {}
        entries = {n["name"]: _entry(n) for n in self.trees.load_tree(tree)}
        for name, e in entries.items():
            if e[0] == "dir" and e[4]:
                self._ids[_join(path, name)] = e[4]
        return entries

    def files_below(self, path: str, entry: Entry) -> Iterator[str]:
        self._ids.pop(path, None)
        if entry[4]:
            for _p, node in self.trees.walk(entry[4], path):
                if node["type"] == "file":
                    yield node["name"]


def _ext(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _entry(n: dict) -> Entry:
    kind = n["type"]
    if kind == "file":
        return ("file", n.get("size") or 0, n.get("mtime_ns"), n.get("content") or [], None)
    return (kind, 0, None, None, n.get("subtree") if kind == "dir" else None)


class TreeChanges(Changes):
    """A full key's comparison: the parent's trees against the new ones, after the walk.

    During the walk only the (raw, stored) bytes each file added are noted, by path (files
    that added nothing are not). `finish` then compares folder by folder from the roots,
    skipping every pair of equal tree ids: their files are unmodified, counted as the
    files the walk saw minus the new and changed ones."""

    def __init__(self, trees: Trees, parent_root: str, stats: Any, ratio: Ratio) -> None:
        super().__init__(None, stats, ratio)
        self.trees = trees
        self.parent_root = parent_root
        self.added_by_path: dict[str, tuple[int, int]] = {}
        self.labelled: dict[str, str] = {}  # path -> new or changed, for `listing` (else unmodified)
        # the entries of trees this backup stored, so `finish` need not read them back
        self.stored: dict[str, dict[str, Entry]] = {}
        self.stored_entries = 0

    @property
    def active(self) -> bool:
        return False  # the comparison waits for `finish`

    @property
    def measures(self) -> bool:
        return True

    def folder(self, path: str) -> dict[str, Entry]:
        return {}

    def scanned(self, path: str, prev: dict[str, Entry], present: set[str], fresh: list) -> None:
        return

    def tree_stored(self, tree_id: str, nodes: list[dict]) -> None:
        # a tree new to the repository differs from the parent's: `finish` compares it. Kept
        # up to STORED_ENTRIES entries in all (read back from the repository beyond that).
        if self.stored_entries + len(nodes) <= STORED_ENTRIES:
            self.stored[tree_id] = {n["name"]: _entry(n) for n in nodes}
            self.stored_entries += len(nodes)

    def file_done(
        self, path: str, node: dict, old: Entry | None, renamed: str | None, added: tuple[int, int] = (0, 0)
    ) -> None:
        self.measured.files += 1
        if added[0]:
            self.added_by_path[path] = (added[0], added[1])
        if self.listing is not None:  # labelled by `finish`
            self.listing.append(("", path, node.get("size", 0)))

    def finish(self, root_tree: str) -> None:
        m, stats = self.measured, self.stats
        new_files = changed = 0
        stack = [("/", self.parent_root, root_tree)]
        while stack:
            path, old_id, new_id = stack.pop()
            if old_id == new_id:
                continue
            try:
                old = {n["name"]: _entry(n) for n in self.trees.load_tree(old_id)} if old_id else {}
                new = self.stored.pop(new_id, None) if new_id else {}
                if new is None:
                    new = {n["name"]: _entry(n) for n in self.trees.load_tree(new_id)}
            except AmberError as e:
                m.unmeasured.append(f"{path}: a folder could not be read to compare it ({e})")
                continue
            n, c = self._compare(path, old, new, stack)
            new_files += n
            changed += c
        stats.files_new, stats.files_changed = new_files, changed
        stats.files_unmodified = max(0, stats.files_total - new_files - changed)
        m.files = stats.files_total
        m.files_parent += stats.files_unmodified
        if self.listing is not None:
            labelled = self.labelled
            self.listing[:] = [(labelled.get(p, "unmodified"), p, size) for _s, p, size in self.listing]

    def _compare(self, path: str, old: dict, new: dict, stack: list) -> tuple[int, int]:
        """One folder's entries against the parent's: (new files, changed files); folders that
        differ go on `stack`."""
        m = self.measured
        new_files = changed = 0
        fresh: list[_Fresh] = []
        for name, e in new.items():
            o = old.get(name)
            child = _join(path, name)
            if e[0] == "dir":
                stack.append((child, o[4] if o is not None and o[0] == "dir" else None, e[4]))
            elif e[0] != "file":
                continue
            elif o is None or o[0] != "file":
                fresh.append(_Fresh(name, child))
                new_files += 1
                self._label(child, "new")
            else:
                m.parent_extensions.add(_ext(name))
                same_content = o[3] == e[3]
                if not (same_content and o[1] == e[1] and o[2] == e[2]):
                    changed += 1
                    self._label(child, "changed")
                    m.files_parent += 1  # the unmodified ones are added in `finish`
                    if not same_content:
                        m.changed += 1
                        self._compressibility(o, self.added_by_path.get(child, (0, 0)))
        gone = {}
        for name, o in old.items():
            now = new.get(name)
            if now is not None and now[0] == o[0]:
                continue
            if o[0] == "file":
                m.files_parent += 1
                m.deleted += 1
                m.parent_extensions.add(_ext(name))
                gone[name] = o
            elif o[0] == "dir":
                self._gone_folder(_join(path, name), o)
        if fresh:
            self.scanned_pairs(gone, fresh)
        return new_files, changed

    def _label(self, path: str, status: str) -> None:
        if self.listing is not None:
            self.labelled[path] = status

    def scanned_pairs(self, gone: dict[str, Entry], fresh: list) -> None:
        """Pair new files with gone ones (renames, as in `Changes.scanned`), then count them."""
        if gone:
            _pair(gone, fresh, self.measured)
        for f in fresh:
            if f.old is not None and f.renamed is not None:
                m = self.measured
                m.renamed += 1
                m.renamed_to[f.renamed] = m.renamed_to.get(f.renamed, 0) + 1
                self._compressibility(f.old, self.added_by_path.get(f.path, (0, 0)))
            else:
                self.measured.added += 1
                if is_ransom_note(f.name):
                    self.measured.ransom_notes.append(f.path)

    def _gone_files(self, path: str, e: Entry) -> Iterator[str]:
        if e[4]:
            for _p, node in self.trees.walk(e[4], path):
                if node["type"] == "file":
                    yield node["name"]


class _Fresh:
    """A file of a folder the parent did not have by that name (maybe a rename)."""

    __slots__ = ("name", "path", "old", "renamed")

    def __init__(self, name: str, path: str) -> None:
        self.name, self.path, self.old, self.renamed = name, path, None, None
