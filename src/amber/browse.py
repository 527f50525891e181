"""Listing, comparing, searching and counting snapshots: ls, cat, diff, find, stats."""

from __future__ import annotations

import datetime as _dt
import fnmatch
import re
import stat as st_
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from .clock import to_iso
from .errors import AmberError, NotFound, UsageError
from .format import nodemeta
from .repo.snapshots import Snapshot


class TreeReader(Protocol):
    """What browsing reads: snapshots and their trees."""

    def snapshots(self, *, tags=(), hosts=(), paths=()) -> list[Snapshot]: ...

    def load_tree(self, tree_id: str) -> list[dict]: ...

    def walk(self, tree_id: str, prefix: str = "", errors: list[str] | None = None) -> Iterator[tuple[str, dict]]: ...

    def node_at(self, snap: Snapshot, path: str) -> dict | None: ...

    def copy_file(self, node: dict, out: BinaryIO, what: str) -> None: ...

    def referenced_blobs(self, snaps) -> set[bytes]: ...

    def blob_sizes(self, blob_id: bytes) -> tuple[int, int, bool, bool]: ...


_TYPE_CHAR = {"file": "-", "dir": "d", "symlink": "l", "fifo": "p", "chardev": "c", "blockdev": "b"}


def entry_json(path: str, node: dict) -> dict:
    mt = node.get("mtime_ns")
    out = {
        "path": path,
        "name": node["name"],
        "type": node["type"],
        "size": node.get("size", 0),
        "mode": node.get("mode", 0),
        "permissions": permissions(node),
        "uid": node.get("uid"),
        "gid": node.get("gid"),
        "user": node.get("user"),
        "group": node.get("group"),
        "mtime": _iso_ns(mt),
        "mtime_ns": mt,
    }
    if node["type"] == "file":
        out["sha256"] = node.get("sha256")
    if node["type"] == "symlink":
        out["target"] = node.get("target")
    if "xattrs" in node:  # names only: values can be large and binary (`amber cat` is for content)
        out["xattrs"] = sorted(node["xattrs"])
    if "flags" in node:
        out["flags"] = nodemeta.letters(node["flags"])
    return out


def _iso_ns(mt) -> str | None:
    """An mtime in nanoseconds as ISO 8601 UTC; None where there is none or it cannot be shown."""
    if type(mt) is not int:
        return None
    try:
        return to_iso(_dt.datetime.fromtimestamp(mt / 1e9, _dt.UTC))
    except (OverflowError, ValueError, OSError):
        return None


def permissions(node: dict) -> str:
    return _TYPE_CHAR.get(node["type"], "?") + st_.filemode(node.get("mode", 0))[1:]


def ls(
    repo: TreeReader, snap: Snapshot, path: str = "/", errors: list[str] | None = None
) -> Iterator[tuple[str, dict]]:
    """Every node at and below `path`, parents first; with `errors`, damaged folders are
    named there and skipped."""
    path = "/" + path.strip("/") if path.strip("/") else "/"
    node = repo.node_at(snap, path)
    if node is None:
        raise NotFound(f"{path}: not in snapshot {snap.short_id}")
    if path != "/":
        yield path, node
    if node["type"] == "dir":
        yield from repo.walk(node["subtree"], "" if path == "/" else path, errors)


def cat(repo: TreeReader, snap: Snapshot, path: str, out: BinaryIO) -> None:
    node = repo.node_at(snap, path)
    if node is None:
        raise NotFound(f"{path}: not in snapshot {snap.short_id}")
    if node["type"] != "file":
        raise UsageError(f"{path}: is a {node['type']}, not a file")
    repo.copy_file(node, out, path)


_META = ("mode", "uid", "gid", "mtime_ns", "target", "xattrs", "flags")


def diff(repo: TreeReader, snap_a: Snapshot, snap_b: Snapshot, errors: list[str] | None = None) -> list[dict]:
    """Changes from a to b: added, removed, modified (content), type, metadata; parents first.
    With `errors`, folders that cannot be read are named there and skipped."""
    changes: list[dict] = []
    stack: list[Iterator[tuple[dict | None, tuple | None]]] = [_compare(repo, snap_a.tree, snap_b.tree, "")]
    while stack:
        try:
            step = next(stack[-1], None)
        except AmberError as e:
            if errors is None:
                raise
            errors.append(str(e))
            stack.pop()
            continue
        if step is None:
            stack.pop()
            continue
        change, below = step
        if change is not None:
            changes.append(change)
        if below is not None:
            stack.append(_compare(repo, *below))
    return changes


