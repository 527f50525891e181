"""Verifying a bundle offline: trusting nothing in it but the public key given."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

from ..audit import checkpoint as cpfmt
from ..audit import merkle, tsa
from ..audit.witness import parse_server_key
from ..errors import CheckpointError, IntegrityError, NotFound, UsageError
from ..format import tree as treefmt
from .bundle import Bad, Bundle, Unreadable, brief
from .copychain import verify_copy_proof
from .limits import COPY_MEMBER, FIXED_MEMBERS, MAX_KEY, MAX_MEMBER, MAX_META, TIMESTAMP_MEMBER, ZIP_ERRORS
from .manifest import check_manifest


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
    timestamps: list = field(default_factory=list)  # each token: member, gen_time, signer, verified
    copy_of: dict = field(default_factory=dict)  # a copied snapshot: the source repository and snapshot
    source_signer_verified: bool = False  # the source log's checkpoint checked with a key the caller gave

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


def verify_bundle(
    path: str,
    public_key: str | None = None,
    witness_keys: tuple[str, ...] = (),
    tsa_certs: tuple[bytes, ...] = (),
    source_public_key: str | None = None,
) -> EvidenceReport:
    """Check a bundle offline against `public_key` (else the key it carries, which the report
    says), that its checkpoint is cosigned by each `amber serve` witness key given
    (`ed25519:<base64>`, AUDIT-LOG.md §14), and that its RFC 3161 timestamps are of that
    checkpoint and signed by one of the TSA certificates given (PEM, each the TSA's own first;
    §14.6). A bundle of a copied snapshot also proves its chain back to the original: the
    `copy` event in this log, and the source's snapshot event in the source's log, signed by
    `source_public_key` when given (else by the key the copy event names, which the report
    says). Raises IntegrityError for a file that is not a well-formed bundle zip, UsageError
    for a certificate that is not PEM; reports every other failure as a failed check."""
    chains = [tsa.load_chain(pem, "--tsa-cert") for pem in tsa_certs]
    rep = EvidenceReport()
    try:
        z = zipfile.ZipFile(path)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise NotFound(f"{path}: {e.strerror}") from None
    except ZIP_ERRORS as e:
        raise IntegrityError(f"{path}: not a readable evidence bundle ({brief(e)})") from None
    with z:
        bundle = Bundle(z, path)
        manifest = _read_manifest(bundle, rep)
        if manifest is None:
            return rep
        snap, log, files = manifest["snapshot"], manifest["log"], manifest["files"]
        _verify_members(bundle, rep, files)
        key = _verify_key(bundle, rep, log["origin"], public_key)
        if key is None:
            return rep
        cp = _verify_checkpoint(bundle, rep, key, log)
        for witness_key in witness_keys:
            _verify_cosignature(bundle, rep, witness_key, cp)
        _verify_timestamps(bundle, rep, key[0] if cp is not None else None, chains)
        _verify_event(bundle, rep, snap, log, cp)
        if "copy" in manifest:
            _verify_copy(bundle, rep, manifest, cp, source_public_key)
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


def _read_manifest(bundle: Bundle, rep: EvidenceReport) -> dict | None:
    """The manifest, every field checked (check_manifest), or None if it is unusable."""
    what = "manifest.json: readable amber evidence manifest"
    try:
        manifest = _strict_json(bundle.read("manifest.json", MAX_META))
        check_manifest(manifest)
    except Unreadable as e:
        rep.add(False, what, f"manifest.json: {e}")
        return None
    except Bad as e:
        rep.add(False, what, str(e))
        return None
    except ValueError as e:  # not JSON, or not UTF-8
        rep.add(False, what, f"not JSON: {brief(e)}")
        return None
    rep.add(True, what)
    rep.manifest = manifest
    return manifest


def _verify_members(bundle: Bundle, rep: EvidenceReport, files: list[dict]) -> None:
    """The bundle holds only the members the manifest accounts for."""
    listed = set(FIXED_MEMBERS) | {f["member"] for f in files}
    listed |= {f"trees/{d}.json" for f in files for d in f["merkle_path"]}
    listed |= {name for name in bundle.infos if TIMESTAMP_MEMBER.fullmatch(name)}
    if "copy" in rep.manifest:
        listed.add(COPY_MEMBER)
    extra = sorted(set(bundle.infos) - listed)
    more = f" and {len(extra) - 10} more" if len(extra) > 10 else ""
    rep.add(not extra, "members: only those the manifest lists", "unlisted: " + ", ".join(extra[:10]) + more)


def _verify_key(bundle: Bundle, rep: EvidenceReport, origin: str, public_key: str | None):
    """The key: the one given, which the bundle's own copy must match. (name, public, whether
    it names the manifest's log) or None."""
    try:
        raw_key = bundle.read("public-key.txt", MAX_KEY)
        bundle_key = raw_key.decode("utf-8", errors="replace").strip()
        key_why = None
    except Unreadable as e:
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


