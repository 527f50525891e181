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
import binascii
import hashlib
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from .audit import checkpoint as cpfmt
from .audit import merkle
from .audit.log import AuditLog, check_consistency
from .clock import Clock, from_iso, to_iso
from .errors import CheckpointError, IntegrityError, NotFound, UsageError
from .format import layout
from .format import tree as treefmt
from .repo.snapshots import Snapshot

FORMAT = "amber-evidence-1"
MAX_MEMBERS = 100_000
MAX_MEMBER = 64 << 30  # a file: streamed and hashed, never held in memory
MAX_META = 64 << 20  # manifest.json, event.json, each tree: read into memory
MAX_KEY = 4 << 10  # public-key.txt
# Deflate cannot expand more than 1032 to 1; a member that claims more is a bomb or a lie.
MAX_RATIO = 1032
SMALL = 64 << 10  # below this, a member's ratio is not worth judging
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
MAX_CHECKPOINT_TRIES = 1000  # stored checkpoints tried, newest first, by an export


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
    ev, raw_event, note, cp, proof, warnings = _log_proof(repo, snap)
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
        manifest.warnings.extend(warnings)
        for digest, raw in trees.items():
            z.writestr(f"trees/{digest}.json", raw)
        z.writestr("event.json", raw_event)
        z.writestr("checkpoint.txt", note)
        z.writestr("public-key.txt", repo.audit.vkey() + "\n")
        z.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def _log_proof(repo: EvidenceSource, snap: Snapshot):
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


# -- verification ---------------------------------------------------------------------------------

FIXED_MEMBERS = ("manifest.json", "event.json", "checkpoint.txt", "public-key.txt")
FILE_MEMBER = re.compile(r"files/(?:0|[1-9][0-9]{0,5})")
TREE_MEMBER = re.compile(r"trees/[0-9a-f]{64}\.json")
HEX64 = re.compile(r"[0-9a-f]{64}")
REPOSITORY_ID = re.compile(r"[0-9a-f]{32}")
MAX_PROOF = 64  # an inclusion proof in a tree of fewer than 2**64 leaves
MAX_TEXT = 64 << 10  # a host, user, tag or snapshot path
MAX_PATH = 1 << 20  # a file's path inside the snapshot
# What the stdlib's zip reader raises on hostile bytes: each means a damaged member or archive.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    OverflowError,
)


@dataclass
class EvidenceReport:
    """What `verify_bundle` found. `ok`: every check passed, so the bundle is consistent.
    `signer_verified`: its checkpoint is signed by a key the caller gave, not only by the key
    the bundle carries itself; consistent evidence from an unverified signer proves nothing
    about who made it."""

    checks: list = field(default_factory=list)  # (ok, what) in order
    key_from_bundle: bool = False
    signer_verified: bool = False
    manifest: dict = field(default_factory=dict)
    problems: dict = field(default_factory=dict)  # index in `checks` -> why that check failed

    @property
    def ok(self) -> bool:
        return all(ok for ok, _ in self.checks)

    def add(self, ok: bool, what: str, why: str | None = None) -> bool:
        if not ok and why:
            self.problems[len(self.checks)] = why
        self.checks.append((ok, what))
        return ok

    def problem(self, i: int) -> str | None:
        return self.problems.get(i)

    def failures(self) -> list[str]:
        return [
            what + (f" ({self.problems[i]})" if i in self.problems else "")
            for i, (ok, what) in enumerate(self.checks)
            if not ok
        ]


class _Unreadable(Exception):
    """A member that is missing, too large, a bomb or damaged; the message says which."""


