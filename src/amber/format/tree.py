"""Trees: one per folder, a canonical JSON list of nodes sorted by name.

A node is a dict. Every node has `name`, `type` (file, dir, symlink, fifo,
chardev, blockdev), `mode` (permission bits, st_mode & 0o7777), `uid`, `gid`,
`mtime_ns`, `ctime_ns` and `inode`; files add `size`, `content` (hex blob
ids), `sha256` and, when hard linked, `device` and `links`; folders add
`subtree` (tree blob id) and `digest` (their Merkle digest); symlinks add
`target`; devices `rdev`. `user` and `group` names are present when known.
Any node may add `xattrs` and `flags` (format/nodemeta.py); a tree holding
such a node is version 2, every other tree version 1, byte for byte as before.

Names are JSON strings; bytes that are not UTF-8 travel as lone surrogates
U+DC80-U+DCFF (Python's surrogateescape), written as \\udcXX escapes.
"""

from __future__ import annotations

import hashlib
import json

import msgspec

from ..errors import IntegrityError
from . import nodemeta
from .canonical import ascii_json

TYPES = ("file", "dir", "symlink", "fifo", "chardev", "blockdev")
VERSIONS = (1, 2)  # 2: some node carries `xattrs` or `flags` (FORMAT.md §10.4)

# A folder's Merkle digest is SHA-256 over this domain string and the folder's
# canonical tree bytes. Folder nodes carry their subfolder's digest and file
# nodes their content's SHA-256, so the root digest (the snapshot's content
# root) commits to every name, every piece of metadata and every file's bytes.
MERKLE_DOMAIN = b"amber-tree-v1\n"

# Parsing: msgspec's untyped decoder (about twice as fast as json.loads, and giving the
# same objects for every document both accept), with json.loads for what it refuses.
# Typed msgspec decoding is not used: it drops unknown fields, which are part of the
# tree bytes and the folder digest, and its regex constraints are slower than ours.
_parse = msgspec.json.Decoder().decode


# Encoding: msgspec writes the same bytes as `ascii_json` (sorted keys, no whitespace, the
# same escapes below U+0020) about five times faster, except that it writes U+007F and
# non-ASCII characters raw and spells floats differently. Trees hold no floats; output
# with a byte that is not printable ASCII is encoded again by `ascii_json`, as are lone
# surrogates, which msgspec refuses.
_fast_encode = msgspec.json.Encoder(order="sorted").encode


def encode(nodes: list[dict]) -> bytes:
    """A folder's tree: `ascii_json` of {"nodes": [...sorted by name], "v": 1}, or "v": 2
    when a node carries extended attributes or flags (which readers before 2 would drop)."""
    doc = {"nodes": sorted(nodes, key=_by_name), "v": 2 if any(map(_has_meta, nodes)) else 1}
    try:
        raw = _fast_encode(doc)
    except (TypeError, ValueError, msgspec.EncodeError):  # lone surrogates: UnicodeEncodeError
        return ascii_json(doc)
    if not raw.isascii() or b"\x7f" in raw:
        return ascii_json(doc)
    return raw


def _by_name(node: dict) -> str:
    return node["name"]


def _has_meta(node: dict) -> bool:
    return "xattrs" in node or "flags" in node


def decode(raw: bytes, what: str = "tree") -> list[dict]:
    """The nodes of a tree blob, every field checked (FORMAT.md §10.3); else IntegrityError."""
    try:
        doc = _parse(raw)
    except RecursionError:
        raise IntegrityError(f"{what}: not valid JSON (nested too deeply)") from None
    except msgspec.DecodeError:
        # msgspec refuses lone surrogates (names that are not UTF-8, §10.2) and a few
        # spellings Python's json accepts: that parser decides, exactly as before
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise IntegrityError(f"{what}: not valid JSON") from None
    if not isinstance(doc, dict) or type(doc.get("v")) is not int or doc["v"] not in VERSIONS:
        raise IntegrityError(f"{what}: not an amber tree")
    if type(doc.get("nodes")) is not list:
        raise IntegrityError(f"{what}: not an amber tree")
    prev = None
    for n in doc["nodes"]:
        if type(n) is not dict:
            raise IntegrityError(f"{what}: a node is not an object")
        name = n.get("name")
        if type(name) is not str or not valid_name(name):
            raise IntegrityError(f"{what}: unsafe or missing file name {name!r}")
        if prev is not None and name <= prev:
            raise IntegrityError(f"{what}: names out of order or repeated ({name!r})")
        prev = name
        if not _plausible(n) and (problem := node_problem(n)) is not None:
            raise IntegrityError(f"{what}: node {name!r}: {problem}")
    return doc["nodes"]


