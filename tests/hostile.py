"""Planting hostile objects: what an attacker holding the password can seal.

Everything is sealed with the repository's real keys through amber's own
sealing code and stored as a writer would store it, but with no checks: tree
bytes exactly as given (unsorted, any field of any type), index entries with
any lengths. Tests then run the commands a user would.
"""

from __future__ import annotations

import hashlib
import os

from amber.format import layout
from amber.format.canonical import ascii_json
from amber.format.pack import BLOB_DATA, BLOB_TREE, PackEntry
from amber.format.tree import digest as tree_digest
from amber.repo import records as rec

HEX0 = "00" * 32


def meta(name: str, kind: str, **extra) -> dict:
    node = {
        "name": name,
        "type": kind,
        "mode": 0o755 if kind == "dir" else 0o644,
        "uid": os.getuid(),
        "gid": os.getgid(),
        "mtime_ns": 1_600_000_000_000_000_000,
    }
    node.update(extra)
    return node


class Planter:
    """Builds trees, files and snapshots in an open repository, exactly as given."""

    def __init__(self, repo) -> None:
        self.repo = repo

    def tree(self, nodes: list) -> tuple[str, str]:
        """Store tree bytes exactly as given; (tree id, folder digest of those bytes)."""
        raw = ascii_json({"nodes": nodes, "v": 1})
        bid = self.repo.keys.blob_id(raw)
        self.repo.blobs.add(BLOB_TREE, bid, raw)
        return bid.hex(), tree_digest(raw)

    def data(self, data: bytes) -> str:
        bid = self.repo.keys.blob_id(data)
        self.repo.blobs.add(BLOB_DATA, bid, data)
        return bid.hex()

    def file(self, name: str, data: bytes = b"written by a hostile snapshot\n", **extra) -> dict:
        content = [self.data(data)] if data else []
        sha = hashlib.sha256(data).hexdigest()
        return meta(name, "file", **({"size": len(data), "content": content, "sha256": sha} | extra))

    def dir(self, name: str, children: list, **extra) -> dict:
        tid, dig = self.tree(children)
        return meta(name, "dir", subtree=tid, digest=dig, **extra)

    def snapshot(self, top: list, *, hostname: str = "hostile") -> str:
        """A snapshot of the root folder `top` (flushes what was added first)."""
        tid, dig = self.tree(top)
        self.repo.blobs.flush()
        return self.repo.save_snapshot(
            {
                "v": 1,
                "time": "2030-01-01T00:00:00Z",
                "hostname": hostname,
                "username": "x",
                "paths": ["/"],
                "tags": [],
                "tree": tid,
                "content_root": dig,
                "summary": {},
            }
        )

    def index_entry(self, blob_id: bytes, pack_id: bytes, **fields) -> str:
        """Store an index file listing one blob with whatever place and size it claims."""
        e = {"type": BLOB_DATA, "comp": 0, "offset": 0, "length": 100, "raw_length": 69} | fields
        entry = PackEntry(e["type"], e["comp"], e["offset"], e["length"], e["raw_length"], blob_id)
        name, raw = self.repo.records.seal(rec.INDEX, [(pack_id, [entry])])
        key = layout.index_file(name)
        self.repo.storage.put(key, raw)
        return key
