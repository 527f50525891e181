"""Hostile evidence bundles and repositories, through the real `amber evidence` command.

Every bundle here is built the way an attacker would build it — from a genuine bundle,
with the stdlib's zip writer and, where a signature is needed, a key of their own — and
every refusal is exit 20 naming the member or manifest field, never a traceback. A bundle
that is consistent but checked only against the key it carries itself is exit 21.
"""

from __future__ import annotations

import base64
import json
import warnings
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from amber.audit import checkpoint as cpfmt
from amber.format import layout

from cli_helpers import Amber, environment, write
from sources import open_repo


@pytest.fixture(scope="module")
def world(tmp_path_factory, amber_exe):
    """A repository with two snapshots and a genuine bundle of two files of the first."""
    base = tmp_path_factory.mktemp("evidence-hostile")
    amber = Amber(base / "amber")
    amber.create()
    src = base / "src"
    write(src / "a" / "contract.txt", b"the signed contract\n")
    write(src / "report.txt", b"quarterly numbers\n" * 100)
    amber.s1 = amber.backup(src)["snapshot_id"]
    write(src / "later.txt", b"later\n")
    amber.s2 = amber.backup(src)["snapshot_id"]
    amber.src = src
    amber.files = [str(src / "a" / "contract.txt"), str(src / "report.txt")]
    amber.bundle = base / "evidence.zip"
    amber.run("evidence", "export", amber.s1, *amber.files, "-o", amber.bundle)
    amber.vkey = amber.run("audit", "checkpoint", "--public-key").out.strip()
    return amber


def offline(amber: Amber, tmp_path):
    where = tmp_path / "elsewhere"
    where.mkdir(exist_ok=True)
    env = amber.env(AMBER_PASSWORD=None, AMBER_REPOSITORY=None, HOME=where)
    return {"env": env, "cwd": where}


def verify(amber: Amber, tmp_path, bundle, *args, expect=20):
    return amber.run("evidence", "verify", bundle, *args, expect=expect, **offline(amber, tmp_path))


def verify_json(amber: Amber, tmp_path, bundle, *args, expect=20) -> dict:
    return amber.json("evidence", "verify", bundle, *args, expect=expect, quiet=False, **offline(amber, tmp_path))


def members(path) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(i, z.read(i)) for i in z.infolist()]


def build(dst, entries, *, fix=None) -> None:
    """Write a zip of (name, bytes) entries (duplicates allowed); `fix(zipfile)` may change the
    central directory before it is written."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stdlib warns about duplicate names: that is the attack
        with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, data in entries:
                z.writestr(name, data)
            if fix is not None:
                fix(z)


def genuine(world) -> list[tuple[str, bytes]]:
    return [(i.filename, data) for i, data in members(world.bundle)]


def changed(world, change: dict) -> list[tuple[str, bytes]]:
    """The genuine members, those named in `change` replaced by a function of their bytes."""
    return [(n, change[n](d) if n in change else d) for n, d in genuine(world)]


def manifest_of(world) -> dict:
    return json.loads(dict(genuine(world))["manifest.json"])


# -- 1. the zip's members ---------------------------------------------------------------------


def test_the_genuine_bundle_verifies_and_says_its_signer_is_verified(world, tmp_path):
    r = verify(world, tmp_path, world.bundle, "--public-key", world.vkey, expect=0)
    assert r.out.rstrip().endswith("evidence verified"), r
    doc = verify_json(world, tmp_path, world.bundle, "--public-key", world.vkey, expect=0)
    assert doc["ok"] is True and doc["signer_verified"] is True and doc["key_from_bundle"] is False


@pytest.mark.parametrize("order", ["forged-first", "forged-last"])
def test_a_duplicate_member_is_refused_naming_it(world, tmp_path, order):
    """Two entries named files/0: one reader would hash the first, another extract the last."""
    forged = ("files/0", b"a different contract\n")
    entries = genuine(world)
    entries = [forged, *entries] if order == "forged-first" else [*entries, forged]
    bad = tmp_path / "dup.zip"
    build(bad, entries)
    for key in ((), ("--public-key", world.vkey)):
        r = verify(world, tmp_path, bad, *key)
        assert "files/0" in r.stderr and "more than once" in r.stderr, r
        assert "evidence verified" not in r.out


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("notes.txt", "not a member an evidence bundle has"),
        ("files/", "directory"),
        ("/etc/passwd", "absolute"),
        ("../manifest.json", "'..'"),
        ("trees/../manifest.json", "'..'"),
        ("files//0", "empty"),
        ("files\\0", "backslash"),
        ("files/00", "not a member"),
        ("trees/ABCDEF.json", "not a member"),
    ],
)
def test_a_member_with_an_unexpected_or_unsafe_name_is_refused(world, tmp_path, name, why):
    bad = tmp_path / "extra.zip"
    build(bad, [*genuine(world), (name, b"whatever\n")])
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    assert repr(name) in r.stderr and why in r.stderr, r


@pytest.mark.parametrize("name", ["files/2", "trees/" + "ab" * 32 + ".json"])
def test_a_member_the_manifest_does_not_list_is_refused(world, tmp_path, name):
    bad = tmp_path / "unlisted.zip"
    build(bad, [*genuine(world), (name, b"smuggled\n")])
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    assert name in r.stderr and "unlisted" in r.stderr, r
    doc = verify_json(world, tmp_path, bad, "--public-key", world.vkey)
    assert doc["ok"] is False
    assert any(not c["ok"] and name in c.get("problem", "") for c in doc["checks"]), doc


def test_members_that_overlap_are_refused(world, tmp_path):
    """Two central-directory entries for the same local bytes (the overlapping zip bomb)."""

    def overlap(z):
        z.getinfo("files/1").header_offset = z.getinfo("files/0").header_offset

    bad = tmp_path / "overlap.zip"
    build(bad, genuine(world), fix=overlap)
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    assert "overlaps" in r.stderr and "files/" in r.stderr, r


# -- 2. who signed it ---------------------------------------------------------------------------


def attacker_resigned(world, tmp_path):
    """The genuine bundle with its checkpoint signed again, under the same name, by an attacker's
    key, and public-key.txt naming that key: consistent, but not the repository's signature."""
    m = manifest_of(world)
    origin = m["log"]["origin"]
    key = Ed25519PrivateKey.generate()
    cp, _sigs, _body = cpfmt.parse(dict(genuine(world))["checkpoint.txt"])
    note = cpfmt.sign(cp, origin, key)
    vkey = cpfmt.verifier_key(origin, cpfmt.public_bytes(key))
    bad = tmp_path / "resigned.zip"
    build(bad, changed(world, {"checkpoint.txt": lambda d: note, "public-key.txt": lambda d: (vkey + "\n").encode()}))
    return bad, vkey


