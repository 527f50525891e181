"""Reading a snapshot's trees: decoded folders, walks of any depth, file content.

Every walk here is iterative: a tree as deep as anything a file system can
hold is read with an explicit stack, never the interpreter's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from ..errors import AmberError, IntegrityError, NotFound
from ..format import tree as treefmt
from .blobs import BlobStore

# Decoded trees kept, counted in nodes (about 1 KB each); the cache is emptied when it grows
# past this. Walks (restore, check, prune) read each tree once: the cache serves lookups by path.
NODES_CACHED = 4096


class Trees:
    """Decoded trees of one repository, cached by id. `ready` loads the index when first needed."""

    def __init__(self, blobs: BlobStore, ready: Callable[[], None]) -> None:
        self.blobs = blobs
        self._ready = ready
        self._cache: dict[bytes, list[dict]] = {}
        self._cached_nodes = 0

    def load_tree(self, tree_id: str) -> list[dict]:
        """A folder's validated nodes; any damage is an IntegrityError naming the tree."""
        if not treefmt.is_hex_id(tree_id):
            raise IntegrityError(f"tree {str(tree_id)[:70]!r}: not a tree id")
        bid = bytes.fromhex(tree_id)
        cached = self._cache.get(bid)
        if cached is not None:
            return cached
        self._ready()
        what = f"tree {tree_id[:16]}"
        try:
            # A blob id names plaintext, so a data blob with the same bytes is the same tree.
            raw = self.blobs.read(bid)
        except IntegrityError as e:
            raise IntegrityError(f"{what}: {e}") from None
        except NotFound as e:
            raise IntegrityError(f"{what}: its pack is missing ({e})") from None
        nodes = treefmt.decode(raw, what)
        if self._cached_nodes + len(nodes) > NODES_CACHED:
            self.forget()
        self._cache[bid] = nodes
        self._cached_nodes += len(nodes)
        return nodes

    def walk(self, tree_id: str, prefix: str = "", errors: list[str] | None = None) -> Iterator[tuple[str, dict]]:
        """(path, node) for every node below the tree, depth first, parents first.

        A folder whose tree cannot be read raises; with `errors`, it is named
        there and skipped, and the walk goes on with the rest."""
        stack: list[Iterator[dict]] = [iter(self._tree_or_note(tree_id, prefix or "/", errors))]
        prefixes = [prefix]
        while stack:
            node = next(stack[-1], None)
            if node is None:
                stack.pop()
                prefixes.pop()
                continue
            path = f"{prefixes[-1]}/{node['name']}"
            yield path, node
            if node["type"] == "dir" and node.get("subtree"):
                stack.append(iter(self._tree_or_note(node["subtree"], path, errors)))
                prefixes.append(path)

    def _tree_or_note(self, tree_id: str, where: str, errors: list[str] | None) -> list[dict]:
        if errors is None:
            return self.load_tree(tree_id)
        try:
            return self.load_tree(tree_id)
        except AmberError as e:
            errors.append(f"{where}: {e}")
            return []

    def referenced_blobs(self, roots: Iterable[str]) -> set[bytes]:
        """Every blob (trees and file content) below the given root trees."""
        used: set[bytes] = set()
        seen: set[str] = set()
        todo = list(roots)
        while todo:
            tree_id = todo.pop()
            if tree_id in seen:
                continue
            seen.add(tree_id)
            used.add(bytes.fromhex(tree_id))
            for node in self.load_tree(tree_id):
                if node["type"] == "dir" and node.get("subtree"):
                    todo.append(node["subtree"])
                elif node["type"] == "file":
                    used.update(bytes.fromhex(h) for h in node.get("content") or ())
        return used

    def node_at(self, root: str, path: str) -> dict | None:
        """The node at an absolute path below a root tree; a synthetic folder node for '/'."""
        node: dict | None = {"name": "/", "type": "dir", "subtree": root}
        for part in (p for p in path.split("/") if p):
            if node is None or node["type"] != "dir" or not node.get("subtree"):
                return None
            node = next((n for n in self.load_tree(node["subtree"]) if n["name"] == part), None)
        return node

    def copy_file(self, node: dict, out: BinaryIO, what: str) -> None:
        """Write a file node's content to `out`, checking it against the node's SHA-256."""
        self._ready()
        h = hashlib.sha256()
        for hid in node.get("content") or []:
            data = self.blobs.read(bytes.fromhex(hid))
            h.update(data)
            out.write(data)
        if h.hexdigest() != node.get("sha256"):
            raise IntegrityError(f"{what}: content does not match its SHA-256 in the snapshot")

    def forget(self) -> None:
        self._cache.clear()
        self._cached_nodes = 0