# The format's own limits on node fields (FORMAT.md §10.1, §18): what a POSIX stat can hold.
U32 = (1 << 32) - 1
U64 = (1 << 64) - 1
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
MAX_MODE = 0o7777
MAX_TARGET = 4096  # PATH_MAX: a symlink's contents
MAX_OWNER_NAME = 256
MAX_DATA_BLOB = 8 << 20  # the chunker's largest cut (FORMAT.md §7.2): a bound on bytes per content id

# field -> (lowest, highest) for the integer fields a node may carry (bool is not an int here)
INT_FIELDS = {
    "mode": (0, MAX_MODE),
    "uid": (0, U32),
    "gid": (0, U32),
    "mtime_ns": (I64_MIN, I64_MAX),
    "ctime_ns": (I64_MIN, I64_MAX),
    "inode": (0, U64),
    "device": (0, U64),
    "rdev": (0, U64),
    "links": (1, U64),
    "size": (0, I64_MAX),
}
HEX_FIELDS = ("sha256", "subtree", "digest")
_META = ("mode", "uid", "gid", "mtime_ns")
REQUIRED = {
    "file": (*_META, "size", "content", "sha256"),
    "dir": (*_META, "subtree", "digest"),
    "symlink": (*_META, "target"),
    "fifo": _META,
    "chardev": (*_META, "rdev"),
    "blockdev": (*_META, "rdev"),
}
_HEX = "0123456789abcdef"
_HEX_COMMA = _HEX + ","


def is_hex_id(value: object) -> bool:
    """A 32-byte id as the format writes it: exactly 64 lowercase hex digits."""
    return type(value) is str and len(value) == 64 and not value.strip(_HEX)


def _plausible(n: dict) -> bool:
    """The fast path of `node_problem` for the nodes writers make: True only if all is well.

    False sends the node to `node_problem`, which names what is wrong (or finds nothing)."""
    g = n.get
    mode, uid, gid, mtime = g("mode"), g("uid"), g("gid"), g("mtime_ns")
    ctime, inode = g("ctime_ns", 0), g("inode", 0)
    user, group = g("user", ""), g("group", "")
    if not (
        type(mode) is int
        and type(uid) is int
        and type(gid) is int
        and type(mtime) is int
        and type(ctime) is int
        and type(inode) is int
        and type(user) is str
        and type(group) is str
        and 0 <= mode <= MAX_MODE
        and 0 <= uid <= U32
        and 0 <= gid <= U32
        and I64_MIN <= mtime <= I64_MAX
        and I64_MIN <= ctime <= I64_MAX
        and 0 <= inode <= U64
        and len(user) <= MAX_OWNER_NAME
        and len(group) <= MAX_OWNER_NAME
        and "\x00" not in user
        and "\x00" not in group
    ):
        return False
    kind = g("type")
    if kind == "file":
        return _plausible_file(n)
    if kind == "dir":
        return _plausible_dir(n)
    return False