def test_a_bundle_resigned_by_an_attacker_without_a_trusted_key_is_exit_21(world, tmp_path):
    bad, _ = attacker_resigned(world, tmp_path)
    r = verify(world, tmp_path, bad, expect=21)
    assert "evidence verified" not in r.out
    assert "signer is unverified" in r.out and "signer is unverified" in r.stderr, r
    assert "--public-key" in r.stderr
    doc = verify_json(world, tmp_path, bad, expect=21)
    assert doc["ok"] is True, "every link is consistent"
    assert doc["signer_verified"] is False and doc["key_from_bundle"] is True


def test_a_genuine_bundle_without_a_trusted_key_is_exit_21_too(world, tmp_path):
    doc = verify_json(world, tmp_path, world.bundle, expect=21)
    assert doc["ok"] is True and doc["signer_verified"] is False


def test_a_bundle_resigned_by_an_attacker_fails_against_the_trusted_key(world, tmp_path):
    bad, attacker_key = attacker_resigned(world, tmp_path)
    r = verify(world, tmp_path, bad, "--public-key", world.vkey, expect=20)
    assert "checkpoint.txt" in r.stderr and "public-key.txt" in r.stderr, r
    doc = verify_json(world, tmp_path, bad, "--public-key", world.vkey, expect=20)
    assert doc["ok"] is False and doc["signer_verified"] is False
    # given the attacker's own key, it is consistent and signed by that key: the user chose it
    verify(world, tmp_path, bad, "--public-key", attacker_key, expect=0)


def test_a_damaged_bundle_without_a_key_is_exit_20_not_21(world, tmp_path):
    bad = tmp_path / "damaged.zip"
    build(bad, changed(world, {"files/0": lambda d: d + b"x"}))
    r = verify(world, tmp_path, bad, expect=20)
    assert "files/0" in r.stderr


# -- 3. sizes, bombs and damaged zips -------------------------------------------------------------


def test_a_member_whose_size_differs_from_the_manifest_is_refused_before_reading(world, tmp_path):
    def claim(z):
        z.getinfo("files/1").file_size += 1  # the central directory lies about the size

    bad = tmp_path / "size.zip"
    build(bad, genuine(world), fix=claim)
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    assert "files/1" in r.stderr and "the manifest" in r.stderr, r