def _verify_checkpoint(bundle: Bundle, rep: EvidenceReport, key, log: dict):
    """The signed checkpoint, or None if it does not verify."""
    name, public, names_log = key
    origin = log["origin"]
    try:
        note = bundle.read("checkpoint.txt", cpfmt.MAX_NOTE)
    except Unreadable as e:
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


def _verify_cosignature(bundle: Bundle, rep: EvidenceReport, witness_key: str, cp) -> None:
    """checkpoint.txt carries a valid cosignature/v1 of `cp` by the witness with this key."""
    what = f"checkpoint.txt: cosigned by the witness key {witness_key}"
    try:
        public = parse_server_key(witness_key)
        note = bundle.read("checkpoint.txt", cpfmt.MAX_NOTE)
        got, _time = cpfmt.verify_cosignature(note, cpfmt.server_witness_name(public), public)
    except (UsageError, CheckpointError, Unreadable) as e:
        rep.add(False, what, str(e))
        return
    rep.add(cp is not None and got == cp, what, "the cosignature is of another checkpoint")


def _verify_timestamps(bundle: Bundle, rep: EvidenceReport, signer: str | None, chains: list[tsa.Chain]) -> None:
    """Each `timestamps/<TSA>.tsr` is an RFC 3161 token of the log's own signed note in
    checkpoint.txt (`signer`: its key name; None when it did not verify), signed by one of the
    TSA `chains` given; without any, the report says what the tokens claim and that no
    trusted certificate was checked. Given certificates and no token is a failure."""
    members = sorted(name for name in bundle.infos if TIMESTAMP_MEMBER.fullmatch(name))
    if chains and not members:
        rep.add(False, "timestamps/: an RFC 3161 timestamp of checkpoint.txt", "the bundle carries none")
    note = _signed_note(bundle, signer) if signer is not None else None
    for member in members:
        what = f"{member}: an RFC 3161 timestamp of checkpoint.txt"
        try:
            token = bundle.read(member, tsa.MAX_TOKEN)
        except Unreadable as e:
            rep.add(False, what, str(e))
            continue
        if note is None:
            rep.add(False, what, "checkpoint.txt does not verify")
            continue
        problems = []
        for chain in chains:
            try:
                stamp = tsa.check(token, note, chain, member)
                break
            except IntegrityError as e:
                problems.append(str(e).removeprefix(f"{member}: "))
        else:
            if chains:
                rep.add(False, what, "; ".join(dict.fromkeys(problems)))
                continue
            try:
                stamp = tsa.inspect(token, note, member)
            except IntegrityError as e:
                rep.add(False, what, str(e).removeprefix(f"{member}: "))
                continue
        verified = bool(chains)
        rep.timestamps.append(
            {"member": member, "gen_time": stamp.gen_time, "signer": stamp.signer, "verified": verified}
        )
        how = "signed by a TSA certificate given" if verified else "NOT checked against a trusted TSA certificate"
        rep.add(True, f"{what}, dated {stamp.gen_time} by {stamp.signer} ({how})")