def _plausible_file(n: dict) -> bool:
    """`_plausible` for a file node: size, content ids and SHA-256 in shape, no foreign fields."""
    g = n.get
    size, c, sha = g("size"), g("content"), g("sha256")
    if not (
        type(size) is int
        and type(c) is list
        and type(sha) is str
        and len(sha) == 64
        and not sha.strip(_HEX)
        and len(c) <= size <= len(c) * MAX_DATA_BLOB
        and "device" not in n
        and "links" not in n
        and "xattrs" not in n
        and "flags" not in n
    ):
        return False
    if c:
        try:
            joined = ",".join(c)
        except TypeError:
            return False
        k = len(c) - 1
        if len(joined) != 65 * k + 64 or joined.strip(_HEX_COMMA) or joined.count(",") != k:
            return False
        if k and joined[64::65] != "," * k:
            return False
    return "rdev" not in n and "target" not in n and "subtree" not in n and "digest" not in n


def _plausible_dir(n: dict) -> bool:
    """`_plausible` for a folder node: subtree and digest in shape, no foreign fields."""
    g = n.get
    sub, dig = g("subtree"), g("digest")
    return (
        type(sub) is str
        and type(dig) is str
        and len(sub) == 64
        and len(dig) == 64
        and not sub.strip(_HEX)
        and not dig.strip(_HEX)
        and "size" not in n
        and "content" not in n
        and "sha256" not in n
        and "target" not in n
        and "rdev" not in n
        and "device" not in n
        and "links" not in n
        and "xattrs" not in n
        and "flags" not in n
    )


def node_problem(n: dict) -> str | None:
    """What is wrong with a node's fields (None if nothing): FORMAT.md §10.1 and §10.3.

    Every known field is checked wherever it appears; unknown fields are ignored."""
    kind = n.get("type")
    required = REQUIRED.get(kind) if type(kind) is str else None
    if required is None:
        return f"unknown type {kind!r}"
    for k in required:
        if k not in n:
            return f"a {kind} without `{k}`"
    for k, (lo, hi) in INT_FIELDS.items():
        v = n.get(k, 0 if k != "links" else 1)
        if type(v) is not int or not lo <= v <= hi:
            return f"`{k}` is {_show(v)}, not an integer in {lo}..{hi}"
    for k in HEX_FIELDS:
        if k in n and not is_hex_id(n[k]):
            return f"`{k}` is {_show(n[k])}, not 64 hex digits"
    for k in ("user", "group"):
        v = n.get(k, "")
        if type(v) is not str or len(v) > MAX_OWNER_NAME or "\x00" in v:
            return f"`{k}` is {_show(v)}, not a name"
    if "target" in n:
        t = n["target"]
        if type(t) is not str or not t or len(t) > MAX_TARGET or "\x00" in t or not _round_trips(t):
            return f"`target` is {_show(t)}, not a link target"
    if "content" in n:
        c = n["content"]
        if type(c) is not list:
            return f"`content` is {_show(c)}, not a list of blob ids"
        if not all(is_hex_id(h) for h in c):
            return "`content` holds something other than blob ids"
        size = n.get("size", 0)
        # every blob holds at least one byte and at most the chunker's largest cut
        if len(c) > size or size > len(c) * MAX_DATA_BLOB:
            return f"{len(c)} content blob(s) cannot hold {size} bytes"
    if "xattrs" in n and (problem := nodemeta.xattrs_problem(n["xattrs"])) is not None:
        return problem
    if "flags" in n and (problem := nodemeta.flags_problem(n["flags"])) is not None:
        return problem
    return None


def _show(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _round_trips(text: str) -> bool:
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape") == text
    except UnicodeError:
        return False


def valid_name(name: str) -> bool:
    """A single path component, in the one form a file system name decodes to."""
    if not name or name in (".", "..") or "/" in name or "\x00" in name:
        return False
    if name.isascii():
        return True  # ASCII is UTF-8 as it is: nothing to round-trip
    try:  # lone surrogates only as surrogateescape makes them, for bytes that are not UTF-8
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape") == name
    except UnicodeError:
        return False


def digest(raw: bytes) -> str:
    """The Merkle digest of a folder from its canonical tree bytes."""
    return hashlib.sha256(MERKLE_DOMAIN + raw).hexdigest()
