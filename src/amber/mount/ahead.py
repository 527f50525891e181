"""Putting files into the kernel's page cache before they are read (libfuse 3, lowlevel.py).

A tool that reads a tree (cat of `find`'s list, cp -r, tar) reads its files in the
order the folders list them, going into each subfolder where it is listed. When a
file's first read reaches amber, the pusher plans the files that order reaches next,
across subfolders and back up into the folders around (up to AHEAD_FILES files and
AHEAD_BYTES bytes past what it planned before, looking at no more than AHEAD_STEPS
entries, and no further than the walker has listed: only files the kernel knows can be
stored), has their blobs fetched (content.BlobCache.prefetch), and stores each file,
whole, into the kernel's page cache as soon as it is fetched. Their reads are then
answered by the kernel alone. One planned file a quarter of the way in is left out (the
tripwire): its read reaches amber and plans the next files while the reader goes on
through the rest. A file read before it was stored is not stored; a file that cannot
be read is skipped quietly (its own read tells why). Nothing here answers a request:
a file not stored is read as any other.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterator

from .content import OpenFile
from .fs import Mount

AHEAD_FILES = 128  # files planned past the last planned one ...
AHEAD_BYTES = 16 << 20  # ... and bytes (a file larger than this is never stored ahead)
AHEAD_STEPS = 1024  # entries looked at for one plan
TRIPWIRE = 4  # the planned file 1/TRIPWIRE of the way in is left for its read to reach amber
KEPT = 1 << 18  # paths remembered as planned (about 40 MB at most), node ids as stored
ORDERS_KEPT = 256  # folders whose order of names is kept


class Pusher:
    """A thread that plans, fetches and stores files ahead of their reads. `known(path, size,
    mtime)` is the node id the kernel knows the path by, with that size and mtime (None if
    none); `knows(path)` whether the kernel knows the path at all; `store(ino, data)` puts
    a file's whole content into the kernel's page cache (False if the kernel took none)."""

    def __init__(
        self,
        mount: Mount,
        known: Callable[[str, int, int], int | None],
        knows: Callable[[str], bool],
        store: Callable[[int, bytes], bool],
    ) -> None:
        self.mount = mount
        self.known = known
        self.knows = knows
        self.store = store
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._planned: set[str] = set()
        self._in_kernel: set[int] = set()  # node ids stored, or read by the kernel itself
        self._orders: collections.OrderedDict[str, tuple[dict, dict[str, int], list[str]]] = collections.OrderedDict()
        self._thread = threading.Thread(target=self._running, name="amber-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No plan or store after what is running now (stores check the session themselves)."""
        self._jobs.put(None)

    def first_read(self, path: str, ino: int | None, reader: int) -> None:
        """Process `reader` reads the file at `path` (node id `ino`) for the first time: plan
        from it."""
        if ino is not None:
            self._in_kernel.add(ino)
        self._jobs.put((reader, path))

    def _running(self) -> None:
        while (job := self._jobs.get()) is not None:
            latest = {job[0]: job[1]}  # each reader's latest first read: it has gone past the others
            try:
                while (job := self._jobs.get_nowait()) is not None:
                    latest.pop(job[0], None)
                    latest[job[0]] = job[1]
                return
            except queue.Empty:
                pass
            try:
                self._ahead(list(latest.values()))
            except Exception:  # a file not stored is read as any other
                pass

    def _ahead(self, paths: list[str]) -> None:
        """Plan from each path, have the planned files fetched, and store them as they come."""
        for path in paths:
            planned = []
            for there, node in self._plan(path):
                try:
                    f = self.mount.opened(there, node)
                except OSError:
                    continue
                self.mount.cache.prefetch(f)
                planned.append((there, node, f))
            trip = len(planned) // TRIPWIRE if len(planned) > 2 else -1
            for n, job in enumerate(planned):
                if n != trip:
                    self._store(*job)

    def _plan(self, path: str) -> list[tuple[str, dict]]:
        """The files after `path` in the order a tree walker reads them, not planned before."""
        if len(self._planned) >= KEPT:
            self._planned.clear()
            self._in_kernel.clear()
        out: list[tuple[str, dict]] = []
        total = steps = 0
        for there, node in self._after(path):
            steps += 1
            if steps > AHEAD_STEPS or len(out) >= AHEAD_FILES or total >= AHEAD_BYTES:
                break
            size = node.get("size")
            if node.get("type") != "file" or there in self._planned or not node.get("content"):
                continue
            if not (type(size) is int and 0 < size <= AHEAD_BYTES):
                continue
            if self.known(there, size, node.get("mtime_ns", 0)) is None:
                break  # not listed yet: the walker is not there, nothing more is planned
            self._planned.add(there)
            out.append((there, node))
            total += size
        return out

    def _after(self, path: str) -> Iterator[tuple[str, dict]]:
        """(path, node) of the entries a walker meets after `path`: the rest of its folder, each
        subfolder as it is listed, then the rest of the folders around, up to the snapshot."""
        parent, _, name = path.rpartition("/")
        while parent:
            nodes = self.mount.nodes_at(parent)
            if nodes is None:
                return
            nodes, position, names = self._order(parent, nodes)
            at = position.get(name)
            if at is None:
                return
            for n in names[at + 1 :]:
                yield from self._below(f"{parent}/{n}", nodes[n])
            parent, _, name = parent.rpartition("/")

    def _below(self, path: str, node: dict) -> Iterator[tuple[str, dict]]:
        """The entry `node` at `path`, and if it is a folder, the entries below it, depth first."""
        yield path, node
        if node.get("type") == "dir" and node.get("subtree") and self.knows(path):
            try:
                nodes = self.mount.subfolder(path, node)
            except OSError:  # told when it is listed
                return
            for n, child in list(nodes.items()):
                yield from self._below(f"{path}/{n}", child)

    def _order(self, folder: str, nodes: dict[str, dict]) -> tuple[dict, dict[str, int], list[str]]:
        kept = self._orders.get(folder)
        if kept is None or kept[0] is not nodes:
            names = list(nodes)
            kept = self._orders[folder] = (nodes, {n: i for i, n in enumerate(names)}, names)
            while len(self._orders) > ORDERS_KEPT:
                self._orders.popitem(last=False)
        return kept

    def _store(self, path: str, node: dict, f: OpenFile) -> None:
        stamp = (node["size"], node.get("mtime_ns", 0))
        ino = self.known(path, *stamp)
        if ino is None or ino in self._in_kernel:
            return
        try:
            data = self.mount.cache.read(f, node["size"], 0)
        except Exception:
            return
        if len(data) == node["size"] and self.known(path, *stamp) == ino and ino not in self._in_kernel:
            self._in_kernel.add(ino)
            self.store(ino, data)