def _compare(
    repo: TreeReader, ta: str | None, tb: str | None, prefix: str
) -> Iterator[tuple[dict | None, tuple | None]]:
    """Per name in two folders: (change or None, (subtree a, subtree b, path) to compare or None)."""
    if ta == tb:
        return  # identical subtrees: nothing below differs
    na = {n["name"]: n for n in repo.load_tree(ta)} if ta else {}
    nb = {n["name"]: n for n in repo.load_tree(tb)} if tb else {}
    for name in sorted(set(na) | set(nb)):
        a, b = na.get(name), nb.get(name)
        path = f"{prefix}/{name}"
        sub_a = a.get("subtree") if a is not None and a["type"] == "dir" else None
        sub_b = b.get("subtree") if b is not None and b["type"] == "dir" else None
        below = (sub_a, sub_b, path) if (sub_a or sub_b) and sub_a != sub_b else None
        if a is None:
            yield _change("added", path, None, b), below
        elif b is None:
            yield _change("removed", path, a, None), below
        elif a["type"] != b["type"]:
            yield _change("type", path, a, b), below
        elif a["type"] == "dir":
            meta = any(a.get(k) != b.get(k) for k in _META)
            yield (_change("metadata", path, a, b) if meta else None), below
        elif a.get("sha256") != b.get("sha256") or a.get("size") != b.get("size"):
            yield _change("modified", path, a, b), None
        elif any(a.get(k) != b.get(k) for k in _META):
            yield _change("metadata", path, a, b), None


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


def find(repo: TreeReader, pattern: str, snapshots=None, errors: list[str] | None = None) -> list[dict]:
    """Every node in every snapshot whose full path or base name matches the glob. With
    `errors`, a snapshot with a damaged folder is named there and the others are searched."""
    rx = re.compile(fnmatch.translate(pattern))
    base_only = "/" not in pattern and not _may_cross(pattern)
    out = []
    memo: dict[str, list] = {}  # tree id -> matches below it (base-name patterns only)
    for snap in snapshots if snapshots is not None else repo.snapshots():
        t = to_iso(snap.time)
        try:
            found = _find_in(repo, snap.tree, "", rx, base_only, memo)
        except AmberError as e:
            if errors is None:
                raise
            errors.append(f"snapshot {snap.short_id}: {e}")
            continue
        for path, node in found:
            e = entry_json(path, node)
            out.append({"snapshot": snap.id, "short_id": snap.short_id, "time": t, **e})
    return out


def _may_cross(pattern: str) -> bool:
    """A pattern like '*' or '*x*' may match a full path across '/' even with no '/' in it."""
    return "*" in pattern


def _find_in(repo: TreeReader, tree_id: str, prefix: str, rx, base_only: bool, memo: dict):
    if base_only:
        return [(prefix + p, n) for p, n in _base_name_matches(repo, tree_id, rx, memo)]
    found = []
    for path, node in repo.walk(tree_id, prefix):
        if rx.match(node["name"]) or rx.match(path):
            found.append((path, node))
    return found


def _base_name_matches(repo: TreeReader, root: str, rx, memo: dict) -> list:
    """Matches below a tree as (path relative to it, node), each tree's computed once (memo)."""
    stack = [(root, False)]
    while stack:
        tree_id, subfolders_done = stack.pop()
        if tree_id in memo:
            continue
        nodes = repo.load_tree(tree_id)
        subs = [n["subtree"] for n in nodes if n["type"] == "dir" and n.get("subtree")]
        pending = [t for t in subs if t not in memo]
        if pending and not subfolders_done:
            stack.append((tree_id, True))
            stack.extend((t, False) for t in pending)
            continue
        rel = []
        for node in nodes:
            if rx.match(node["name"]):
                rel.append((f"/{node['name']}", node))
            if node["type"] == "dir" and node.get("subtree"):
                rel.extend((f"/{node['name']}{p}", n) for p, n in memo[node["subtree"]])
        memo[tree_id] = rel
    return memo[root]


# -- stats: restic's counting modes -------------------------------------------------------------------

