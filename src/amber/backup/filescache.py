"""The files cache: what each file looked like when its content was last stored.

A file whose size, mtime, ctime and inode match its entry, and whose blobs
are all still indexed, is not read again: an unchanged backup costs one
`lstat` per file. The cache is local state, never part of the repository;
losing it only costs time.
"""

from __future__ import annotations

import json
import os
import tempfile

import zstandard

VERSION = 1
# size, mtime_ns, ctime_ns, inode, content (hex ids), sha256
Entry = tuple


class FilesCache:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self.old: dict[str, list] = {}
        self.new: dict[str, list] = {}
        if path:
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                raw = zstandard.ZstdDecompressor().decompress(f.read(), max_output_size=1 << 31)
            doc = json.loads(raw)
            if doc.get("v") == VERSION and isinstance(doc.get("files"), dict):
                self.old = doc["files"]
        except (OSError, ValueError, zstandard.ZstdError):
            self.old = {}

    def get(self, path: str):
        return self.old.get(path)

    def put(self, path: str, entry: list) -> None:
        self.new[path] = entry

    def save(self, roots: list[str]) -> None:
        """Keep new entries, and old ones outside the folders this backup walked."""
        if not self.path:
            return
        prefixes = tuple(r.rstrip("/") + "/" for r in roots)
        merged = {p: e for p, e in self.old.items() if p not in roots and not p.startswith(prefixes)}
        merged.update(self.new)
        raw = zstandard.ZstdCompressor(level=1).compress(
            json.dumps({"v": VERSION, "files": merged}, separators=(",", ":")).encode()
        )
        folder = os.path.dirname(self.path)
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".files-")
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache we cannot write only costs time next run
