"""What a mount answers, by path: attributes, folder listings, links, extended attributes, content.

Above the snapshots the folders are views.py's; inside one, the snapshot's trees. A
folder's nodes are kept as a name -> node dict, made when the folder is first looked
into, for up to NODES_CACHED nodes (the kernel also keeps what it was told, for
CACHE_SECONDS). The snapshot list is read again when a view is listed or a name in
one is not found, at most every REFRESH_SECONDS, so snapshots made while mounted
appear; the index is read again when a new snapshot's tree is not in it.

Failures are OSErrors with an errno (ENOENT, ENOTDIR, EIO...) for the file system to
return; what could not be read is told through `warn`, naming the file.
"""

from __future__ import annotations

import collections
import errno
import functools
import os
import stat as st_
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import AmberError
from ..format.nodemeta import RECORDED_FLAGS
from ..repo.blobs import BlobStore
from ..repo.snapshots import Snapshot
from . import views
from .content import BlobCache, OpenFile
from .nodeattrs import KIND_MODE, inode_number, node_attrs, xattrs

REFRESH_SECONDS = 5.0
CACHE_SECONDS = 60.0  # how long the kernel may keep names and attributes (snapshots never change)
NODES_CACHED = 200_000  # nodes of folders kept as dicts (about 1 KB each)
FILES_KEPT = 1024  # files whose blob places are kept between reads
PATHS_KEPT = 8192  # folders looked into, by path: a lookup in one is a dict lookup
LISTINGS_KEPT = 64  # folders being listed, each read in requests of a few dozen entries
AHEAD_FILES = 64  # files after the one being read whose first bytes are fetched beforehand ...
AHEAD_BYTES = 8 << 20  # ... up to this many bytes of them
FOLDERS_AHEAD = 64  # subfolders of a folder being listed whose trees are loaded beforehand


class Mountable(Protocol):
    """What a mount reads: snapshots, trees and blobs."""

    blobs: BlobStore

    def snapshots(self, *, tags=(), hosts=()) -> list[Snapshot]: ...

    def refresh(self) -> None: ...

    def load_index(self, force: bool = False) -> None: ...

    def load_tree(self, tree_id: str) -> list[dict]: ...