class _Bad(Exception):
    """A manifest field that is not what the format allows; the message names it."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


class _Bundle:
    """A zip opened for verification: every member's name, and its place in the archive,
    checked before any is read; then members read only within their limits."""

    def __init__(self, z: zipfile.ZipFile, path: str) -> None:
        self.z = z
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            raise IntegrityError(f"{path}: more than {MAX_MEMBERS} members")
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            problem = _member_name_problem(info)
            if problem is not None:
                raise IntegrityError(f"{path}: member {info.orig_filename!r} {problem}")
            if name in self.infos:
                raise IntegrityError(f"{path}: member {name!r} appears more than once (a duplicate entry)")
            self.infos[name] = info
        _check_no_overlap(path, z, infos)

    def problem(self, name: str, limit: int) -> str | None:
        """Why the member cannot be read within `limit`, judged from its headers alone."""
        info = self.infos.get(name)
        if info is None:
            return "missing"
        if info.flag_bits & 0x1:
            return "encrypted"
        if info.compress_type not in METHODS:
            return f"compression method {info.compress_type} (only stored and deflate are allowed)"
        if info.file_size > limit:
            return f"declares {info.file_size} bytes, over the limit of {limit}"
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            return "stored, but its compressed and uncompressed sizes differ"
        if info.file_size > SMALL + info.compress_size * MAX_RATIO:
            return f"declares {info.file_size} bytes from {info.compress_size} compressed (a zip bomb)"
        return None

    def chunks(self, name: str, limit: int) -> Iterator[bytes]:
        """The member's bytes in pieces, never more than it declares; _Unreadable otherwise."""
        why = self.problem(name, limit)
        if why is not None:
            raise _Unreadable(why)
        info = self.infos[name]
        n = 0
        try:
            with self.z.open(info) as f:
                while chunk := f.read(min(1 << 20, info.file_size - n + 1)):
                    n += len(chunk)
                    if n > info.file_size:
                        raise _Unreadable(f"holds more than the {info.file_size} bytes it declares")
                    yield chunk
        except ZIP_ERRORS as e:
            raise _Unreadable(f"damaged ({_brief(e)})") from None
        if n != info.file_size:
            raise _Unreadable(f"holds {n} bytes, not the {info.file_size} it declares")

    def read(self, name: str, limit: int) -> bytes:
        return b"".join(self.chunks(name, limit))


def _member_name_problem(info: zipfile.ZipInfo) -> str | None:
    raw = info.orig_filename
    if "\x00" in raw:
        return "has a NUL byte in its name"
    if not raw:
        return "has an empty name"
    if raw.endswith(("/", "\\")):
        return "is a directory"
    if raw.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", raw):
        return "has an absolute name"
    if "\\" in raw:
        return "has a backslash in its name"
    if any(part in ("", ".", "..") for part in raw.split("/")):
        return "has an empty, '.' or '..' component"
    if raw in FIXED_MEMBERS or FILE_MEMBER.fullmatch(raw) or TREE_MEMBER.fullmatch(raw):
        return None
    return "is not a member an evidence bundle has"


