"""Trees: one per folder, a canonical JSON list of nodes sorted by name.

A node is a dict. Every node has `name`, `type` (file, dir, symlink, fifo,
chardev, blockdev), `mode` (permission bits, st_mode & 0o7777), `uid`, `gid`,
`mtime_ns`, `ctime_ns` and `inode`; files add `size`, `content` (hex blob
ids), `sha256` and, when hard linked, `device` and `links`; folders add
`subtree` (tree blob id) and `digest` (their Merkle digest); symlinks add
`target`; devices `rdev`. `user` and `group` names are present when known.

Names are JSON strings; bytes that are not UTF-8 travel as lone surrogates
U+DC80-U+DCFF (Python's surrogateescape), written as \\udcXX escapes.
"""

from __future__ import annotations

import hashlib
import json

from ..errors import IntegrityError
from .canonical import ascii_json

TYPES = ("file", "dir", "symlink", "fifo", "chardev", "blockdev")

# A folder's Merkle digest is SHA-256 over this domain string and the folder's
# canonical tree bytes. Folder nodes carry their subfolder's digest and file
# nodes their content's SHA-256, so the root digest (the snapshot's content
# root) commits to every name, every piece of metadata and every file's bytes.
MERKLE_DOMAIN = b"amber-tree-v1\n"


def encode(nodes: list[dict]) -> bytes:
    """A folder's tree: `ascii_json` of {"nodes": [...sorted by name], "v": 1}."""
    nodes = sorted(nodes, key=lambda n: n["name"])
    return ascii_json({"nodes": nodes, "v": 1})


def decode(raw: bytes, what: str = "tree") -> list[dict]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise IntegrityError(f"{what}: not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("v") != 1 or not isinstance(doc.get("nodes"), list):
        raise IntegrityError(f"{what}: not an amber tree")
    prev = None
    for n in doc["nodes"]:
        if not isinstance(n, dict) or not isinstance(n.get("name"), str) or n.get("type") not in TYPES:
            raise IntegrityError(f"{what}: malformed node")
        if not valid_name(n["name"]):
            raise IntegrityError(f"{what}: unsafe file name {n['name']!r}")
        if prev is not None and n["name"] <= prev:
            raise IntegrityError(f"{what}: names out of order or repeated ({n['name']!r})")
        prev = n["name"]
    return doc["nodes"]


def valid_name(name: str) -> bool:
    """A single path component, in the one form a file system name decodes to."""
    if not name or name in (".", "..") or "/" in name or "\x00" in name:
        return False
    try:  # lone surrogates only as surrogateescape makes them, for bytes that are not UTF-8
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape") == name
    except UnicodeError:
        return False


def digest(raw: bytes) -> str:
    """The Merkle digest of a folder from its canonical tree bytes."""
    return hashlib.sha256(MERKLE_DOMAIN + raw).hexdigest()
