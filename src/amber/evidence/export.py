"""Exporting a bundle: files of a snapshot with their Merkle paths, the snapshot's log event,
its inclusion proof, a checkpoint that verifies and covers it, and the log's key."""

from __future__ import annotations

import base64
import json
import re
import zipfile
from typing import Any, BinaryIO, Protocol

from ..audit import checkpoint as cpfmt
from ..audit import merkle
from ..audit import timestamps as stamps
from ..audit.log import AuditLog
from ..audit.verifying import check_consistency
from ..clock import Clock, to_iso
from ..errors import IntegrityError, NotFound, UsageError
from ..format import layout
from ..format import tree as treefmt
from ..repo.snapshots import Snapshot
from .limits import COPY_MEMBER, FORMAT, MAX_CHECKPOINT_TRIES


class Manifest(dict):
    """The manifest an export wrote, and `warnings` about how it was made (not in the bundle)."""

    warnings: list[str]

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.warnings = []


class EvidenceSource(Protocol):
    """What an export reads: the snapshot's trees and files, and the audit log that proves them."""

    clock: Clock
    audit: AuditLog

    @property
    def id(self) -> str: ...

    def load_index(self, force: bool = False) -> None: ...

    def load_tree(self, tree_id: str) -> list[dict]: ...

    def copy_file(self, node: dict, out: BinaryIO, what: str) -> None: ...