def _check_no_overlap(path: str, z: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse members whose data overlap each other or the central directory (the overlapping
    zip bomb, and two names for the same bytes)."""
    end_of_data = getattr(z, "start_dir", None)
    spans = sorted(infos, key=lambda i: i.header_offset)
    for i, info in enumerate(spans):
        if info.header_offset < 0:
            raise IntegrityError(f"{path}: member {info.filename!r} starts before the archive")
        try:
            name_len = len(info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437"))
        except UnicodeError:
            raise IntegrityError(f"{path}: member {info.filename!r} has a name that cannot be stored") from None
        end = info.header_offset + 30 + name_len + info.compress_size  # local header without extra
        limit = spans[i + 1].header_offset if i + 1 < len(spans) else end_of_data
        if limit is not None and end > limit:
            other = f"member {spans[i + 1].filename!r}" if i + 1 < len(spans) else "the central directory"
            raise IntegrityError(f"{path}: member {info.filename!r} overlaps {other}")


def _brief(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 200 else text[:200] + "…"


def verify_bundle(path: str, public_key: str | None = None) -> EvidenceReport:
    """Check a bundle offline against `public_key` (else the key it carries, which the report
    says). Raises IntegrityError for a file that is not a well-formed bundle zip; reports every
    other failure as a failed check."""
    rep = EvidenceReport()
    try:
        z = zipfile.ZipFile(path)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise NotFound(f"{path}: {e.strerror}") from None
    except ZIP_ERRORS as e:
        raise IntegrityError(f"{path}: not a readable evidence bundle ({_brief(e)})") from None
    with z:
        bundle = _Bundle(z, path)
        manifest = _read_manifest(bundle, rep)
        if manifest is None:
            return rep
        snap, log, files = manifest["snapshot"], manifest["log"], manifest["files"]
        _verify_members(bundle, rep, files)
        key = _verify_key(bundle, rep, log["origin"], public_key)
        if key is None:
            return rep
        cp = _verify_checkpoint(bundle, rep, key, log)
        _verify_event(bundle, rep, snap, log, cp)
        trees: dict[str, dict | str] = {}
        for f in files:
            _verify_file_bytes(f, bundle, rep)
            _verify_merkle_path(f, snap, bundle, rep, trees)
    return rep


def _strict_json(raw: bytes) -> Any:
    """JSON with no repeated keys and no NaN or Infinity; ValueError otherwise."""

    def pairs(items: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for k, v in items:
            if k in out:
                raise ValueError(f"key {k!r} appears twice")
            out[k] = v
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(raw, object_pairs_hook=pairs, parse_constant=constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _read_manifest(bundle: _Bundle, rep: EvidenceReport) -> dict | None:
    """The manifest, every field checked (check_manifest), or None if it is unusable."""
    what = "manifest.json: readable amber evidence manifest"
    try:
        manifest = _strict_json(bundle.read("manifest.json", MAX_META))
        check_manifest(manifest)
    except _Unreadable as e:
        rep.add(False, what, f"manifest.json: {e}")
        return None
    except _Bad as e:
        rep.add(False, what, str(e))
        return None
    except ValueError as e:  # not JSON, or not UTF-8
        rep.add(False, what, f"not JSON: {_brief(e)}")
        return None
    rep.add(True, what)
    rep.manifest = manifest
    return manifest


def check_manifest(m: Any) -> None:
    """Raise _Bad, naming the field, unless `m` is a manifest as EVIDENCE.md §3 defines it:
    every field present, of its type, within its range, and nothing else."""
    _fields(m, "manifest", {"format", "repository", "created", "snapshot", "files", "log"})
    if m["format"] != FORMAT:
        raise _Bad("format", f"is {_show(m['format'])}, not {FORMAT!r}")
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
        raise _Bad("log.origin", f"is {_show(log['origin'])}, not amber/ and a repository id")
    _int(log["tree_size"], "log.tree_size", 1, (1 << 63) - 1)
    _int(log["seq"], "log.seq", 0, log["tree_size"] - 1)
    _hex(log["leaf_hash"], "log.leaf_hash")
    _list(log["inclusion_proof"], "log.inclusion_proof", MAX_PROOF)
    for i, p in enumerate(log["inclusion_proof"]):
        try:
            ok = isinstance(p, str) and len(base64.b64decode(p, validate=True)) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise _Bad(f"log.inclusion_proof[{i}]", "is not the base64 of 32 bytes")
    files = m["files"]
    _list(files, "files", MAX_MEMBERS)
    if not files:
        raise _Bad("files", "is empty")
    for n, f in enumerate(files):
        where = f"files[{n}]"
        _fields(f, where, {"path", "member", "size", "sha256", "mode", "uid", "gid", "mtime_ns", "merkle_path"})
        if f["member"] != f"files/{n}":
            raise _Bad(f"{where}.member", f"is {_show(f['member'])}, not 'files/{n}'")
        parts = _path(f["path"], f"{where}.path")
        _int(f["size"], f"{where}.size", 0, MAX_MEMBER)
        _hex(f["sha256"], f"{where}.sha256")
        _int(f["mode"], f"{where}.mode", 0, 0o7777)
        _int(f["uid"], f"{where}.uid", 0, (1 << 32) - 1)
        _int(f["gid"], f"{where}.gid", 0, (1 << 32) - 1)
        _int(f["mtime_ns"], f"{where}.mtime_ns", -(1 << 63), (1 << 63) - 1)
        _list(f["merkle_path"], f"{where}.merkle_path", len(parts))
        if len(f["merkle_path"]) != len(parts):
            raise _Bad(f"{where}.merkle_path", f"has {len(f['merkle_path'])} digests for {len(parts)} path components")
        for i, d in enumerate(f["merkle_path"]):
            _hex(d, f"{where}.merkle_path[{i}]")


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:80] + "…"


def _fields(obj: Any, where: str, names: set[str]) -> None:
    if not isinstance(obj, dict):
        raise _Bad(where, "is not an object")
    missing = sorted(names - obj.keys())
    if missing:
        raise _Bad(where, f"lacks {', '.join(missing)}")
    extra = sorted(obj.keys() - names)
    if extra:
        raise _Bad(where, f"has unknown field(s) {', '.join(map(_show, extra[:5]))}")


def _hex(v: Any, where: str, pattern: re.Pattern = HEX64, digits: int = 64) -> None:
    if not isinstance(v, str) or not pattern.fullmatch(v):
        raise _Bad(where, f"is {_show(v)}, not {digits} lowercase hex digits")


def _int(v: Any, where: str, lo: int, hi: int) -> None:
    if type(v) is not int or not lo <= v <= hi:
        raise _Bad(where, f"is {_show(v)}, not an integer from {lo} to {hi}")


def _text(v: Any, where: str, limit: int = MAX_TEXT) -> None:
    if not isinstance(v, str) or len(v) > limit:
        raise _Bad(where, f"is {_show(v)}, not a string of at most {limit} characters")


def _list(v: Any, where: str, limit: int) -> None:
    if not isinstance(v, list) or len(v) > limit:
        raise _Bad(where, f"is not a list of at most {limit} items")


def _time(v: Any, where: str) -> None:
    _text(v, where, 64)
    try:
        from_iso(v)
    except (ValueError, OverflowError):
        raise _Bad(where, f"is {_show(v)}, not an ISO 8601 time") from None


def _path(v: Any, where: str) -> list[str]:
    """The components of an absolute path inside the snapshot."""
    _text(v, where, MAX_PATH)
    if not v.startswith("/"):
        raise _Bad(where, f"is {_show(v)}, not an absolute path")
    parts = [p for p in v.split("/") if p]
    if not parts:
        raise _Bad(where, "names no file")
    for p in parts:
        if not treefmt.valid_name(p):
            raise _Bad(where, f"has the component {_show(p)}, which is not a valid name")
    return parts


def _verify_members(bundle: _Bundle, rep: EvidenceReport, files: list[dict]) -> None:
    """The bundle holds only the members the manifest accounts for."""
    listed = set(FIXED_MEMBERS) | {f["member"] for f in files}
    listed |= {f"trees/{d}.json" for f in files for d in f["merkle_path"]}
    extra = sorted(set(bundle.infos) - listed)
    more = f" and {len(extra) - 10} more" if len(extra) > 10 else ""
    rep.add(not extra, "members: only those the manifest lists", "unlisted: " + ", ".join(extra[:10]) + more)


def _verify_key(bundle: _Bundle, rep: EvidenceReport, origin: str, public_key: str | None):
    """The key: the one given, which the bundle's own copy must match. (name, public, whether
    it names the manifest's log) or None."""
    try:
        raw_key = bundle.read("public-key.txt", MAX_KEY)
        bundle_key = raw_key.decode("utf-8", errors="replace").strip()
        key_why = None
    except _Unreadable as e:
        bundle_key, key_why = "", f"public-key.txt: {e}"
    key_text = public_key
    if key_text is None:
        key_text = bundle_key
        rep.key_from_bundle = True
    repository = rep.manifest.get("repository")
    try:
        name, public = cpfmt.parse_verifier_key(key_text)
    except CheckpointError as e:
        rep.add(False, f"public key: {e}", key_why if rep.key_from_bundle else None)
        return None
    names_log = rep.add(
        name == origin and origin == f"amber/{repository}",
        f"public key: names the log {origin} of repository {repository}",
        f"the key is for {name!r}",
    )
    if public_key is not None:
        try:
            same = cpfmt.parse_verifier_key(bundle_key) == (name, public)
        except CheckpointError:
            same = False
        rep.add(same, "public-key.txt: the bundle names the same key", key_why)
    return name, public, names_log


def _verify_checkpoint(bundle: _Bundle, rep: EvidenceReport, key, log: dict):
    """The signed checkpoint, or None if it does not verify."""
    name, public, names_log = key
    origin = log["origin"]
    try:
        note = bundle.read("checkpoint.txt", cpfmt.MAX_NOTE)
    except _Unreadable as e:
        rep.add(False, f"checkpoint.txt: {e}")
        return None
    try:
        cp = cpfmt.verify(note, name, public)
    except CheckpointError as e:
        rep.add(False, f"checkpoint.txt: {e}")
        return None
    ok = rep.add(
        cp.origin == origin and cp.size == log["tree_size"],
        f"checkpoint.txt: signed checkpoint of {cp.size} entries for {cp.origin}",
        f"the manifest claims {log['tree_size']} entries for {origin}",
    )
    rep.signer_verified = ok and names_log and not rep.key_from_bundle
    return cp


def _verify_event(bundle: _Bundle, rep: EvidenceReport, snap: dict, log: dict, cp) -> None:
    """The snapshot's event and its inclusion in the log."""
    what = (
        "event.json: the snapshot's audit-log event, naming its id, tree, content root, time, "
        "host, user, paths and tags as the manifest does"
    )
    raw_event = None
    event = None
    why = None
    try:
        raw_event = bundle.read("event.json", MAX_META)
        event = _strict_json(raw_event)
    except _Unreadable as e:
        why = f"event.json: {e}"
    except ValueError as e:
        why = f"not JSON: {_brief(e)}"
    ok = isinstance(event, dict) and event.get("type") == "snapshot" and event.get("snapshot") == snap["id"]
    details = event.get("details") if isinstance(event, dict) else None
    ok = (
        ok
        and isinstance(details, dict)
        and all(
            details.get(k) == snap[k] for k in ("content_root", "tree", "time", "hostname", "username", "paths", "tags")
        )
    )
    rep.add(ok, what, why)
    if raw_event is None or cp is None:
        return
    proof = [base64.b64decode(p, validate=True) for p in log["inclusion_proof"]]  # checked with the manifest
    leaf = merkle.leaf_hash(raw_event)
    included = f"event.json: included in the signed log at position {log['seq']}"
    try:
        merkle.verify_inclusion(leaf, log["seq"], cp.size, proof, cp.root)
    except (merkle.ProofError, ValueError) as e:
        rep.add(False, f"event.json: inclusion proof fails ({e})")
        return
    seq = event.get("seq") if isinstance(event, dict) else None
    ok = type(seq) is int and seq == log["seq"] and log["leaf_hash"] == leaf.hex()
    rep.add(ok, included, "the event or the manifest names another position or leaf")


def _verify_file_bytes(f: dict, bundle: _Bundle, rep: EvidenceReport) -> None:
    """The member's size, from its headers before a byte is read, then its bytes' SHA-256."""
    member, size, sha = f["member"], f["size"], f["sha256"]
    why = bundle.problem(member, MAX_MEMBER)
    info = bundle.infos.get(member)
    if why is None and info is not None and info.file_size != size:
        why = f"declares {info.file_size} bytes, the manifest {size}"
    if why is None:
        h = hashlib.sha256()
        try:
            for chunk in bundle.chunks(member, size):
                h.update(chunk)
            if h.hexdigest() != sha:
                why = f"its SHA-256 is {h.hexdigest()[:16]}…"
        except _Unreadable as e:
            why = str(e)
    rep.add(why is None, f"{member} ({f['path']}): SHA-256 {sha[:16]}… and size {size}", why)


def _tree(bundle: _Bundle, digest: str, cache: dict[str, dict | str]) -> dict | str:
    """The nodes by name of the tree `trees/<digest>.json`, or why it is unusable."""
    if digest not in cache:
        name = f"trees/{digest}.json"
        result: dict | str
        try:
            raw = bundle.read(name, MAX_META)
            if treefmt.digest(raw) != digest:
                result = f"{name}: its bytes do not hash to its name"
            else:
                result = {n["name"]: n for n in treefmt.decode(raw, name)}
        except _Unreadable as e:
            result = f"{name}: {e}"
        except IntegrityError as e:
            result = str(e)
        cache[digest] = result
    return cache[digest]


def _verify_merkle_path(f: dict, snap: dict, bundle: _Bundle, rep: EvidenceReport, trees: dict) -> None:
    parts = [p for p in f["path"].split("/") if p]
    digests = f["merkle_path"]
    why = None
    if digests[0] != snap["content_root"]:
        why = "it does not start at the content root"
    for i, digest in enumerate(digests if why is None else []):
        nodes = _tree(bundle, digest, trees)
        if isinstance(nodes, str):
            why = nodes
            break
        node = nodes.get(parts[i])
        if node is None:
            why = f"trees/{digest}.json has no node {parts[i]!r}"
        elif i < len(parts) - 1:
            if node.get("type") != "dir" or node.get("digest") != digests[i + 1]:
                why = f"{parts[i]!r} in trees/{digest}.json is not the folder of the next digest"
        elif node.get("type") != "file" or not all(
            _same(node.get(k), f[k]) for k in ("sha256", "size", "mode", "uid", "gid", "mtime_ns")
        ):
            why = f"{parts[i]!r} in trees/{digest}.json is not a file with the manifest's metadata"
        if why is not None:
            break
    rep.add(
        why is None,
        f"{f['member']} ({f['path']}): Merkle path from the file's metadata and SHA-256 to the "
        f"snapshot's content root {snap['content_root'][:16]}…",
        why,
    )


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