def _signed_note(bundle: Bundle, signer: str) -> bytes | None:
    """checkpoint.txt as the log's key signed it, without the witnesses' cosignature lines
    after it: the bytes a TSA witness timestamped."""
    try:
        return cpfmt.signed_by(bundle.read("checkpoint.txt", cpfmt.MAX_NOTE), signer)
    except Unreadable:
        return None


def _verify_event(bundle: Bundle, rep: EvidenceReport, snap: dict, log: dict, cp) -> None:
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
    except Unreadable as e:
        why = f"event.json: {e}"
    except ValueError as e:
        why = f"not JSON: {brief(e)}"
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


def _verify_copy(bundle: Bundle, rep: EvidenceReport, m: dict, cp, source_key: str | None) -> None:
    """A copied snapshot: its `copy` event in this log, the source's snapshot event in the
    source's signed log, and the same content root at both ends."""
    copy, snap = m["copy"], m["snapshot"]
    what = f"{COPY_MEMBER}: the snapshot's copy event, included in the signed log at position {copy['seq']}"
    try:
        raw = bundle.read(COPY_MEMBER, MAX_META)
        event = _strict_json(raw)
    except Unreadable as e:
        rep.add(False, what, f"{COPY_MEMBER}: {e}")
        return
    except ValueError as e:
        rep.add(False, what, f"not JSON: {brief(e)}")
        return
    if cp is None:
        return  # the checkpoint failed, and said so
    proof = [base64.b64decode(p, validate=True) for p in copy["inclusion_proof"]]  # checked with the manifest
    leaf = merkle.leaf_hash(raw)
    try:
        merkle.verify_inclusion(leaf, copy["seq"], cp.size, proof, cp.root)
    except (merkle.ProofError, ValueError) as e:
        rep.add(False, what, f"inclusion proof fails ({e})")
        return
    details = event.get("details") if isinstance(event, dict) else None
    ok = (
        isinstance(details, dict)
        and event.get("type") == "copy"
        and event.get("snapshot") == snap["id"]
        and event.get("seq") == copy["seq"]
        and copy["leaf_hash"] == leaf.hex()
        and details.get("content_root") == snap["content_root"]
    )
    if not rep.add(ok, what, "the event is not this snapshot's copy event, or names another content root"):
        return
    assert isinstance(details, dict)
    origin = f"source repository {str(details.get('source_repository'))[:32]}"
    what = f"the original: its snapshot event, proved in the signed log of the {origin}"
    try:
        source_event = verify_copy_proof(details, source_key)
    except IntegrityError as e:
        rep.add(False, what, str(e))
        return
    rep.add(True, what)
    rep.copy_of = {"repository": details["source_repository"], "snapshot": details["source_snapshot"]}
    rep.source_signer_verified = source_key is not None
    same = source_event.get("details", {}).get("content_root") == details.get("source_content_root")
    if not details.get("rechunked"):
        same = same and details.get("source_content_root") == snap["content_root"]
    rep.add(same, "the original's content root is the one the copy carries", "they differ")


def _verify_file_bytes(f: dict, bundle: Bundle, rep: EvidenceReport) -> None:
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
        except Unreadable as e:
            why = str(e)
    rep.add(why is None, f"{member} ({f['path']}): SHA-256 {sha[:16]}… and size {size}", why)


def _tree(bundle: Bundle, digest: str, cache: dict[str, dict | str]) -> dict | str:
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
        except Unreadable as e:
            result = f"{name}: {e}"
        except IntegrityError as e:
            result = str(e)
        cache[digest] = result
    return cache[digest]


def _verify_merkle_path(f: dict, snap: dict, bundle: Bundle, rep: EvidenceReport, trees: dict) -> None:
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
