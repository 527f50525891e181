"""Trees: one per folder, a canonical JSON list of nodes sorted by name.

A node is a dict. Every node has `name`, `type` (file, dir, symlink, fifo,
chardev, blockdev), `mode` (permission bits, st_mode & 0o7777), `uid`, `gid`,
`mtime_ns`; files add `size`, `content` (hex blob ids), `sha256` and, when
hard linked, `inode`, `device`, `links`; folders add `subtree` (tree blob id)
and `digest` (their Merkle digest); symlinks add `target`; devices `rdev`.
Optional: `user`, `group`, `ctime_ns`, `inode` (also used by the files cache).

Names are JSON strings; bytes that are not UTF-8 travel as lone surrogates
U+DC80-U+DCFF (Python's surrogateescape), written as \\udcXX escapes.
"""
from __future__ import annotations

import hashlib
import json

from ..errors import IntegrityError

TYPES = ("file", "dir", "symlink", "fifo", "chardev", "blockdev")

# The fields the content root commits to: what a restore reproduces.
MERKLE_FIELDS = ("name", "type", "mode", "uid", "gid", "mtime_ns", "size", "sha256", "target", "digest")
MERKLE_DOMAIN = b"amber-tree-v1\n"


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def encode(nodes: list[dict]) -> bytes:
    nodes = sorted(nodes, key=lambda n: n["name"])
    return canonical({"nodes": nodes, "v": 1})


def decode(raw: bytes, what: str = "tree") -> list[dict]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
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
    return bool(name) and name not in (".", "..") and "/" not in name and "\x00" not in name


def merkle_entry(node: dict) -> dict:
    return {k: node[k] for k in MERKLE_FIELDS if k in node}


def merkle_digest(nodes: list[dict]) -> str:
    """SHA-256 over a folder's entries; each folder entry carries its own digest."""
    entries = sorted((merkle_entry(n) for n in nodes), key=lambda e: e["name"])
    return hashlib.sha256(MERKLE_DOMAIN + canonical(entries)).hexdigest()
