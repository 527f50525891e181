"""The scan beside a backup that counts what it will go through, for a total and an ETA.

As restic does, a thread walks the sources under the same rules as the backup
(select.py) and counts their regular files and bytes; the progress display divides
what the backup has done by that. It only reads folder listings and inode data, and
runs only when someone watches (a terminal): a backup without it is not slower.
"""

from __future__ import annotations

import os
import stat as st_
import threading

from .select import Selection
from .source import selection_tree


class SourceScan:
    """Counts `files` and `bytes` under `paths` on a thread of its own; `done` once complete."""

    def __init__(self, paths, selection: Selection | None = None) -> None:
        norm = sorted({os.path.normpath(os.path.abspath(p)) for p in paths})
        self.roots = [p for p in norm if os.path.lexists(p)]
        self.selection = selection or None
        self.files = 0
        self.bytes = 0
        self.done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="amber-scan", daemon=True)

    def start(self) -> SourceScan:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            for root in _roots(self.roots):
                self._walk(root)
            self.done = not self._stop.is_set()
        except Exception:  # a count that fails leaves the display without a total, nothing else
            pass

    def _walk(self, root: str) -> None:
        st = os.lstat(root)
        sel = self.selection
        if sel is not None and (sel.excluded(root, os.path.basename(root)) or _too_big(sel, st)):
            return
        self._count(st)
        stack = [(root, st)] if st_.S_ISDIR(st.st_mode) else []
        while stack and not self._stop.is_set():
            path, pst = stack.pop()
            try:
                with os.scandir(path) as it:
                    entries = list(it)
            except OSError:
                continue
            rule = sel.folder(path, {e.name for e in entries} if sel.tags else (), pst) if sel is not None else None
            for e in entries:
                if rule is not None and rule.drops(e.path, e.name):
                    continue
                try:
                    cst = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if rule is not None and rule.verdict(cst) != "keep":
                    continue
                self._count(cst)
                if st_.S_ISDIR(cst.st_mode):
                    stack.append((e.path, cst))

    def _count(self, st) -> None:
        if st_.S_ISREG(st.st_mode):
            self.files += 1
            self.bytes += st.st_size


def _too_big(sel: Selection, st) -> bool:
    return sel.larger_than is not None and st_.S_ISREG(st.st_mode) and st.st_size > sel.larger_than


def _roots(paths: list[str]) -> list[str]:
    """The paths taken whole (none inside another), `/` standing for its entries."""
    out: list[str] = []

    def visit(prefix: str, node) -> None:
        for name, below in sorted(node.items()):
            path = f"{prefix}/{name}"
            if below is None:
                out.append(path)
            else:
                visit(path, below)

    if "/" in paths:
        return ["/" + n for n in sorted(os.listdir("/"))]
    visit("", selection_tree(paths))
    return out