def export(repo: EvidenceSource, snap: Snapshot, paths: list[str], out_path: str) -> Manifest:
    repo.load_index()
    ev, raw_event, note, cp, proof, warnings = log_proof(repo, snap)
    tokens, missing = stamps.for_checkpoint(repo.audit.storage, repo.audit.witness_config(), note, cp.size)
    note = repo.audit.witnessing.with_cosignatures(note, cp)  # witnesses' cosignatures travel with it
    trees: dict[str, bytes] = {}
    files = []
    with zipfile.ZipFile(out_path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        for n, path in enumerate(paths):
            files.append(_export_file(repo, snap, z, n, path, trees))
        manifest = Manifest(
            {
                "format": FORMAT,
                "repository": repo.id,
                "created": to_iso(repo.clock.now()),
                "snapshot": {
                    "id": snap.id,
                    "time": to_iso(snap.time),
                    "hostname": snap.hostname,
                    "username": snap.username,
                    "paths": snap.paths,
                    "tags": snap.tags,
                    "tree": snap.tree,
                    "content_root": snap.content_root,
                },
                "files": files,
                "log": {
                    "seq": ev["seq"],
                    "tree_size": cp.size,
                    "leaf_hash": merkle.leaf_hash(raw_event).hex(),
                    "inclusion_proof": [base64.b64encode(p).decode() for p in proof],
                    "origin": repo.audit.origin,
                },
            }
        )
        copied = _copy_proof(repo, snap, cp) if "copy_of" in snap.doc else None
        if copied is not None:
            manifest["copy"], raw_copy = copied
            z.writestr(COPY_MEMBER, raw_copy)
        manifest.warnings.extend(warnings + missing)
        for digest, raw in trees.items():
            z.writestr(f"trees/{digest}.json", raw)
        for name, token in tokens:
            z.writestr(f"timestamps/{name}.tsr", token)
        z.writestr("event.json", raw_event)
        z.writestr("checkpoint.txt", note)
        z.writestr("public-key.txt", repo.audit.vkey() + "\n")
        z.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def log_proof(repo: EvidenceSource, snap: Snapshot):
    """The snapshot's audit-log event (parsed and raw), the newest stored checkpoint that
    verifies and covers it (note and parsed), the event's inclusion proof under it, and a
    warning for each newer checkpoint passed over."""
    entries = repo.audit.entries()
    leaves = repo.audit.leaves(entries)
    event = next(
        ((ev, raw) for ev, raw in entries if ev.get("type") == "snapshot" and ev.get("snapshot") == snap.id), None
    )
    if event is None:
        raise NotFound(f"snapshot {snap.short_id} has no event in the audit log")
    ev, raw_event = event
    seq = ev["seq"]
    skipped: list[str] = []
    for key in _checkpoint_keys(repo.audit)[:MAX_CHECKPOINT_TRIES]:
        try:
            note = repo.audit.storage.get(key)
            cp = cpfmt.verify(note, repo.audit.origin, repo.audit.public)
            if key != layout.log_checkpoint(cp.size):
                raise IntegrityError(f"its note is of size {cp.size}")
            check_consistency(cp, leaves, "it")
        except (IntegrityError, NotFound) as e:
            skipped.append(f"{key}: {e}")
            continue
        if cp.size <= seq:  # older checkpoints are shorter still
            break
        warnings = [f"passed over a checkpoint that does not verify: {s}" for s in skipped]
        return ev, raw_event, note, cp, merkle.inclusion_proof(leaves[: cp.size], seq), warnings
    why = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")
    raise IntegrityError(
        f"no stored checkpoint verifies and covers event {seq} of snapshot {snap.short_id}"
        + (f" ({why})" if why else ""),
        remedy="audit-verify",
    )


def _copy_proof(repo: EvidenceSource, snap: Snapshot, cp) -> tuple[dict, bytes]:
    """For a copied snapshot: the manifest's `copy` (its `copy` event's place and inclusion
    proof under the bundle's checkpoint) and the event's leaf bytes."""
    entries = repo.audit.entries()
    leaves = repo.audit.leaves(entries)
    found = [(ev, raw) for ev, raw in entries if ev.get("type") == "copy" and ev.get("snapshot") == snap.id]
    if not found:
        raise NotFound(f"snapshot {snap.short_id} is a copy, but the audit log has no copy event for it")
    ev, raw = found[0]
    if ev["seq"] >= cp.size:
        raise IntegrityError(f"no stored checkpoint covers the copy event {ev['seq']} of snapshot {snap.short_id}")
    proof = merkle.inclusion_proof(leaves[: cp.size], ev["seq"])
    doc = {
        "seq": ev["seq"],
        "leaf_hash": merkle.leaf_hash(raw).hex(),
        "inclusion_proof": [base64.b64encode(p).decode() for p in proof],
    }
    return doc, raw


def _checkpoint_keys(audit: AuditLog) -> list[str]:
    """The stored checkpoints' keys, newest first; keys that are not checkpoint names last."""
    keys = [i.key for i in audit.storage.list(layout.LOG_CHECKPOINTS)]
    named = re.compile(re.escape(layout.LOG_CHECKPOINTS) + rf"[0-9]{{{layout.SEQ_DIGITS}}}")
    good = sorted((k for k in keys if named.fullmatch(k)), reverse=True)
    return good + sorted(k for k in keys if not named.fullmatch(k))


def _export_file(
    repo: EvidenceSource, snap: Snapshot, z: zipfile.ZipFile, n: int, path: str, trees: dict[str, bytes]
) -> dict:
    """Write the n-th file into the bundle; its manifest entry. Adds the trees on its
    path to `trees` (digest -> canonical bytes)."""
    path = "/" + path.strip("/")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise UsageError("give file paths inside the snapshot, not /")
    chain = [snap.tree]
    node = None
    tree_id = snap.tree
    for i, part in enumerate(parts):
        nodes = repo.load_tree(tree_id)
        raw = treefmt.encode(nodes)
        trees[treefmt.digest(raw)] = raw
        node = next((x for x in nodes if x["name"] == part), None)
        if node is None:
            raise NotFound(f"{path}: not in snapshot {snap.short_id}")
        if i < len(parts) - 1:
            if node["type"] != "dir":
                raise NotFound(f"{path}: not in snapshot {snap.short_id}")
            tree_id = node["subtree"]
            chain.append(tree_id)
    if node["type"] != "file":
        raise UsageError(f"{path}: is a {node['type']}; evidence is for files")
    member = f"files/{n}"
    with z.open(member, "w", force_zip64=True) as f:
        repo.copy_file(node, f, path)
    path_digests = [treefmt.digest(treefmt.encode(repo.load_tree(t))) for t in chain]
    return {
        "path": path,
        "member": member,
        "size": node.get("size", 0),
        "sha256": node["sha256"],
        "mode": node.get("mode"),
        "uid": node.get("uid"),
        "gid": node.get("gid"),
        "mtime_ns": node.get("mtime_ns"),
        "merkle_path": path_digests,
    }
