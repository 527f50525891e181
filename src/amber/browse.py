"""Listing, comparing and searching snapshots: ls, cat, diff, find."""
from __future__ import annotations

import fnmatch
import re
import stat as st_
from typing import Iterator

from .clock import to_iso
from .errors import NotFound, UsageError

_TYPE_CHAR = {"file": "-", "dir": "d", "symlink": "l", "fifo": "p", "chardev": "c", "blockdev": "b"}


def entry_json(path: str, node: dict) -> dict:
    import datetime as _dt

    mt = node.get("mtime_ns")
    out = {"path": path, "name": node["name"], "type": node["type"], "size": node.get("size", 0),
           "mode": node.get("mode", 0), "permissions": permissions(node),
           "uid": node.get("uid"), "gid": node.get("gid"),
           "user": node.get("user"), "group": node.get("group"),
           "mtime": to_iso(_dt.datetime.fromtimestamp(mt / 1e9, _dt.timezone.utc)) if mt is not None else None,
           "mtime_ns": mt}
    if node["type"] == "file":
        out["sha256"] = node.get("sha256")
    if node["type"] == "symlink":
        out["target"] = node.get("target")
    return out


def permissions(node: dict) -> str:
    return _TYPE_CHAR.get(node["type"], "?") + st_.filemode(node.get("mode", 0))[1:]


def ls(repo, snap, path: str = "/") -> Iterator[tuple[str, dict]]:
    """Every node at and below `path`, parents first."""
    path = "/" + path.strip("/") if path.strip("/") else "/"
    node = repo.node_at(snap, path)
    if node is None:
        raise NotFound(f"{path}: not in snapshot {snap.short_id}")
    if path != "/":
        yield path, node
    if node["type"] == "dir":
        yield from repo.walk(node["subtree"], "" if path == "/" else path)


def cat(repo, snap, path: str, out) -> None:
    node = repo.node_at(snap, path)
    if node is None:
        raise NotFound(f"{path}: not in snapshot {snap.short_id}")
    if node["type"] != "file":
        raise UsageError(f"{path}: is a {node['type']}, not a file")
    repo.copy_file(node, out, path)


_META = ("mode", "uid", "gid", "mtime_ns", "target")


def diff(repo, snap_a, snap_b) -> list[dict]:
    """Changes from a to b: added, removed, modified (content), type, metadata."""
    changes: list[dict] = []

    def walk(ta: str | None, tb: str | None, prefix: str) -> None:
        if ta == tb:
            return  # identical subtrees: nothing below differs
        na = {n["name"]: n for n in repo.load_tree(ta)} if ta else {}
        nb = {n["name"]: n for n in repo.load_tree(tb)} if tb else {}
        for name in sorted(set(na) | set(nb)):
            a, b = na.get(name), nb.get(name)
            path = f"{prefix}/{name}"
            if a is None:
                changes.append(_change("added", path, None, b))
                if b["type"] == "dir":
                    walk(None, b.get("subtree"), path)
            elif b is None:
                changes.append(_change("removed", path, a, None))
                if a["type"] == "dir":
                    walk(a.get("subtree"), None, path)
            elif a["type"] != b["type"]:
                changes.append(_change("type", path, a, b))
                walk(a.get("subtree") if a["type"] == "dir" else None,
                     b.get("subtree") if b["type"] == "dir" else None, path)
            elif a["type"] == "dir":
                if any(a.get(k) != b.get(k) for k in _META):
                    changes.append(_change("metadata", path, a, b))
                walk(a.get("subtree"), b.get("subtree"), path)
            elif a.get("sha256") != b.get("sha256") or a.get("size") != b.get("size"):
                changes.append(_change("modified", path, a, b))
            elif any(a.get(k) != b.get(k) for k in _META):
                changes.append(_change("metadata", path, a, b))

    walk(snap_a.tree, snap_b.tree, "")
    return changes


def _change(kind: str, path: str, a: dict | None, b: dict | None) -> dict:
    node = b or a
    out = {"change": kind, "path": path, "type": node["type"]}
    if a is not None and a["type"] == "file":
        out["size_before"] = a.get("size", 0)
        out["sha256_before"] = a.get("sha256")
    if b is not None and b["type"] == "file":
        out["size_after"] = b.get("size", 0)
        out["sha256_after"] = b.get("sha256")
    return out


def find(repo, pattern: str, snapshots=None) -> list[dict]:
    """Every node in every snapshot whose full path or base name matches the glob."""
    rx = re.compile(fnmatch.translate(pattern))
    base_only = "/" not in pattern and not _may_cross(pattern)
    out = []
    memo: dict[str, list] = {}  # tree id -> matches below it (base-name patterns only)
    for snap in snapshots if snapshots is not None else repo.snapshots():
        t = to_iso(snap.time)
        for path, node in _find_in(repo, snap.tree, "", rx, base_only, memo):
            e = entry_json(path, node)
            out.append({"snapshot": snap.id, "short_id": snap.short_id, "time": t, **e})
    return out


def _may_cross(pattern: str) -> bool:
    """A pattern like '*' or '*x*' may match a full path across '/' even with no '/' in it."""
    return "*" in pattern


def _find_in(repo, tree_id: str, prefix: str, rx, base_only: bool, memo: dict):
    if base_only:
        rel = memo.get(tree_id)
        if rel is None:
            rel = []
            for node in repo.load_tree(tree_id):
                if rx.match(node["name"]):
                    rel.append((f"/{node['name']}", node))
                if node["type"] == "dir" and node.get("subtree"):
                    rel.extend((f"/{node['name']}{p}", n)
                               for p, n in _find_in(repo, node["subtree"], "", rx, True, memo))
            memo[tree_id] = rel
        return [(prefix + p, n) for p, n in rel]
    found = []
    for path, node in repo.walk(tree_id, prefix):
        if rx.match(node["name"]) or rx.match(path):
            found.append((path, node))
    return found
