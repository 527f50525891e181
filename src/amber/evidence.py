"""Evidence bundles: files from a snapshot, with everything needed to prove offline,
without the password, that they are what was backed up.

A bundle is a zip file:

    manifest.json        what is claimed (see docs/EVIDENCE.md)
    files/<n>            the bytes of the n-th file in the manifest
    trees/<digest>.json  the canonical tree of every folder on a Merkle path
    event.json           the snapshot's audit-log event, as its exact canonical bytes
    checkpoint.txt       a signed checkpoint of the log that includes the event
    public-key.txt       the log's Ed25519 verifier key

`verify_bundle` trusts nothing in the bundle but the public key given to it
(falling back to the bundle's own key, which it says it did).
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from .audit import checkpoint as cpfmt
from .audit import merkle
from .audit.log import AuditLog
from .clock import Clock, to_iso
from .errors import IntegrityError, NotFound, UsageError
from .format import tree as treefmt
from .repo.snapshots import Snapshot

FORMAT = "amber-evidence-1"
MAX_MEMBERS = 100_000
MAX_MEMBER = 64 << 30
MAX_META = 64 << 20


class EvidenceSource(Protocol):
    """What an export reads: the snapshot's trees and files, and the audit log that proves them."""

    clock: Clock
    audit: AuditLog

    @property
    def id(self) -> str: ...

    def load_index(self, force: bool = False) -> None: ...

    def load_tree(self, tree_id: str) -> list[dict]: ...

    def copy_file(self, node: dict, out: BinaryIO, what: str) -> None: ...


