"""Evidence bundles (library): exported from a real repository, verified offline with nothing
but the log's public key, and refused, naming the part, when any member is changed,
removed, swollen, or signed by another repository."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from amber import evidence
from amber.errors import IntegrityError, NotFound, UsageError

from audit_helpers import backup, flip, init_repo, positions, rand, rezip, write, zip_members

UNICODE_DIR = "dossier é — 日本語"
UNICODE_FILE = "ünïcødé ✓ файл.txt"


@pytest.fixture
def src(tmp_path):
    root = tmp_path / "src"
    write(root / UNICODE_DIR / UNICODE_FILE, "contenu signé ✓\n".encode())
    write(root / "big.bin", rand(1_300_000, "big"))  # more than one chunk
    write(root / "small.txt", b"small\n")
    return root


@pytest.fixture
def bundle(repo, repo_path, src, tmp_path):
    """A bundle of two files of the first of two snapshots, exported after more events."""
    snap = backup(repo, src)
    write(src / "later.txt", b"later\n")
    backup(repo, src)
    repo.hold(snap, "matter 7")
    paths = [f"{src}/{UNICODE_DIR}/{UNICODE_FILE}", f"{src}/big.bin"]
    out = tmp_path / "evidence.zip"
    manifest = evidence.export(repo, snap, paths, str(out))
    return {
        "repo": repo,
        "path": repo_path,
        "snap": snap,
        "paths": paths,
        "file": out,
        "vkey": repo.audit.vkey(),
        "manifest": manifest,
        "src": src,
    }


def failures(rep) -> list[str]:
    return rep.failures()


def names(rep, member: str, manifest: dict) -> bool:
    """Whether a failing check names `member`, or for a tree the file whose path it is on."""
    fails = failures(rep)
    if member.startswith("trees/"):
        digest = member[len("trees/") : -len(".json")]
        concerned = [f"{f['member']} ({f['path']})" for f in manifest["files"] if digest in f["merkle_path"]]
        assert concerned, member
        return any(c in x for x in fails for c in concerned)
    if member == "public-key.txt":
        return any("public-key.txt" in x or x.startswith("public key") for x in fails)
    return any(member in x for x in fails)


# -- a genuine bundle ---------------------------------------------------------------------


def test_a_bundle_verifies_offline_with_the_repository_gone(bundle, src):
    m = bundle["manifest"]
    members = zip_members(bundle["file"])
    assert members["files/0"] == (src / UNICODE_DIR / UNICODE_FILE).read_bytes()
    assert members["files/1"] == (src / "big.bin").read_bytes()
    shutil.rmtree(bundle["path"])  # no repository, no password, no cache needed
    shutil.rmtree(os.environ["XDG_CACHE_HOME"], ignore_errors=True)
    rep = evidence.verify_bundle(str(bundle["file"]), bundle["vkey"])
    assert rep.ok, failures(rep)
    assert not rep.key_from_bundle
    assert rep.manifest == json.loads(members["manifest.json"]) == m
    assert [f["path"] for f in m["files"]] == bundle["paths"]
    assert m["snapshot"]["id"] == bundle["snap"].id and m["snapshot"]["content_root"] == bundle["snap"].content_root
    assert m["log"]["tree_size"] > m["log"]["seq"] + 1, "the checkpoint is of a longer log than the event"
    checked = " | ".join(what for _ok, what in rep.checks)
    for part in ("manifest.json", "public key", "checkpoint.txt", "event.json", "files/0", "files/1"):
        assert part in checked


def test_without_a_key_the_bundle_key_is_used_and_said(bundle):
    rep = evidence.verify_bundle(str(bundle["file"]))
    assert rep.ok, failures(rep)
    assert rep.key_from_bundle


def test_a_third_party_verifier_written_from_the_docs_accepts_it(bundle):
    shutil.rmtree(bundle["path"])
    third_party_verify(str(bundle["file"]), bundle["vkey"])
    bad = bundle["file"].with_name("bad.zip")
    rezip(bundle["file"], bad, change={"files/1": lambda d: flip(d, 1000)})
    with pytest.raises(AssertionError):
        third_party_verify(str(bad), bundle["vkey"])


def test_non_utf8_names_travel_through_a_bundle(repo, tmp_path):
    src = tmp_path / "src"
    raw_name = os.path.join(os.fsencode(src), b"caf\xe9-\xff.txt")
    write(raw_name, b"latin-1 name\n")
    snap = backup(repo, src)
    path = os.fsdecode(raw_name)
    out = tmp_path / "b.zip"
    evidence.export(repo, snap, [path], str(out))
    rep = evidence.verify_bundle(str(out), repo.audit.vkey())
    assert rep.ok, failures(rep)
    assert rep.manifest["files"][0]["path"] == path


def test_export_refuses_what_is_not_a_file_of_the_snapshot(bundle, tmp_path):
    repo, snap, src = bundle["repo"], bundle["snap"], bundle["src"]
    with pytest.raises(NotFound):
        evidence.export(repo, snap, [f"{src}/no-such-file"], str(tmp_path / "x.zip"))
    with pytest.raises(UsageError):
        evidence.export(repo, snap, [f"{src}/{UNICODE_DIR}"], str(tmp_path / "y.zip"))


# -- tampering ------------------------------------------------------------------------------


def member_kinds():
    return ["manifest.json", "files/0", "files/1", "trees", "event.json", "checkpoint.txt", "public-key.txt"]


@pytest.mark.parametrize("kind", member_kinds())
def test_every_member_with_a_flipped_byte_fails_naming_it(bundle, tmp_path, kind):
    members = zip_members(bundle["file"])
    targets = sorted(n for n in members if n.startswith("trees/")) if kind == "trees" else [kind]
    tried = 0
    for t, name in enumerate(targets):
        data = members[name]
        if name == "manifest.json":
            # a byte inside the JSON may land in a field nothing can prove (the export time);
            # what each claim is checked against is tested one claim at a time below
            spots = [0, len(data) - 1]
        elif name == "checkpoint.txt":
            # the signature's last base64 character carries two padding bits decoders ignore
            spots = positions(len(data), seed=t, skip={len(data) - 3})
        elif name == "public-key.txt":
            spots = positions(len(data) - 1, seed=t)  # the trailing newline is not part of the key
        else:
            spots = positions(len(data), seed=t)
        for pos in spots:
            out = tmp_path / f"flip-{t}-{pos}.zip"
            rezip(bundle["file"], out, change={name: lambda d, p=pos: flip(d, p)})
            for key in (None, bundle["vkey"]) if name == "public-key.txt" else (bundle["vkey"],):
                rep = evidence.verify_bundle(str(out), key)
                assert not rep.ok, f"{name} byte {pos} flipped (key {'given' if key else 'from bundle'}) verified"
                assert names(rep, name, bundle["manifest"]), f"{name} byte {pos}: {failures(rep)}"
            tried += 1
    assert tried >= 2


@pytest.mark.parametrize("kind", member_kinds())
def test_a_removed_member_fails_naming_it(bundle, tmp_path, kind):
    members = zip_members(bundle["file"])
    name = sorted(n for n in members if n.startswith("trees/"))[-1] if kind == "trees" else kind
    out = tmp_path / "removed.zip"
    rezip(bundle["file"], out, remove={name})
    for key in (None, bundle["vkey"]) if name == "public-key.txt" else (bundle["vkey"],):
        rep = evidence.verify_bundle(str(out), key)
        assert not rep.ok, f"{name} removed, and the bundle verified (key {'given' if key else 'from bundle'})"
        assert names(rep, name, bundle["manifest"]), failures(rep)


@pytest.mark.parametrize("kind", ["manifest.json", "files/1", "event.json", "checkpoint.txt", "trees"])
def test_a_member_claiming_a_huge_size_is_refused_quickly(bundle, tmp_path, kind):
    members = zip_members(bundle["file"])
    name = sorted(n for n in members if n.startswith("trees/"))[0] if kind == "trees" else kind
    out = tmp_path / "bomb.zip"
    rezip(bundle["file"], out, claim_size={name: 1 << 45})
    with zipfile.ZipFile(out) as z:
        assert z.getinfo(name).file_size == 1 << 45
    t0 = time.monotonic()
    rep = evidence.verify_bundle(str(out), bundle["vkey"])
    assert time.monotonic() - t0 < 10
    assert not rep.ok
    assert names(rep, name, bundle["manifest"]), failures(rep)


def _set(path: str, value):
    def change(m: dict) -> None:
        obj = m
        *parents, last = path.split(".")
        for p in parents:
            obj = obj[int(p)] if isinstance(obj, list) else obj[p]
        if isinstance(obj, list):
            obj[int(last)] = value(obj[int(last)])
        else:
            obj[last] = value(obj[last])

    return change


OTHER_HEX = "ab" * 32

CLAIMS = {
    # what the snapshot was: bound to the logged event
    "snapshot.id": _set("snapshot.id", lambda v: OTHER_HEX),
    "snapshot.content_root": _set("snapshot.content_root", lambda v: OTHER_HEX),
    "snapshot.tree": _set("snapshot.tree", lambda v: OTHER_HEX),
    "snapshot.time": _set("snapshot.time", lambda v: "2001-09-09T01:46:40Z"),
    "snapshot.hostname": _set("snapshot.hostname", lambda v: v + "-elsewhere"),
    "snapshot.username": _set("snapshot.username", lambda v: "mallory"),
    "snapshot.paths": _set("snapshot.paths", lambda v: ["/somewhere/else"]),
    "snapshot.tags": _set("snapshot.tags", lambda v: v + ["forged"]),
    "repository": _set("repository", lambda v: "0" * 32),
    # what each file was: bound to the tree nodes on its Merkle path
    "files.0.sha256": _set("files.0.sha256", lambda v: hashlib.sha256(b"other").hexdigest()),
    "files.0.size": _set("files.0.size", lambda v: v + 1),
    "files.0.mode": _set("files.0.mode", lambda v: v ^ 0o002),
    "files.0.mtime_ns": _set("files.0.mtime_ns", lambda v: v + 1),
    "files.0.uid": _set("files.0.uid", lambda v: v + 1000),
    "files.0.gid": _set("files.0.gid", lambda v: v + 1000),
    "files.0.path": _set("files.0.path", lambda v: v[:-4] + "-renamed.txt"),
    "files.0.member": _set("files.0.member", lambda v: "files/1"),
    "files.1.merkle_path": _set("files.1.merkle_path", lambda v: v[:-1] + [OTHER_HEX]),
    # where the event is in the log: bound to the signed checkpoint
    "log.seq": _set("log.seq", lambda v: v + 1),
    "log.tree_size": _set("log.tree_size", lambda v: v + 1),
    "log.leaf_hash": _set("log.leaf_hash", lambda v: OTHER_HEX),
    "log.inclusion_proof": _set("log.inclusion_proof.0", lambda v: base64.b64encode(bytes(32)).decode()),
    "log.origin": _set("log.origin", lambda v: v + "x"),
    "format": _set("format", lambda v: "amber-evidence-0"),
}


@pytest.mark.parametrize("claim", sorted(CLAIMS))
def test_every_claim_of_the_manifest_is_checked(bundle, tmp_path, claim):
    """The manifest is what a reader of the bundle is told. A changed claim must fail; only
    `created`, the time the bundle was made, is a claim nothing can prove (see EVIDENCE.md)."""

    def tamper(raw: bytes) -> bytes:
        m = json.loads(raw)
        CLAIMS[claim](m)
        return json.dumps(m, indent=2, sort_keys=True).encode()

    out = tmp_path / "claim.zip"
    rezip(bundle["file"], out, change={"manifest.json": tamper})
    assert json.loads(zip_members(out)["manifest.json"]) != bundle["manifest"]
    rep = evidence.verify_bundle(str(out), bundle["vkey"])
    assert not rep.ok, f"manifest claim {claim} changed, and the bundle verified"
    if claim.startswith("files."):
        f = bundle["manifest"]["files"][int(claim.split(".")[1])]
        assert any(f["member"] in x or f["path"] in x for x in failures(rep)), failures(rep)


def test_a_bundle_of_another_repository_fails_with_this_repositorys_key(bundle, tmp_path):
    other = init_repo(tmp_path / "other-repo")
    src = tmp_path / "other-src"
    write(src / "x.txt", b"other\n")
    snap = backup(other, src)
    out = tmp_path / "other.zip"
    evidence.export(other, snap, [f"{src}/x.txt"], str(out))
    assert evidence.verify_bundle(str(out), other.audit.vkey()).ok
    rep = evidence.verify_bundle(str(out), bundle["vkey"])
    assert not rep.ok
    fails = failures(rep)
    assert any(f.startswith("public key") for f in fails) and any(f.startswith("checkpoint.txt") for f in fails), fails


def test_a_checkpoint_of_another_repository_swapped_in_fails(bundle, tmp_path):
    other = init_repo(tmp_path / "other-repo")
    note = other.audit.latest_checkpoint()
    out = tmp_path / "swapped.zip"
    rezip(bundle["file"], out, change={"checkpoint.txt": lambda d: note})
    rep = evidence.verify_bundle(str(out), bundle["vkey"])
    assert not rep.ok and any(f.startswith("checkpoint.txt") for f in failures(rep)), failures(rep)


def test_a_file_that_is_not_a_bundle_is_an_integrity_error(tmp_path, bundle):
    for content in (b"", b"PK\x03\x04 not really", zip_members(bundle["file"])["manifest.json"]):
        p = tmp_path / "not-a-bundle.zip"
        p.write_bytes(content)
        with pytest.raises(IntegrityError):
            evidence.verify_bundle(str(p), bundle["vkey"])


def test_a_malformed_public_key_fails_cleanly(bundle):
    for key in ("", "nonsense", bundle["vkey"][:-4], bundle["vkey"].replace("+", "-", 1)):
        rep = evidence.verify_bundle(str(bundle["file"]), key)
        assert not rep.ok and any(f.startswith("public key") for f in failures(rep)), (key, failures(rep))


# -- a verifier written from docs/EVIDENCE.md alone -------------------------------------------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2."""
    assert 0 <= index < size
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        assert sn != 0, "proof too long"
        if fn & 1 or fn == sn:
            r = _h(b"\x01" + p + r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _h(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    assert sn == 0, "proof too short"
    return r


def third_party_verify(path: str, vkey: str) -> None:
    """Raises AssertionError (or a decoding error) unless the bundle proves its files.
    Uses only zipfile, json, hashlib, base64 and an Ed25519 implementation."""
    with zipfile.ZipFile(path) as z:
        m = json.loads(z.read("manifest.json"))
        assert m["format"] == "amber-evidence-1"
        # 1. the verifier key: <name>+<key hash hex>+<base64(0x01 || public key)>
        name, khash, b64 = vkey.strip().split("+", 2)
        raw_key = base64.b64decode(b64, validate=True)
        assert len(raw_key) == 33 and raw_key[0] == 1
        assert _h(name.encode() + b"\n" + raw_key)[:4].hex() == khash
        public = Ed25519PublicKey.from_public_bytes(raw_key[1:])
        # 2. the checkpoint: a signed note
        note = z.read("checkpoint.txt").decode("utf-8")
        text, sig_block = note.split("\n\n", 1)
        body = (text + "\n").encode()
        origin, size, root_b64 = text.split("\n")[:3]
        signed = False
        for line in sig_block.rstrip("\n").split("\n"):
            dash, signer, sig_b64 = line.split(" ")
            sig = base64.b64decode(sig_b64, validate=True)
            if dash == "\u2014" and signer == name and sig[:4].hex() == khash:
                public.verify(sig[4:], body)  # raises InvalidSignature
                signed = True
        assert signed
        assert origin == name == m["log"]["origin"]
        assert size.isascii() and size.isdigit() and int(size) == m["log"]["tree_size"]
        root = base64.b64decode(root_b64, validate=True)
        # 3. the snapshot's event is a leaf of that tree
        raw_event = z.read("event.json")
        leaf = _h(b"\x00" + raw_event)
        proof = [base64.b64decode(p, validate=True) for p in m["log"]["inclusion_proof"]]
        assert root_from_inclusion(m["log"]["seq"], int(size), leaf, proof) == root
        ev = json.loads(raw_event)
        snap = m["snapshot"]
        assert ev["type"] == "snapshot" and ev["snapshot"] == snap["id"] and ev["seq"] == m["log"]["seq"]
        for k in ("content_root", "tree", "time", "hostname", "username", "paths", "tags"):
            assert ev["details"][k] == snap[k], k
        # 4. each file: its bytes, then tree by tree from the content root down to its node
        for f in m["files"]:
            data = z.read(f["member"])
            assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["size"]
            parts = [p for p in f["path"].split("/") if p]
            digests = f["merkle_path"]
            assert len(digests) == len(parts) and digests[0] == snap["content_root"]
            for i, (digest, part) in enumerate(zip(digests, parts)):
                raw_tree = z.read(f"trees/{digest}.json")
                assert hashlib.sha256(b"amber-tree-v1\n" + raw_tree).hexdigest() == digest
                node = next(n for n in json.loads(raw_tree)["nodes"] if n["name"] == part)
                if i < len(parts) - 1:
                    assert node["type"] == "dir" and node["digest"] == digests[i + 1]
                else:
                    assert node["type"] == "file"
                    for k in ("sha256", "size", "mode", "mtime_ns", "uid", "gid"):
                        assert node[k] == f[k], k


def test_a_checkpoint_member_with_non_ascii_text_fails_cleanly(bundle, tmp_path):
    """Text where base64 belongs must be a failed check, not an exception out of verify_bundle."""

    def tamper(note: bytes) -> bytes:
        lines = note.decode().split("\n")
        lines[2] = "\u00e9" + lines[2][1:]
        return "\n".join(lines).encode()

    out = tmp_path / "non-ascii.zip"
    rezip(bundle["file"], out, change={"checkpoint.txt": tamper})
    rep = evidence.verify_bundle(str(out), bundle["vkey"])
    assert not rep.ok and any(f.startswith("checkpoint.txt") for f in failures(rep)), failures(rep)
