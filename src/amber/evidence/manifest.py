"""The manifest of a bundle: every field checked for presence, type, range and shape."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from ..clock import from_iso
from ..format import tree as treefmt
from .bundle import Bad
from .limits import FORMAT, HEX64, MAX_MEMBER, MAX_MEMBERS, MAX_PATH, MAX_PROOF, MAX_TEXT, REPOSITORY_ID


def check_manifest(m: Any) -> None:
    """Raise Bad, naming the field, unless `m` is a manifest as EVIDENCE.md §3 defines it:
    every field present, of its type, within its range, and nothing else."""
    _fields(m, "manifest", {"format", "repository", "created", "snapshot", "files", "log"} | ({"copy"} & m.keys()))
    if m["format"] != FORMAT:
        raise Bad("format", f"is {_show(m['format'])}, not {FORMAT!r}")
    _hex(m["repository"], "repository", REPOSITORY_ID, 32)
    _time(m["created"], "created")
    s = m["snapshot"]
    _fields(s, "snapshot", {"id", "time", "hostname", "username", "paths", "tags", "tree", "content_root"})
    for k in ("id", "tree", "content_root"):
        _hex(s[k], f"snapshot.{k}")
    _time(s["time"], "snapshot.time")
    for k in ("hostname", "username"):
        _text(s[k], f"snapshot.{k}")
    for k in ("paths", "tags"):
        _list(s[k], f"snapshot.{k}", MAX_MEMBERS)
        for i, v in enumerate(s[k]):
            _text(v, f"snapshot.{k}[{i}]")
    log = m["log"]
    _fields(log, "log", {"origin", "seq", "tree_size", "leaf_hash", "inclusion_proof"})
    if not isinstance(log["origin"], str) or not re.fullmatch(r"amber/[0-9a-f]{32}", log["origin"]):
        raise Bad("log.origin", f"is {_show(log['origin'])}, not amber/ and a repository id")
    _int(log["tree_size"], "log.tree_size", 1, (1 << 63) - 1)
    _int(log["seq"], "log.seq", 0, log["tree_size"] - 1)
    _hex(log["leaf_hash"], "log.leaf_hash")
    _proof(log["inclusion_proof"], "log.inclusion_proof")
    if "copy" in m:  # a copied snapshot: its `copy` event in this log (EVIDENCE.md, copies)
        _fields(m["copy"], "copy", {"seq", "leaf_hash", "inclusion_proof"})
        _int(m["copy"]["seq"], "copy.seq", 0, log["tree_size"] - 1)
        _hex(m["copy"]["leaf_hash"], "copy.leaf_hash")
        _proof(m["copy"]["inclusion_proof"], "copy.inclusion_proof")
    files = m["files"]
    _list(files, "files", MAX_MEMBERS)
    if not files:
        raise Bad("files", "is empty")
    for n, f in enumerate(files):
        where = f"files[{n}]"
        _fields(f, where, {"path", "member", "size", "sha256", "mode", "uid", "gid", "mtime_ns", "merkle_path"})
        if f["member"] != f"files/{n}":
            raise Bad(f"{where}.member", f"is {_show(f['member'])}, not 'files/{n}'")
        parts = _path(f["path"], f"{where}.path")
        _int(f["size"], f"{where}.size", 0, MAX_MEMBER)
        _hex(f["sha256"], f"{where}.sha256")
        _int(f["mode"], f"{where}.mode", 0, 0o7777)
        _int(f["uid"], f"{where}.uid", 0, (1 << 32) - 1)
        _int(f["gid"], f"{where}.gid", 0, (1 << 32) - 1)
        _int(f["mtime_ns"], f"{where}.mtime_ns", -(1 << 63), (1 << 63) - 1)
        _list(f["merkle_path"], f"{where}.merkle_path", len(parts))
        if len(f["merkle_path"]) != len(parts):
            raise Bad(f"{where}.merkle_path", f"has {len(f['merkle_path'])} digests for {len(parts)} path components")
        for i, d in enumerate(f["merkle_path"]):
            _hex(d, f"{where}.merkle_path[{i}]")


def _proof(proof: Any, where: str) -> None:
    """An inclusion proof: a list of at most MAX_PROOF base64 hashes of 32 bytes."""
    _list(proof, where, MAX_PROOF)
    for i, p in enumerate(proof):
        try:
            ok = isinstance(p, str) and len(base64.b64decode(p, validate=True)) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise Bad(f"{where}[{i}]", "is not the base64 of 32 bytes")


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:80] + "…"


def _fields(obj: Any, where: str, names: set[str]) -> None:
    if not isinstance(obj, dict):
        raise Bad(where, "is not an object")
    missing = sorted(names - obj.keys())
    if missing:
        raise Bad(where, f"lacks {', '.join(missing)}")
    extra = sorted(obj.keys() - names)
    if extra:
        raise Bad(where, f"has unknown field(s) {', '.join(map(_show, extra[:5]))}")


def _hex(v: Any, where: str, pattern: re.Pattern = HEX64, digits: int = 64) -> None:
    if not isinstance(v, str) or not pattern.fullmatch(v):
        raise Bad(where, f"is {_show(v)}, not {digits} lowercase hex digits")


def _int(v: Any, where: str, lo: int, hi: int) -> None:
    if type(v) is not int or not lo <= v <= hi:
        raise Bad(where, f"is {_show(v)}, not an integer from {lo} to {hi}")


def _text(v: Any, where: str, limit: int = MAX_TEXT) -> None:
    if not isinstance(v, str) or len(v) > limit:
        raise Bad(where, f"is {_show(v)}, not a string of at most {limit} characters")


def _list(v: Any, where: str, limit: int) -> None:
    if not isinstance(v, list) or len(v) > limit:
        raise Bad(where, f"is not a list of at most {limit} items")


def _time(v: Any, where: str) -> None:
    _text(v, where, 64)
    try:
        from_iso(v)
    except (ValueError, OverflowError):
        raise Bad(where, f"is {_show(v)}, not an ISO 8601 time") from None


def _path(v: Any, where: str) -> list[str]:
    """The components of an absolute path inside the snapshot."""
    _text(v, where, MAX_PATH)
    if not v.startswith("/"):
        raise Bad(where, f"is {_show(v)}, not an absolute path")
    parts = [p for p in v.split("/") if p]
    if not parts:
        raise Bad(where, "names no file")
    for p in parts:
        if not treefmt.valid_name(p):
            raise Bad(where, f"has the component {_show(p)}, which is not a valid name")
    return parts