def test_a_zip_bomb_is_refused_from_its_headers(world, tmp_path):
    """A member and its manifest entry both claiming 32 GiB from a few hundred bytes."""
    huge = 32 << 30

    def bomb_manifest(raw: bytes) -> bytes:
        m = json.loads(raw)
        m["files"][1]["size"] = huge
        return json.dumps(m).encode()

    def claim(z):
        z.getinfo("files/1").file_size = huge

    bad = tmp_path / "bomb.zip"
    build(bad, changed(world, {"manifest.json": bomb_manifest}), fix=claim)
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    assert "files/1" in r.stderr and "zip bomb" in r.stderr, r


def test_a_stored_member_whose_sizes_differ_is_refused(world, tmp_path):
    def stored_lie(z):
        info = z.getinfo("manifest.json")
        info.compress_type = zipfile.ZIP_STORED  # its bytes are deflated: they cannot be stored as-is

    bad = tmp_path / "stored.zip"
    build(bad, genuine(world), fix=stored_lie)
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    assert "manifest.json" in r.stderr, r


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_a_truncated_zip_is_exit_20_with_a_clear_message(world, tmp_path, keep):
    data = world.bundle.read_bytes()
    bad = tmp_path / "truncated.zip"
    bad.write_bytes(data[: int(len(data) * keep)])
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    assert "not a readable evidence bundle" in r.stderr, r


def test_a_corrupt_member_stream_is_exit_20_naming_it(world, tmp_path):
    data = bytearray(world.bundle.read_bytes())
    with zipfile.ZipFile(world.bundle) as z:
        info = z.getinfo("files/1")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 2, start + info.compress_size - 2, 7):
        data[i] ^= 0x5A
    bad = tmp_path / "corrupt.zip"
    bad.write_bytes(bytes(data))
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    assert "files/1" in r.stderr and "damaged" in r.stderr, r


# -- 5. every manifest field ----------------------------------------------------------------------


def _edit(path: str, value):
    def change(m):
        obj = m
        *parents, last = path.split(".")
        for p in parents:
            obj = obj[int(p)] if isinstance(obj, list) else obj[p]
        if value is DELETE:
            del obj[last]
        else:
            obj[int(last) if isinstance(obj, list) else last] = value

    return change


DELETE = object()

HOSTILE_FIELDS = {
    "files.0.size": "12",
    "files.0.sha256": "ZZ" * 32,
    "files.0.mode": 1.5,
    "files.0.uid": True,
    "files.0.gid": -1,
    "files.0.mtime_ns": 1 << 70,
    "files.0.member": "../../etc/passwd",
    "files.0.path": "relative/path.txt",
    "files.1.path": "/a/../report.txt",
    "files.0.merkle_path": "not a list",
    "files.1.merkle_path": [],
    "log.seq": -1,
    "log.tree_size": 0,
    "log.leaf_hash": "ab" * 31,
    "log.inclusion_proof": [123],
    "log.origin": ["amber"],
    "snapshot.id": None,
    "snapshot.time": "yesterday",
    "snapshot.paths": "/",
    "snapshot.tags": [1, 2],
    "snapshot.hostname": {"x": 1},
    "repository": "Z" * 32,
    "created": 5,
    "snapshot": [],
    "files": {},
    "log": "x",
    "surprise": "an unknown field",
}


@pytest.mark.parametrize("field", sorted(HOSTILE_FIELDS))
def test_a_hostile_manifest_field_is_exit_20_naming_it(world, tmp_path, field):
    m = manifest_of(world)
    _edit(field, HOSTILE_FIELDS[field])(m)
    bad = tmp_path / "field.zip"
    build(bad, changed(world, {"manifest.json": lambda d: json.dumps(m).encode()}))
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    top = field.split(".")[0]
    shown = field if top in ("files", "log", "snapshot") else top
    if top == "files" and field.count(".") == 2:
        _, n, name = field.split(".")
        shown = f"files[{n}].{name}"
    assert shown in r.stderr, r
    doc = verify_json(world, tmp_path, bad, "--public-key", world.vkey)
    assert doc["ok"] is False and doc["checks"][0]["ok"] is False


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"format": "amber-evidence-1", "format": "amber-evidence-1"}',
        b'{"format": NaN}',
        b"\xff\xfe not UTF-8",
        b'{"format": "amber-evidence-1", "n": ' + b"9" * 5000 + b"}",
    ],
    ids=["deep", "repeated-key", "nan", "not-utf8", "huge-int"],
)
def test_a_manifest_that_is_not_plain_json_is_exit_20(world, tmp_path, raw):
    bad = tmp_path / "json.zip"
    build(bad, changed(world, {"manifest.json": lambda d: raw}))
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    assert "manifest.json" in r.stderr, r


# -- 4. a forged checkpoint in the repository --------------------------------------------------------


def plant(amber: Amber, key: str, data: bytes) -> None:
    with environment(amber.env()):
        repo = open_repo(amber.url, password=amber.password)
        try:
            repo.storage.put(key, data)
        finally:
            repo.close()