def export(repo: EvidenceSource, snap: Snapshot, paths: list[str], out_path: str) -> dict:
    repo.load_index()
    ev, raw_event, note, cp, proof = _log_proof(repo, snap)
    trees: dict[str, bytes] = {}
    files = []
    with zipfile.ZipFile(out_path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as z:
        for n, path in enumerate(paths):
            files.append(_export_file(repo, snap, z, n, path, trees))
        manifest = {
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
        for digest, raw in trees.items():
            z.writestr(f"trees/{digest}.json", raw)
        z.writestr("event.json", raw_event)
        z.writestr("checkpoint.txt", note)
        z.writestr("public-key.txt", repo.audit.vkey() + "\n")
        z.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def _log_proof(repo: EvidenceSource, snap: Snapshot):
    """The snapshot's audit-log event (parsed and raw), the latest checkpoint (note and
    verified) and the event's inclusion proof under it."""
    entries = repo.audit.entries()
    leaves = repo.audit.leaves(entries)
    event = next(
        ((ev, raw) for ev, raw in entries if ev.get("type") == "snapshot" and ev.get("snapshot") == snap.id), None
    )
    if event is None:
        raise NotFound(f"snapshot {snap.short_id} has no event in the audit log")
    ev, raw_event = event
    note = repo.audit.latest_checkpoint()
    cp = cpfmt.verify(note, repo.audit.origin, repo.audit.public)
    if cp.size <= ev["seq"] or cp.root != merkle.root(leaves[: cp.size]):
        raise IntegrityError("the latest checkpoint does not cover the snapshot's event", remedy="audit-verify")
    return ev, raw_event, note, cp, merkle.inclusion_proof(leaves[: cp.size], ev["seq"])


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


@dataclass
class EvidenceReport:
    checks: list = field(default_factory=list)  # (ok, what) in order
    key_from_bundle: bool = False
    manifest: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(ok for ok, _ in self.checks)

    def add(self, ok: bool, what: str) -> bool:
        self.checks.append((ok, what))
        return ok

    def failures(self) -> list[str]:
        return [what for ok, what in self.checks if not ok]


def verify_bundle(path: str, public_key: str | None = None) -> EvidenceReport:
    rep = EvidenceReport()
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise IntegrityError(f"{path}: not a readable evidence bundle ({e})") from None
    with z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            raise IntegrityError(f"{path}: too many members")
        names = {i.filename: i for i in infos}

        def read(name: str, limit: int = MAX_META) -> bytes | None:
            info = names.get(name)
            if info is None or info.file_size > limit:
                return None
            try:
                with z.open(info) as f:
                    data = f.read(limit + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, ValueError):
                return None  # a member whose CRC or compressed stream is damaged
            return data if len(data) <= limit else None

        claims = _read_manifest(read, rep)
        if claims is None:
            return rep
        snap, log, files, origin = claims
        key = _verify_key(read, rep, origin, public_key)
        if key is None:
            return rep
        cp = _verify_checkpoint(read, rep, key, origin, log)
        _verify_event(read, rep, snap, log, cp)

        # each file: bytes, then the Merkle path to the content root
        for f in files:
            try:
                _verify_file(f, snap, read, z, names, rep)
            except (KeyError, TypeError, ValueError) as e:
                rep.add(False, f"manifest.json: malformed file entry ({e})")
    return rep


def _read_manifest(read, rep: EvidenceReport):
    """(snapshot, log, files, origin) as the manifest claims them, or None if it is unusable."""
    raw_manifest = read("manifest.json")
    try:
        manifest = json.loads(raw_manifest) if raw_manifest is not None else None
    except ValueError:
        manifest = None
    if not rep.add(
        isinstance(manifest, dict) and manifest.get("format") == FORMAT,
        "manifest.json: readable amber evidence manifest",
    ):
        return None
    rep.manifest = manifest
    try:
        snap, log, files = manifest["snapshot"], manifest["log"], manifest["files"]
        origin = log["origin"]
    except (KeyError, TypeError):
        rep.add(False, "manifest.json: missing snapshot, log or files")
        return None
    return snap, log, files, origin


def _verify_key(read, rep: EvidenceReport, origin, public_key: str | None):
    """The key: the one given, which the bundle's own copy must match. (name, public) or None."""
    raw_key = read("public-key.txt", 4096)
    bundle_key = raw_key.decode("utf-8", errors="replace").strip() if raw_key else ""
    key_text = public_key
    if key_text is None:
        key_text = bundle_key
        rep.key_from_bundle = True
    try:
        name, public = cpfmt.parse_verifier_key(key_text)
        rep.add(
            name == origin and origin == f"amber/{rep.manifest.get('repository')}",
            f"public key: names the log {origin} of repository {rep.manifest.get('repository')}",
        )
    except cpfmt.CheckpointError as e:
        rep.add(False, f"public key: {e}")
        return None
    if public_key is not None:
        try:
            same = cpfmt.parse_verifier_key(bundle_key) == (name, public)
        except cpfmt.CheckpointError:
            same = False
        rep.add(same, "public-key.txt: the bundle names the same key")
    return name, public


def _verify_checkpoint(read, rep: EvidenceReport, key, origin, log):
    """The signed checkpoint, or None if it does not verify."""
    name, public = key
    note = read("checkpoint.txt", cpfmt.MAX_NOTE)
    cp = None
    try:
        cp = cpfmt.verify(note or b"", name, public)
        rep.add(
            cp.origin == origin and cp.size == log.get("tree_size"),
            f"checkpoint.txt: signed checkpoint of {cp.size} entries for {cp.origin}",
        )
    except cpfmt.CheckpointError as e:
        rep.add(False, f"checkpoint.txt: {e}")
    return cp


def _verify_event(read, rep: EvidenceReport, snap, log, cp) -> None:
    """The snapshot's event and its inclusion in the log."""
    raw_event = read("event.json")
    event = None
    try:
        event = json.loads(raw_event) if raw_event is not None else None
    except ValueError:
        pass
    ok = isinstance(event, dict) and event.get("type") == "snapshot" and event.get("snapshot") == snap.get("id")
    details = event.get("details", {}) if ok else {}
    ok = (
        ok
        and isinstance(details, dict)
        and all(
            details.get(k) == snap.get(k)
            for k in ("content_root", "tree", "time", "hostname", "username", "paths", "tags")
        )
    )
    rep.add(
        ok,
        "event.json: the snapshot's audit-log event, naming its id, tree, content root, time, "
        "host, user, paths and tags as the manifest does",
    )
    if raw_event is not None and cp is not None:
        try:
            proof = [base64.b64decode(p, validate=True) for p in log.get("inclusion_proof", [])]
            leaf = merkle.leaf_hash(raw_event)
            merkle.verify_inclusion(leaf, int(log.get("seq", -1)), cp.size, proof, cp.root)
            ok = event is not None and event.get("seq") == log.get("seq") and log.get("leaf_hash") == leaf.hex()
            rep.add(ok, f"event.json: included in the signed log at position {log.get('seq')}")
        except (merkle.ProofError, ValueError, TypeError) as e:
            rep.add(False, f"event.json: inclusion proof fails ({e})")


def _verify_file(f: dict, snap: dict, read, z, names, rep: EvidenceReport) -> None:
    path, member = f["path"], f["member"]
    info = names.get(member)
    h = hashlib.sha256()
    size = 0
    ok = info is not None and info.file_size <= MAX_MEMBER
    if ok:
        try:
            with z.open(info) as src:
                while chunk := src.read(1 << 20):
                    size += len(chunk)
                    h.update(chunk)
                    if size > MAX_MEMBER:
                        ok = False
                        break
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, ValueError):
            ok = False
    ok = ok and h.hexdigest() == f["sha256"] and size == f["size"]
    rep.add(ok, f"{member} ({path}): SHA-256 {f['sha256'][:16]}… and size {f['size']}")

    parts = [p for p in path.split("/") if p]
    digests = f["merkle_path"]
    ok = len(digests) == len(parts) and digests and digests[0] == snap.get("content_root")
    for i, digest in enumerate(digests if ok else []):
        raw = read(f"trees/{digest}.json")
        try:
            nodes = treefmt.decode(raw or b"", f"trees/{digest}.json")
        except IntegrityError:
            ok = False
            break
        if treefmt.digest(raw) != digest:
            ok = False
            break
        node = next((n for n in nodes if n["name"] == parts[i]), None)
        if node is None:
            ok = False
            break
        if i < len(parts) - 1:
            ok = node["type"] == "dir" and node.get("digest") == digests[i + 1]
        else:
            ok = (
                node["type"] == "file"
                and node.get("sha256") == f["sha256"]
                and all(node.get(k) == f.get(k) for k in ("size", "mode", "uid", "gid", "mtime_ns"))
            )
        if not ok:
            break
    rep.add(
        bool(ok),
        f"{member} ({path}): Merkle path from the file's metadata and SHA-256 to the "
        f"snapshot's content root {str(snap.get('content_root'))[:16]}…",
    )
