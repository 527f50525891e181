"""A tree node as the mount shows it: its stat fields, its inode number and its extended
attributes, each derived from the node alone and bounded (a node comes from a tree, which
is hostile input even once it has decoded)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat as st_

MAX_NLINK = 0xFFFFFFFF  # FUSE carries st_nlink in 32 bits

KIND_MODE = {  # a node type -> its st_mode file type bits
    "file": st_.S_IFREG,
    "dir": st_.S_IFDIR,
    "symlink": st_.S_IFLNK,
    "fifo": st_.S_IFIFO,
    "chardev": st_.S_IFCHR,
    "blockdev": st_.S_IFBLK,
}


def node_attrs(node: dict) -> dict:
    """A tree node as stat fields (times in nanoseconds)."""
    kind = node["type"]
    mode = KIND_MODE.get(kind, st_.S_IFREG) | (node.get("mode", 0) & 0o7777)
    if kind == "symlink":
        size = len(os.fsencode(node.get("target", "")))
    else:
        size = node.get("size", 0) if kind == "file" else 0
    mtime = node.get("mtime_ns", 0)
    links = node.get("links", 1) if kind == "file" else 1
    return {
        "st_mode": mode,
        "st_nlink": min(max(links, 1), MAX_NLINK) if type(links) is int else 1,
        "st_size": size,
        "st_blocks": (size + 511) // 512,
        "st_uid": node.get("uid", 0),
        "st_gid": node.get("gid", 0),
        "st_mtime": mtime,
        "st_ctime": node.get("ctime_ns", mtime),
        "st_atime": mtime,
        "st_rdev": node.get("rdev", 0),
    }


def inode_number(path: str, node: dict | None = None) -> int:
    """A stable inode number for a path of the mount (the mount's root is 1). A file the tree
    records as hard linked gets the number of its (device, inode, ctime, content) instead, so
    its paths in a snapshot share it, as they shared an inode when backed up, and `cp -a`,
    `tar` or `du` see one file; the same linked file unchanged in other snapshots shares it
    too, which is as true. Other numbers are 63-bit hashes of the path: distinct in practice."""
    if path == "/":
        return 1
    if node is not None and node.get("type") == "file" and node.get("links", 1) != 1 and "inode" in node:
        key = f"{node.get('device')}:{node['inode']}:{node.get('ctime_ns')}:{node.get('sha256')}"
    else:
        key = "/" + path
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 1) | 2  # never 0 (no inode) or 1 (the root)


MAX_XATTR_VALUE = 64 << 10  # what Linux allows one extended attribute's value


def xattrs(node: dict) -> dict[str, bytes]:
    """The extended attributes a node carries, name -> value: trees that record them keep
    `xattrs` as {name: base64 value} (FORMAT.md §10.4). A malformed or oversized entry is left
    out, never trusted."""
    raw = node.get("xattrs")
    if not isinstance(raw, dict):
        return {}
    out = {}
    for name, value in raw.items():
        if not (isinstance(name, str) and name and "\x00" not in name and isinstance(value, str)):
            continue
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(data) <= MAX_XATTR_VALUE:
            out[name] = data
    return out