def log_size(amber: Amber) -> int:
    return len(amber.json("audit", "log"))


def other_signed(amber: Amber, size: int) -> bytes:
    origin = f"amber/{manifest_of_repo(amber)}"
    return cpfmt.sign(cpfmt.Checkpoint(origin, size, bytes(32)), origin, Ed25519PrivateKey.generate())


def manifest_of_repo(amber: Amber) -> str:
    return amber.vkey.split("+")[0].removeprefix("amber/")


@pytest.fixture
def logged(repo, tmp_path):
    src = tmp_path / "src"
    write(src / "contract.txt", b"contract\n")
    repo.s1 = repo.backup(src)["snapshot_id"]
    repo.file = str(src / "contract.txt")
    repo.vkey = repo.run("audit", "checkpoint", "--public-key").out.strip()
    return repo


@pytest.mark.parametrize("forgery", ["junk", "other-key", "same-key-wrong-root", "misnamed"])
def test_export_passes_over_a_forged_latest_checkpoint_and_says_so(logged, tmp_path, forgery):
    n = log_size(logged)
    if forgery == "junk":
        key, note = layout.log_checkpoint(n + 1), b"not a checkpoint at all\n"
    elif forgery == "other-key":
        key, note = layout.log_checkpoint(n + 1), other_signed(logged, n + 1)
    elif forgery == "misnamed":  # a genuine note of size n under a later name
        key, note = layout.log_checkpoint(n + 1), (logged.repo / layout.log_checkpoint(n)).read_bytes()
    else:  # an attacker with the password signs a checkpoint of a log that is not this one
        with environment(logged.env()):
            repo = open_repo(logged.url, password=logged.password)
            cp = cpfmt.Checkpoint(repo.audit.origin, n + 1, bytes(32))
            key, note = layout.log_checkpoint(n + 1), cpfmt.sign(cp, repo.audit.origin, repo.audit.signing)
            repo.close()
    plant(logged, key, note)
    out = tmp_path / "out.zip"
    r = logged.run("evidence", "export", logged.s1, logged.file, "-o", out)
    assert key in r.stderr and "passed over" in r.stderr, r
    doc = verify_json(logged, tmp_path, out, "--public-key", logged.vkey, expect=0)
    assert doc["ok"] and doc["signer_verified"]


def test_export_with_no_checkpoint_that_verifies_is_exit_20(logged, tmp_path):
    """The snapshot's event is the last entry and its only covering checkpoint is junk."""
    n = log_size(logged)
    path = logged.repo / layout.log_checkpoint(n)
    path.chmod(0o644)
    path.write_bytes(b"junk")
    out = tmp_path / "out.zip"
    r = logged.run("evidence", "export", logged.s1, logged.file, "-o", out, expect=20)
    assert layout.log_checkpoint(n) in r.stderr and "no stored checkpoint" in r.stderr, r
    assert not out.exists() and not (tmp_path / "out.zip.tmp").exists()


def test_export_when_the_latest_checkpoint_is_overwritten_falls_back(logged, tmp_path):
    src = tmp_path / "src"
    write(src / "more.txt", b"more\n")
    logged.backup(src)  # a later event and checkpoint: the first snapshot's event has two
    n = log_size(logged)
    path = logged.repo / layout.log_checkpoint(n)
    path.chmod(0o644)
    path.write_bytes(other_signed(logged, n))
    out = tmp_path / "out.zip"
    r = logged.run("evidence", "export", logged.s1, logged.file, "-o", out)
    assert layout.log_checkpoint(n) in r.stderr, r
    m = json.loads(zipfile.ZipFile(out).read("manifest.json"))
    assert m["log"]["tree_size"] == n - 1
    verify(logged, tmp_path, out, "--public-key", logged.vkey, expect=0)


def test_the_proof_list_base64_is_checked_at_decode(world, tmp_path):
    m = manifest_of(world)
    m["log"]["inclusion_proof"] = [base64.b64encode(bytes(31)).decode()]
    bad = tmp_path / "proof.zip"
    build(bad, changed(world, {"manifest.json": lambda d: json.dumps(m).encode()}))
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    assert "log.inclusion_proof[0]" in r.stderr, r


def test_a_member_with_an_empty_name_is_refused(world, tmp_path):
    """Found by fuzzing: an entry whose central-directory name is empty."""

    def empty(z):
        z.getinfo("files/1").filename = ""

    bad = tmp_path / "empty.zip"
    build(bad, genuine(world), fix=empty)
    r = verify(world, tmp_path, bad, "--public-key", world.vkey)
    assert "empty name" in r.stderr, r
