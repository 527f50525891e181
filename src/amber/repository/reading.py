"""Reading a snapshot's trees and files: walks, listings, files, archives, counts, a mount.

The user-facing reads (walk, ls, cat, dump, stats, diff, find, mount) first
refuse a write-only key, which can read nothing back (`require_read`); the
plain reads under them (`load_tree`, `read_blob`, `copy_file`) serve the engine.
browse.py, restore/dump.py and mount/ do the work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from .. import browse
from ..format.compression import COMP_NONE
from ..format.pack import BLOB_TREE
from ..mount import fs as mount_fs
from ..mount import fuse as mount_fuse
from ..repo.selection import select_snapshots
from ..repo.snapshots import Snapshot
from ..restore import dump as dumping
from .parts import RepositoryParts


class TreeReading(RepositoryParts):
    """A snapshot's trees and files read: walks, listings, files, archives, counts, a mount."""

    def load_tree(self, tree_id: str) -> list[dict]:
        return self.trees.load_tree(tree_id)

    def walk(self, tree_id: str, prefix: str = "", errors: list[str] | None = None):
        """(path, node) for every node below the tree, depth first, parents first."""
        self.require_read("read a snapshot's files")
        return self.trees.walk(tree_id, prefix, errors)

    def referenced_blobs(self, snaps) -> set[bytes]:
        """Every blob (trees and file content) the given snapshots reference."""
        return self.trees.referenced_blobs(s.tree for s in snaps)

    def copy_file(self, node: dict, out: BinaryIO, what: str) -> None:
        """Write a file node's content to `out`, checking it against the node's SHA-256."""
        self.trees.copy_file(node, out, what)

    def node_at(self, snap: Snapshot, path: str) -> dict | None:
        """The node at an absolute path inside a snapshot; a synthetic node for '/'."""
        self.require_read("read a snapshot's files")
        return self.trees.node_at(snap.tree, path)

    def ls(self, snap: Snapshot, path: str = "/", errors: list[str] | None = None):
        """Nodes at and below `path`; with `errors`, damaged folders are named there and skipped."""
        self.require_read("list a snapshot's files")
        return browse.ls(self, snap, path, errors)

    def cat(self, snap: Snapshot, path: str, out: BinaryIO) -> None:
        self.require_read("read a file")
        browse.cat(self, snap, path, out)

    def dump(self, snap: Snapshot, path: str, out: BinaryIO, archive: str = "tar") -> int:
        """A folder of a snapshot streamed to `out` as a tar or zip (restore/dump.py)."""
        self.require_read("read a snapshot's files")
        return dumping.dump(self, snap, path, out, archive)

    def blob_sizes(self, blob_id: bytes) -> tuple[int, int, bool, bool]:
        """(bytes stored, uncompressed bytes, compressed?, a tree?) of a blob, from the index."""
        e = self.blobs.lookup(blob_id)
        return e.length, e.raw_length, e.comp != COMP_NONE, e.type == BLOB_TREE

    def read_blob(self, blob_id: bytes) -> bytes:
        """One blob's verified plaintext."""
        self.load_index()
        return self.blobs.read(blob_id)

    def stats(self, snaps: list[Snapshot], mode: str) -> dict:
        """restic's `stats` of the snapshots in one of its modes (browse.py `stats`)."""
        self.require_read("count a snapshot's files")
        self.load_index()
        return browse.stats(self, snaps, mode)

    def diff(self, a: Snapshot, b: Snapshot, errors: list[str] | None = None) -> list[dict]:
        self.require_read("compare snapshots")
        return browse.diff(self, a, b, errors)

    def find(self, pattern: str, snapshots=None, errors: list[str] | None = None) -> list[dict]:
        self.require_read("search snapshots")
        return browse.find(self, pattern, snapshots, errors)

    def mount(
        self,
        mountpoint: str,
        *,
        hosts=(),
        tags=(),
        paths=(),
        allow_other: bool = False,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        """Serve the snapshots (those of any of `hosts`, with any of `tags`, holding every one of
        `paths`) as a read-only folder at `mountpoint` until it is unmounted (mount/)."""
        self.require_read("mount the repository")
        where = mount_fuse.check_mountpoint(mountpoint)
        mount_fuse.load_fuse()  # before anything is read: say at once if FUSE is missing
        self.load_index()
        wanted = set(paths)

        def choose(snaps: list[Snapshot]) -> list[Snapshot]:
            chosen = select_snapshots(snaps, tags=tags, hosts=hosts)
            return [s for s in chosen if wanted <= set(s.paths)]

        fs = mount_fs.Mount(self, choose, warn=self.warn)
        mount_fuse.serve(fs, where, allow_other=allow_other, on_ready=on_ready)
