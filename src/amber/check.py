"""Repository check: structure always, every byte with read_data.

Structure: every index file authenticates; every pack an index names exists;
every snapshot decodes; every tree of every snapshot decodes, its Merkle
digests match, and every blob it references is indexed. With read_data:
every pack is read whole, its name checked against its hash, its header and
every blob authenticated, decompressed and checked against its id. Damage is
reported by pack, then traced to the snapshots and files it affects.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import blake3

from .errors import AmberError, IntegrityError, NotFound
from .format import tree as treefmt
from .repo.blobs import pack_key


@dataclass
class CheckReport:
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    snapshots: int = 0
    trees: int = 0
    packs: int = 0
    packs_read: int = 0
    bytes_read: int = 0
    blobs: int = 0
    damaged_packs: list = field(default_factory=list)
    affected: list = field(default_factory=list)   # "snapshot path" lines

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        return {"ok": self.ok, "errors": self.errors, "warnings": self.warnings,
                "snapshots": self.snapshots, "trees": self.trees, "packs": self.packs,
                "packs_read": self.packs_read, "bytes_read": self.bytes_read, "blobs": self.blobs,
                "damaged_packs": self.damaged_packs, "affected": self.affected}


def check(repo, *, read_data: bool = False, progress=None) -> CheckReport:
    rep = CheckReport()
    store = repo.store
    repo.load_index()
    for e in repo.index_errors:
        rep.errors.append(f"index {e}")
    stored_packs = {}
    for info in repo.storage.list("data/"):
        name = info.key.rsplit("/", 1)[-1]
        try:
            pid = bytes.fromhex(name)
            if len(pid) != 32 or info.key != pack_key(pid):
                raise ValueError
        except ValueError:
            rep.warnings.append(f"{info.key}: not a pack name, ignored")
            continue
        stored_packs[pid] = info.size
    rep.packs = len(stored_packs)
    rep.blobs = len(store.index)
    indexed_packs: dict[bytes, list] = {}
    for bid, e in store.index.items():
        indexed_packs.setdefault(e.pack, []).append(bid)
    damaged_blobs: set[bytes] = set()
    for pid, blobs in indexed_packs.items():
        if pid not in stored_packs:
            rep.errors.append(f"pack {pid.hex()} is indexed but missing ({len(blobs)} blobs lost)")
            rep.damaged_packs.append(pid.hex())
            damaged_blobs.update(blobs)
    for pid, blobs in indexed_packs.items():
        size = stored_packs.get(pid)
        end = max(store.index[b].offset + store.index[b].length for b in blobs)
        if size is not None and size < end + 4:
            rep.errors.append(f"pack {pid.hex()} is {size} bytes, but its index needs at least {end + 4} "
                              "(truncated)")
            rep.damaged_packs.append(pid.hex())
            damaged_blobs.update(b for b in blobs if store.index[b].offset + store.index[b].length > size)
    for pid in stored_packs:
        if pid not in indexed_packs:
            rep.warnings.append(f"pack {pid.hex()} is in no index (left by an interrupted backup; "
                                "prune removes it)")

    # snapshots and trees
    snaps = []
    for info in repo.storage.list("snapshots/"):
        sid = info.key.split("/", 1)[1]
        try:
            snaps.append(repo.load_snapshot(sid))
        except (IntegrityError, NotFound) as e:
            rep.errors.append(str(e))
    rep.snapshots = len(snaps)
    seen: dict[str, str | None] = {}  # tree id -> digest (None if broken)

    def walk(tree_id: str, where: str) -> str | None:
        if tree_id in seen:
            return seen[tree_id]
        seen[tree_id] = None
        try:
            nodes = repo.load_tree(tree_id)
        except (IntegrityError, NotFound, AmberError) as e:
            rep.errors.append(f"tree {tree_id[:16]} at {where or '/'}: {e}")
            damaged_blobs.add(bytes.fromhex(tree_id)) if _is_hex(tree_id) else None
            return None
        rep.trees += 1
        for n in nodes:
            path = f"{where}/{n['name']}"
            if n["type"] == "dir":
                sub = n.get("subtree")
                if not isinstance(sub, str) or not _is_hex(sub):
                    rep.errors.append(f"{path}: folder without a valid subtree")
                    continue
                digest = walk(sub, path)
                if digest is not None and digest != n.get("digest"):
                    rep.errors.append(f"{path}: Merkle digest does not match its tree")
            elif n["type"] == "file":
                for h in n.get("content") or []:
                    if not _is_hex(h) or bytes.fromhex(h) not in store.index:
                        rep.errors.append(f"{path}: blob {str(h)[:16]} is not indexed")
                        break
        digest = treefmt.digest(treefmt.encode(nodes))
        seen[tree_id] = digest
        return digest

    for s in snaps:
        if not _is_hex(s.tree):
            rep.errors.append(f"snapshot {s.short_id}: invalid tree id")
            continue
        digest = walk(s.tree, "")
        if digest is not None and digest != s.content_root:
            rep.errors.append(f"snapshot {s.short_id}: content root does not match its trees")

    _check_protection(repo, snaps, rep)
    _check_records(repo, rep)

    if read_data:
        _read_packs(repo, stored_packs, indexed_packs, rep, damaged_blobs, progress)

    if damaged_blobs:
        _trace(repo, snaps, damaged_blobs, rep)
    return rep


def _check_protection(repo, snaps, rep: CheckReport) -> None:
    """Events decode, and no object a locked or held snapshot needs is less protected."""
    from .retention.locks import read_event, verify_invariant

    for info in repo.storage.list("locks/"):
        try:
            read_event(repo, info.key)
        except (IntegrityError, NotFound) as e:
            rep.errors.append(str(e))
    if not repo.storage.capabilities.object_lock:
        return
    for problem in verify_invariant(repo, snaps, repo.events(), repo.clock.now()):
        if problem.startswith("note: "):
            rep.warnings.append(f"protection: {problem[6:]}")
        else:
            rep.errors.append(f"protection: {problem}")


def _check_records(repo, rep: CheckReport) -> None:
    """Prune plans, tombstones and run markers authenticate; the audit log verifies."""
    from .retention.prune import read_record

    for prefix in ("prune/", "running/"):
        for info in repo.storage.list(prefix):
            try:
                read_record(repo, info.key)
            except (IntegrityError, NotFound) as e:
                rep.errors.append(str(e) if str(e).startswith(info.key) else f"{info.key}: {e}")
    audit = repo.audit.verify(remember=False)
    rep.errors.extend(f"audit log: {e}" for e in audit.errors)
    rep.warnings.extend(f"audit log: {w}" for w in audit.warnings)


def _is_hex(s) -> bool:
    if not isinstance(s, str) or len(s) != 64:
        return False
    try:
        bytes.fromhex(s)
        return True
    except ValueError:
        return False


def _read_packs(repo, stored_packs, indexed_packs, rep, damaged_blobs, progress) -> None:
    store = repo.store
    mu = threading.Lock()

    def one(pid: bytes):
        key = pack_key(pid)
        problems: list[str] = []
        bad: set[bytes] = set()
        try:
            data = repo.storage.get(key)
        except (NotFound, AmberError) as e:
            return key, [f"cannot read: {e}"], set(indexed_packs.get(pid, ())), 0
        if blake3.blake3(data).digest() != pid:
            problems.append("content does not match its name (bytes changed or truncated)")
        header = None
        try:
            header = store.read_pack_header(pid, data)
        except IntegrityError as e:
            problems.append(f"header: {e}")
        entries = {e.id: e for e in header} if header is not None else {}
        for bid in indexed_packs.get(pid, ()):
            ie = store.index[bid]
            h = entries.get(bid)
            if header is not None and (h is None or h.offset != ie.offset or h.length != ie.length):
                problems.append(f"blob {bid.hex()[:16]} is indexed here but not in the pack header")
            try:
                store.open_blob(bid, ie, data[ie.offset:ie.offset + ie.length])
            except IntegrityError as e:
                bad.add(bid)
                problems.append(str(e))
        return key, problems, bad, len(data)

    total = len(stored_packs)
    with ThreadPoolExecutor(max(2, min(4, os.cpu_count() or 2))) as pool:
        for key, problems, bad, n in pool.map(one, list(stored_packs)):
            with mu:
                rep.packs_read += 1
                rep.bytes_read += n
                if problems:
                    rep.damaged_packs.append(key.rsplit("/", 1)[-1])
                    shown = problems[:5] + ([f"… {len(problems) - 5} more"] if len(problems) > 5 else [])
                    for p in shown:
                        rep.errors.append(f"{key}: {p}")
                    damaged_blobs.update(bad)
                if progress:
                    progress(rep.packs_read, total)


def _trace(repo, snaps, damaged: set[bytes], rep: CheckReport) -> None:
    """Name every snapshot and file that uses a damaged blob."""
    damaged_hex = {b.hex() for b in damaged}
    for s in snaps:
        try:
            for path, node in repo.walk(s.tree):
                if node["type"] == "file" and any(h in damaged_hex for h in node.get("content") or []):
                    rep.affected.append(f"{s.short_id} {path}")
                elif node["type"] == "dir" and node.get("subtree") in damaged_hex:
                    rep.affected.append(f"{s.short_id} {path}/ (folder listing)")
        except AmberError as e:
            rep.affected.append(f"{s.short_id} (partly unreadable: {e})")
    if rep.affected:
        rep.errors.append(f"damage affects {len(rep.affected)} file(s) in "
                          f"{len({a.split()[0] for a in rep.affected})} snapshot(s)")