STATS_MODES = ("restore-size", "files-by-contents", "blobs-per-file", "raw-data")


def stats(repo: TreeReader, snaps: list[Snapshot], mode: str) -> dict:
    """restic's `stats` of the snapshots, with its keys (docs/CLI.md "stats").

    restore-size: every entry of every snapshot (files, folders, links), and the bytes a restore
    writes (a hard-linked file once per snapshot). files-by-contents: files counted once per
    distinct content. blobs-per-file: the content blobs of each file with distinct content, a
    blob counted once per path that holds it (restic's count). raw-data: the blobs the
    snapshots reference, each once: stored bytes (as sealed in packs), their uncompressed size,
    and the ratios — `deduplication_ratio` is the restore size of the snapshots' files over the
    uncompressed size of the distinct file content they reference (how many times each stored
    byte is used)."""
    if mode not in STATS_MODES:
        raise UsageError(f"--mode must be one of {', '.join(STATS_MODES)}")
    if mode == "files-by-contents":
        return _by_contents(repo, snaps)
    if mode == "blobs-per-file":
        return _blobs_per_file(repo, snaps)
    restored = _restore_size(repo, snaps)
    if mode == "restore-size":
        return restored
    return _raw_data(repo, snaps, restored["total_size"])


def _restore_size(repo: TreeReader, snaps: list[Snapshot]) -> dict:
    size = count = 0
    for snap in snaps:
        linked: set[tuple] = set()
        for _path, node in repo.walk(snap.tree):
            count += 1
            if node["type"] != "file":
                continue
            if node.get("links", 1) > 1 and node.get("inode"):
                key = (node.get("device"), node["inode"])
                if key in linked:
                    continue
                linked.add(key)
            size += node.get("size", 0)
    return {"total_size": size, "total_file_count": count, "snapshots_count": len(snaps)}


def _by_contents(repo: TreeReader, snaps: list[Snapshot]) -> dict:
    seen: set[tuple] = set()
    size = 0
    for snap in snaps:
        for _path, node in repo.walk(snap.tree):
            if node["type"] == "file":
                key = tuple(node.get("content") or ())
                if key not in seen:
                    seen.add(key)
                    size += node.get("size", 0)
    return {"total_size": size, "total_file_count": len(seen), "snapshots_count": len(snaps)}


def _blobs_per_file(repo: TreeReader, snaps: list[Snapshot]) -> dict:
    """restic's blobs-per-file: the first file met with each distinct content counts; its
    blobs are counted (with their uncompressed size) once per path, and so is the file, so one
    path whose content changed between snapshots is one file with the blobs of each version.
    An empty file has no blobs and is not counted, as in restic."""
    seen: set[tuple] = set()
    by_path: dict[str, set[str]] = {}
    size = blobs = 0
    for snap in snaps:
        for path, node in repo.walk(snap.tree):
            if node["type"] != "file":
                continue
            content = tuple(node.get("content") or ())
            if content in seen:
                continue
            seen.add(content)
            for blob in content:
                counted = by_path.setdefault(path, set())
                if blob not in counted:
                    counted.add(blob)
                    size += repo.blob_sizes(bytes.fromhex(blob))[1]
                    blobs += 1
    return {
        "total_size": size,
        "total_file_count": len(by_path),
        "total_blob_count": blobs,
        "snapshots_count": len(snaps),
    }


def _raw_data(repo: TreeReader, snaps: list[Snapshot], restore_size: int) -> dict:
    stored = raw = compressed_raw = data_raw = 0
    blobs = repo.referenced_blobs(snaps)
    for bid in blobs:
        length, raw_length, compressed, is_tree = repo.blob_sizes(bid)
        stored += length
        raw += raw_length
        compressed_raw += raw_length if compressed else 0
        data_raw += 0 if is_tree else raw_length
    return {
        "total_size": stored,
        "total_uncompressed_size": raw,
        "total_blob_count": len(blobs),
        "snapshots_count": len(snaps),
        "compression_ratio": round(raw / stored, 4) if stored else 0,
        "compression_space_saving": round((1 - stored / raw) * 100, 2) if raw else 0,
        "compression_progress": round(compressed_raw / raw * 100, 2) if raw else 0,
        "restore_size": restore_size,
        "deduplication_ratio": round(restore_size / data_raw, 4) if data_raw else 0,
    }