class Mount:
    """The file system of one mount. `choose` narrows the snapshot list (--host/--tag/--path)."""

    def __init__(
        self,
        repo: Mountable,
        choose: Callable[[list[Snapshot]], list[Snapshot]] = lambda snaps: snaps,
        *,
        warn: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self.choose = choose
        self.warn = warn
        self.clock = clock
        self.uid, self.gid = os.getuid(), os.getgid()
        self.index_lock = threading.RLock()
        self.cache = BlobCache(repo.blobs, self.index_lock)
        self._refresh_mu = threading.Lock()
        self._views = views.build([])
        self._read_at = -1e18
        self._folders: collections.OrderedDict[str, dict[str, dict]] = collections.OrderedDict()
        self._folder_nodes = 0
        self._paths: dict[str, dict[str, dict]] = {}  # folder path -> its nodes by name
        self._folders_mu = threading.Lock()
        self._orders: collections.OrderedDict[str, _Order] = collections.OrderedDict()
        self._listings: collections.OrderedDict[str, list[tuple[str, dict]]] = collections.OrderedDict()
        self._files: collections.OrderedDict[str, OpenFile] = collections.OrderedDict()
        self._files_mu = threading.Lock()
        self.on_first_read: Callable[[str], None] | None = None  # plans read-ahead instead of _read_ahead
        self.refresh(force=True)

    def close(self) -> None:
        self.cache.close()

    # -- the snapshot list -----------------------------------------------------

    def refresh(self, force: bool = False) -> None:
        """Read the snapshot list again (at most every REFRESH_SECONDS unless `force`)."""
        with self._refresh_mu:
            if not force and self.clock() - self._read_at < REFRESH_SECONDS:
                return
            self._read_at = self.clock()
            with self.index_lock:
                self.repo.refresh()
                snaps = [s for s in self.choose(self.repo.snapshots()) if s.readable]
                index = self.repo.blobs.index
                if any(bytes.fromhex(s.tree) not in index for s in snaps):
                    self.repo.load_index(force=True)  # a backup made since the index was read
            built = views.build(snaps)
            if built.folders != self._views.folders:  # a name may now stand for another snapshot
                self._paths = {}
                with self._files_mu:
                    self._files.clear()
            self._views = built

    # -- resolving paths -------------------------------------------------------

    def resolve(self, path: str) -> tuple[str, Any]:
        """('view', folder path) | ('snapshot', Snapshot) | ('link', views.Link) | ('node', node)."""
        parent, _, name = path.rpartition("/")
        nodes = self._paths.get(parent)  # the folder was looked into: one dict lookup
        if nodes is not None:
            node = nodes.get(name)
            if node is None:
                raise OSError(errno.ENOENT, path)
            return "node", node
        parts = [p for p in path.split("/") if p]
        folder = ""
        for n, part in enumerate(parts):
            entry = self._view_entry(folder, part)
            if isinstance(entry, Snapshot):
                return self._inside(entry, "/" + "/".join(parts[: n + 1]), parts[n + 1 :])
            if isinstance(entry, views.Link):
                if n + 1 < len(parts):
                    raise OSError(errno.ENOTDIR, path)
                return "link", entry
            folder = f"{folder}/{part}" if folder else part
        return "view", folder

    def _view_entry(self, folder: str, name: str) -> views.Entry:
        entry = self._views.folders.get(folder, {}).get(name)
        if entry is None:
            self.refresh()  # perhaps a snapshot made since the list was read
            entry = self._views.folders.get(folder, {}).get(name)
        if entry is None:
            raise OSError(errno.ENOENT, f"{folder}/{name}")
        return entry

    def _inside(self, snap: Snapshot, root: str, parts: list[str]) -> tuple[str, Any]:
        """The node at `parts` below the snapshot mounted at `root`; every folder passed is
        remembered by its path, for the next lookups in it."""
        if not parts:
            return "snapshot", snap
        node: dict = {"type": "dir", "subtree": snap.tree}
        at = root
        for n, part in enumerate(parts):
            if node["type"] != "dir":
                raise OSError(errno.ENOTDIR, "/".join(parts[:n]))
            nodes = self.folder(node["subtree"])
            self._remember(at, nodes)
            found = nodes.get(part)
            if found is None:
                raise OSError(errno.ENOENT, "/".join(parts[: n + 1]))
            node = found
            at = f"{at}/{part}"
        return "node", node

    def _remember(self, path: str, nodes: dict[str, dict]) -> None:
        if len(self._paths) >= PATHS_KEPT:
            self._paths = {}
        self._paths[path] = nodes

    def folder(self, tree_id: str, warn: bool = True) -> dict[str, dict]:
        """A folder's nodes by name (kept, up to NODES_CACHED nodes); one that cannot be read
        is EIO, told through `warn` unless not `warn`."""
        with self._folders_mu:
            nodes = self._folders.get(tree_id)
            if nodes is not None:
                self._folders.move_to_end(tree_id)
                return nodes
        try:
            with self.index_lock:
                loaded = self.repo.load_tree(tree_id)
        except AmberError as e:
            if warn:
                self.warn(f"folder {tree_id[:16]}: {e}")
            raise OSError(errno.EIO, str(e)) from None
        nodes = {n["name"]: n for n in loaded}
        with self._folders_mu:
            self._folders[tree_id] = nodes
            self._folder_nodes += len(nodes)
            while self._folder_nodes > NODES_CACHED and len(self._folders) > 1:
                _tid, dropped = self._folders.popitem(last=False)
                self._folder_nodes -= len(dropped)
        return nodes

    # -- what the file system asks ----------------------------------------------

    def getattr(self, path: str) -> dict:
        kind, what = self.resolve(path)
        if kind == "node":
            attrs = self.node_attrs(what)
            attrs["st_ino"] = inode_number(path, what)
            return attrs
        if kind == "link":
            attrs = self._attrs(st_.S_IFLNK | 0o777, self._views.times.get(""), len(what.target))
        elif kind == "snapshot":
            attrs = self._attrs(st_.S_IFDIR | 0o555, what.time)
        else:
            attrs = self._attrs(st_.S_IFDIR | 0o555, self._views.times.get(what))
        attrs["st_ino"] = inode_number(path)
        return attrs

    def _attrs(self, mode: int, when, size: int = 0) -> dict:
        ns = int(when.timestamp() * 1e9) if when is not None else 0
        return {
            "st_mode": mode,
            "st_nlink": 1,
            "st_size": size,
            "st_uid": self.uid,
            "st_gid": self.gid,
            "st_mtime": ns,
            "st_ctime": ns,
            "st_atime": ns,
        }

    node_attrs = staticmethod(node_attrs)

    def readdir(self, path: str) -> list[tuple[str, int, int]]:
        """(name, st_mode, st_ino) of every entry of a folder."""
        kind, what = self.resolve(path)
        if kind == "view":
            self.refresh()
            kind, what = self.resolve(path)
        at = path.rstrip("/") + "/"
        if kind == "view":
            entries = self._views.folders.get(what, {})
            return [(name, _view_mode(e), inode_number(at + name)) for name, e in entries.items()]
        nodes = self._folder_at(path, kind, what)
        return [(name, KIND_MODE.get(n["type"], st_.S_IFREG), inode_number(at + name, n)) for name, n in nodes.items()]

    def _folder_at(self, path: str, kind: str, what: Any) -> dict[str, dict]:
        """The nodes of the snapshot's folder `path` resolves to (ENOTDIR for anything else),
        remembered by path for the lookups in it that follow."""
        if kind == "snapshot":
            tree = what.tree
        elif kind == "node" and what["type"] == "dir":
            tree = what["subtree"]
        else:
            raise OSError(errno.ENOTDIR, path)
        nodes = self.folder(tree)
        self._remember(path.rstrip("/"), nodes)
        return nodes

    def listing(self, path: str, offset: int = 0) -> list[tuple[str, dict]]:
        """(name, stat fields) of every entry of a folder, '.' and '..' first: what getattr
        would answer for each, given with the listing. A listing read from `offset` > 0
        continues the one made at 0 (kept for LISTINGS_KEPT folders), so a folder read in
        many requests is one consistent list."""
        if offset:
            with self._folders_mu:
                kept = self._listings.get(path)
            if kept is not None:
                return kept
        here = self.getattr(path)
        up = self.getattr(path.rsplit("/", 1)[0] or "/") if path.strip("/") else here
        out = [(".", here), ("..", up)]
        kind, what = self.resolve(path)
        if kind == "view":
            base = path.rstrip("/")
            out += [(name, self.getattr(f"{base}/{name}")) for name, _mode, _ino in self.readdir(path)]
        else:
            nodes = self._folder_at(path, kind, what)
            self._load_ahead(nodes)
            at = path.rstrip("/") + "/"
            for name, n in nodes.items():
                attrs = self.node_attrs(n)
                attrs["st_ino"] = inode_number(at + name, n)
                out.append((name, attrs))
        with self._folders_mu:
            self._listings[path] = out
            while len(self._listings) > LISTINGS_KEPT:
                self._listings.popitem(last=False)
        return out

    def readlink(self, path: str) -> str:
        kind, what = self.resolve(path)
        if kind == "link":
            return what.target
        if kind == "node" and what["type"] == "symlink":
            return what.get("target", "")
        raise OSError(errno.EINVAL, path)

    def read(self, path: str, size: int, offset: int) -> bytes:
        """Up to `size` bytes of the file at `path` from `offset`. There is no open or release:
        a file's blobs are looked up at its first read and kept for FILES_KEPT files, which
        spares two calls into Python per file."""
        f = self._file(path)
        try:
            return self.cache.read(f, size, offset)
        except AmberError as e:
            self.warn(str(e))
            raise OSError(errno.EIO, str(e)) from None

    def _file(self, path: str) -> OpenFile:
        with self._files_mu:
            f = self._files.get(path)
            if f is not None:
                self._files.move_to_end(path)
        if f is None:
            kind, node = self.resolve(path)
            if kind != "node" or node["type"] != "file":
                raise OSError(errno.EISDIR if kind != "link" else errno.EINVAL, path)
            f = self._open(path, node)
        if not f.read_ahead:  # its first read: the files after it are fetched meanwhile
            f.read_ahead = True
            (self.on_first_read or self._read_ahead)(path)
        return f

    def opened(self, path: str, node: dict) -> OpenFile:
        """The file `node` at `path` as `read` keeps it, without planning any read-ahead; OSError
        (EIO, told by no one: its own read tells) if its blobs are not in the index."""
        with self._files_mu:
            f = self._files.get(path)
        return f or self._open(path, node, warn=False)

    def nodes_at(self, path: str) -> dict[str, dict] | None:
        """The nodes of the snapshot's folder at `path`, if it was looked into (kept by path)."""
        return self._paths.get(path)

    def subfolder(self, path: str, node: dict) -> dict[str, dict]:
        """The nodes of the folder `node` at `path`, loaded quietly (OSError if unreadable) and
        kept by path."""
        nodes = self.folder(node["subtree"], warn=False)
        self._remember(path, nodes)
        return nodes

    def _open(self, path: str, node: dict, warn: bool = True) -> OpenFile:
        """A file's blobs and where each is stored, kept for its next reads."""
        ids = [bytes.fromhex(h) for h in node.get("content") or ()]
        try:
            with self.index_lock:
                entries = [self.repo.blobs.lookup(b) for b in ids]
        except AmberError as e:
            if warn:
                self.warn(f"{path}: {e}")
            raise OSError(errno.EIO, str(e)) from None
        f = OpenFile(ids, entries, path)
        with self._files_mu:
            self._files[path] = f
            while len(self._files) > FILES_KEPT:
                self._files.popitem(last=False)
        return f

    def _load_ahead(self, nodes: dict[str, dict]) -> None:
        """Load the first FOLDERS_AHEAD subfolders of a folder being listed in the background:
        whoever lists a folder usually goes into its subfolders next (find, ls -R, cp -r)."""
        subtrees = [n["subtree"] for n in nodes.values() if n.get("type") == "dir" and n.get("subtree")]
        for tree_id in subtrees[:FOLDERS_AHEAD]:
            with self._folders_mu:
                if tree_id in self._folders:
                    continue
            self.cache.later(functools.partial(self._folder_quietly, tree_id))

    def _folder_quietly(self, tree_id: str) -> None:
        try:
            self.folder(tree_id, warn=False)
        except OSError:  # told when it is listed
            pass

    def _read_ahead(self, path: str) -> None:
        """Start fetching the files listed after this one in its folder, up to AHEAD_BYTES
        and AHEAD_FILES past it: whoever reads a folder's files one by one (cp, tar, cat)
        then finds each one fetched while the one before was being read."""
        parent, _, name = path.rpartition("/")
        nodes = self._paths.get(parent)
        if nodes is None:
            return
        with self._folders_mu:
            order = self._orders.get(parent)
            if order is None or order.nodes is not nodes:
                order = self._orders[parent] = _Order(nodes)
                while len(self._orders) > LISTINGS_KEPT:
                    self._orders.popitem(last=False)
        at = order.position.get(name)
        if at is None:
            return
        names, ends = order.names, order.ends
        j = order.mark if at < order.mark <= at + AHEAD_FILES else at + 1
        last = min(len(names), at + AHEAD_FILES + 1)
        budget = AHEAD_BYTES - (ends[j] - ends[at + 1])  # what is being fetched already counts
        while j < last and budget > 0:
            node = nodes[names[j]]
            j += 1
            if node["type"] != "file" or not node.get("content"):
                continue
            there = f"{parent}/{names[j - 1]}"
            with self._files_mu:
                known = there in self._files
            if not known:
                try:
                    self.cache.prefetch(self._open(there, node))
                except OSError:  # told when it is read
                    pass
            budget -= ends[j] - ends[j - 1]
        order.mark = j

    def flags(self, path: str) -> int:
        """The inode flags (`lsattr`'s) the tree recorded for the entry at `path`; 0 for the
        folders above the snapshots and for what recorded none."""
        kind, node = self.resolve(path)
        value = node.get("flags", 0) if kind == "node" else 0
        return value & RECORDED_FLAGS if type(value) is int else 0

    def listxattr(self, path: str) -> list[str]:
        kind, node = self.resolve(path)
        return list(xattrs(node)) if kind == "node" else []

    def getxattr(self, path: str, name: str) -> bytes:
        kind, node = self.resolve(path)
        value = xattrs(node).get(name) if kind == "node" else None
        if value is None:
            raise OSError(errno.ENODATA, name)
        return value


class _Order:
    """A folder's names in the order the snapshot lists them (the order `ls -f`, `find`, `cp`
    and `tar` go through them), each name's place, where each file ends counting the sizes
    of those before it, and how far read-ahead has gone (Mount._read_ahead)."""

    __slots__ = ("nodes", "names", "position", "ends", "mark")

    def __init__(self, nodes: dict[str, dict]) -> None:
        self.nodes = nodes
        self.names = list(nodes)
        self.position = {n: i for i, n in enumerate(self.names)}
        ends, total = [0], 0
        for n in self.names:
            node = nodes[n]
            size = node.get("size", 0) if node.get("type") == "file" else 0
            total += size if type(size) is int else 0
            ends.append(total)
        self.ends = ends
        self.mark = 0


def _view_mode(entry: views.Entry) -> int:
    return st_.S_IFLNK if isinstance(entry, views.Link) else st_.S_IFDIR
