"""Write-only backup keys (`key add --role backup`), tried as a thief on the backup host would.

The host holds only the backup key file and its password. It backs up, deduplicating against
everything stored, and lists what is safe to show; every command that would read content
refuses with exit 13; nothing in its key file, and nothing it can compute, opens a file's
content, a file name or a snapshot document — not even what it wrote itself. The full key,
offline with the administrator, restores all of it bit for bit.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
from pathlib import Path

import blake3
import pytest

from amber.crypto import content as contentkeys
from amber.crypto import keys as keyfile
from amber.crypto.aead import ALGORITHMS, KIND_SNAPSHOT, KIND_SNAPSHOT_HEADER, OVERHEAD, Sealer
from amber.errors import IntegrityError
from amber.format import snapshot as snapfmt
from amber.repo import records as rec
from amber.repo.snapshots import ContentKeys, SnapshotStore

from cli_helpers import Amber, assert_same_tree, make_source, restored_root, write

BACKUP_PASSWORD = "the backup host's password"
SECRET_NAME = "payroll-2026-secret.csv"
SECRET = b"salary,alice,123456\n" * 500


@pytest.fixture
def admin(tmp_path) -> Amber:
    a = Amber(tmp_path / "admin")
    a.create()
    return a


def backup_host(admin: Amber, base: Path) -> Amber:
    """A user on another machine holding only a write-only key of `admin`'s repository."""
    admin.run("key", "add", "--role", "backup", env=admin.env(AMBER_NEW_PASSWORD=BACKUP_PASSWORD))
    host = Amber(base, password=BACKUP_PASSWORD)
    host.repo, host.url = admin.repo, admin.url
    return host


@pytest.fixture
def host(admin, tmp_path) -> Amber:
    return backup_host(admin, tmp_path / "host")


def key_files(repo: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (repo / "keys").iterdir()}


def backup_key_file(repo: Path) -> tuple[str, bytes]:
    return next((kid, raw) for kid, raw in key_files(repo).items() if json.loads(raw).get("role") == "backup")


def plant_key_file(repo: Path, raw: bytes) -> str:
    """A key file stored as an attacker with write access would: named by its own hash."""
    kid = blake3.blake3(raw).hexdigest()
    (repo / "keys" / kid).write_bytes(raw)
    return kid


def test_a_write_only_key_backs_up_and_reads_nothing_back(admin, host, tmp_path):
    src = Path(make_source(tmp_path / "src", {SECRET_NAME: SECRET, "notes/plan.txt": b"quarterly plan\n" * 100}))
    first = admin.backup(src)
    write(src / "new.txt", b"written on the host\n")
    out = host.backup(src)
    assert out["files_new"] + out["files_changed"] + out["files_unmodified"] == 3
    assert out["bytes_added"] < 20_000, "the host deduplicated against the administrator's backup"
    stdin = host.json("backup", "--stdin", "--stdin-name", "db.sql", input=b"dump of a database\n" * 50)
    other = backup_host(admin, tmp_path / "host2")  # a second backup host, with a write-only key of its own
    size = sum(p.stat().st_size for p in admin.repo.rglob("*") if p.is_file() and "data" in p.parts)
    assert other.backup(src)["bytes_added"] < 20_000
    grown = sum(p.stat().st_size for p in admin.repo.rglob("*") if p.is_file() and "data" in p.parts) - size
    assert grown < 20_000, "write-only clients deduplicate against each other's data"

    listed = {s["id"]: s for s in host.snapshots()}
    assert set(listed) >= {first["snapshot_id"], out["snapshot_id"], stdin["snapshot_id"]} and len(listed) == 4
    mine = listed[out["snapshot_id"]]
    assert mine["sealed"] is True and mine["hostname"] and mine["paths"] == [str(src)]
    assert "tree" not in mine and "content_root" not in mine and "summary" not in mine

    refused = [
        ("ls", "latest"),
        ("cat", "latest", str(src / SECRET_NAME)),
        ("find", SECRET_NAME),
        ("diff", first["snapshot_id"], out["snapshot_id"]),
        ("restore", "latest", "--target", str(tmp_path / "stolen")),
        ("check",),
        ("check", "--read-data"),
        ("evidence", "export", "latest", str(src / SECRET_NAME), "--output", str(tmp_path / "e.zip")),
        ("forget", first["snapshot_id"]),
        ("prune",),
        ("release", "latest"),
    ]
    for args in refused:
        r = host.run(*args, expect=13)
        assert "write-only" in r.stderr, r
    assert not (tmp_path / "stolen").exists() and not (tmp_path / "e.zip").exists()
    assert SECRET_NAME not in host.run("snapshots").out
    host.run("audit", "verify")  # the log verifies from the host too, snapshots it cannot open included

    target = tmp_path / "restored"
    admin.run("restore", out["snapshot_id"], "--target", target, "--verify")
    assert_same_tree(src, restored_root(target, src))
    r = admin.run("cat", stdin["snapshot_id"], "/db.sql")
    assert r.stdout == b"dump of a database\n" * 50
    assert admin.json("check", "--read-data")["ok"] is True


def test_nothing_a_write_only_key_holds_opens_what_is_stored(admin, host, tmp_path):
    """Read the key file with the library, as the thief would, and try every key it holds on
    every stored object that carries user data."""
    src = Path(make_source(tmp_path / "src", {SECRET_NAME: SECRET}))
    admin.backup(src)
    write(src / "mine.txt", b"the host's own earlier backup\n" * 40)
    host.backup(src)
    _kid, raw = backup_key_file(admin.repo)
    keys = keyfile.unwrap(raw, BACKUP_PASSWORD)
    assert keys.role == "backup" and keys.content_private is None and keys.can_read is False
    assert keys.content_public is not None
    secrets = [keys.data, keys.ids, keys.signing, keys.author]
    stored = list((admin.repo / "data").rglob("*")) + list((admin.repo / "snapshots").iterdir())
    blobs_tried = 0
    for path in (p for p in stored if p.is_file()):
        data = path.read_bytes()
        assert SECRET_NAME.encode() not in data and b"salary,alice" not in data
        for start in range(len(data) - OVERHEAD):
            if data[start] != 1 or data[start + 1] not in ALGORITHMS or data[start + 2] not in (1, 2, 5):
                continue
            for key in secrets:  # any 32-byte secret the key file holds, under either algorithm
                for alg in ALGORITHMS:
                    with pytest.raises(IntegrityError):
                        Sealer(key, alg).open(data[start + 2], data[start:])
            blobs_tried += 1
            if blobs_tried > 400:
                break
    assert blobs_tried > 0
    # nor through the library: a store opened with the backup key refuses to read a snapshot's document
    store = SnapshotStore(rec.Records(None, Sealer(keys.data)), lambda m: None, ContentKeys(keys.content_public, None))
    for path in (admin.repo / "snapshots").iterdir():
        store.records.storage = _Files(admin.repo)
        snap = store.load(path.name)
        assert snap.readable is False and snap.tree == ""


class _Files:
    """The bare minimum of a storage a thief's script needs to read a local repository."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


def test_key_list_shows_each_keys_role(admin, host):
    keys = admin.json("key", "list")
    assert sorted(k["role"] for k in keys) == ["backup", "full"]


def test_a_repository_s_first_key_is_full_and_only_full_keys_add_keys(admin, host):
    assert [k["role"] for k in admin.json("key", "list") if k["current"]] == ["full"]
    r = host.run("key", "add", "--role", "full", env=host.env(AMBER_NEW_PASSWORD="escalate"), expect=13)
    assert "write-only" in r.stderr
    host.run("key", "add", "--role", "backup", env=host.env(AMBER_NEW_PASSWORD="another"), expect=13)


def test_a_backup_key_file_edited_to_claim_the_full_role_is_refused(admin, host, tmp_path):
    kid, raw = backup_key_file(admin.repo)
    doc = json.loads(raw)
    doc["role"] = "full"
    edited = json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"
    (admin.repo / "keys" / kid).unlink()
    plant_key_file(admin.repo, edited)
    r = host.run("snapshots", expect=20)
    assert "role" in r.stderr and "backup" in r.stderr, r

    # re-sealed with the password, claiming the full role: it holds no content private key
    keys = keyfile.unwrap(raw, BACKUP_PASSWORD)
    forged = keyfile.wrap(dataclasses.replace(keys, role="full"), BACKUP_PASSWORD, n=1024)
    for p in (admin.repo / "keys").iterdir():
        if json.loads(p.read_bytes()).get("role") == "full" and p.name != kid and _opens(p, BACKUP_PASSWORD):
            p.unlink()
    plant_key_file(admin.repo, forged)
    r = host.run("restore", "latest", "--target", tmp_path / "t", expect=20)
    assert "full role" in r.stderr and "content private key" in r.stderr, r
    admin.run("snapshots")  # the administrator's key still opens: nothing was lost


def _opens(path: Path, password: str) -> bool:
    try:
        keyfile.unwrap(path.read_bytes(), password)
    except Exception:
        return False
    return True


def test_a_key_file_naming_a_made_up_content_key_is_refused(admin, host, tmp_path):
    """A thief re-seals the backup key with a content key of its own, to read what it writes next."""
    kid, raw = backup_key_file(admin.repo)
    keys = keyfile.unwrap(raw, BACKUP_PASSWORD)
    _private, fake_public = contentkeys.generate()
    (admin.repo / "keys" / kid).unlink()
    plant_key_file(
        admin.repo, keyfile.wrap(dataclasses.replace(keys, content_public=fake_public), BACKUP_PASSWORD, n=1024)
    )
    src = Path(make_source(tmp_path / "src", {"a.txt": b"a\n"}))
    r = host.run("backup", src, expect=20)
    assert "content key" in r.stderr, r
    assert not (admin.repo / "snapshots").exists() or list((admin.repo / "snapshots").iterdir()) == []


def test_a_snapshot_sealed_to_another_key_is_reported_by_check(admin, host, tmp_path):
    """A write-only client plants a snapshot sealed to a key it made up (so it could read it):
    the full key's check names it, exit 20, and everything else stays readable."""
    src = Path(make_source(tmp_path / "src", {"a.txt": b"a\n"}))
    good = admin.backup(src)["snapshot_id"]
    _kid, raw = backup_key_file(admin.repo)
    keys = keyfile.unwrap(raw, BACKUP_PASSWORD)
    _private, fake_public = contentkeys.generate()
    doc = {
        "v": 1,
        "time": "2026-12-01T00:00:00Z",
        "hostname": "thief",
        "paths": ["/x"],
        "tree": "a" * 64,
        "content_root": "b" * 64,
    }
    records = rec.Records(None, Sealer(keys.data))
    sid, stored = SnapshotStore(records, lambda m: None, ContentKeys(fake_public, None)).seal(doc)
    (admin.repo / "snapshots" / sid).write_bytes(stored)
    r = admin.run("check", expect=20)
    assert sid[:8] in r.out + r.stderr and "content key" in r.out + r.stderr, r
    admin.run("restore", good, "--target", tmp_path / "t")
    # the header alone cannot lie about what the document says either
    w = contentkeys.new_writer(keys.content_public)
    head = snapfmt.header_of(
        dict(doc, hostname="honest"),
        base64.b64encode(w.public).decode(),
        contentkeys.fingerprint(keys.content_public).hex(),
    )
    stored = snapfmt.join_sealed(
        Sealer(keys.data).seal(KIND_SNAPSHOT_HEADER, snapfmt.encode(head)),
        w.sealer().seal(KIND_SNAPSHOT, snapfmt.encode(doc)),
    )
    sid2 = blake3.blake3(stored).hexdigest()
    (admin.repo / "snapshots" / sid2).write_bytes(stored)
    r = admin.run("check", expect=20)
    assert sid2[:8] in r.out + r.stderr and "header" in r.out + r.stderr, r
    # nor can it fall back to format 1, sealing a snapshot under the data key it holds
    sid3, stored = records.seal(rec.SNAPSHOT, doc)
    (admin.repo / "snapshots" / sid3).write_bytes(stored)
    r = admin.run("check", expect=20)
    assert sid3[:8] in r.out + r.stderr and "format 1 in a repository made in format 2" in r.out + r.stderr, r


def test_lock_and_hold_with_a_write_only_key(admin, host, tmp_path):
    src = Path(make_source(tmp_path / "src", {"a.txt": b"a\n" * 1000}))
    admin.backup(src)
    write(src / "b.txt", b"b\n")
    host.backup(src)
    sid = host.backup(src)["snapshot_id"]  # every file from the files cache: its packs noted all the same
    host.run("lock", sid, "--for", "30d")
    host.run("lock", sid, "--for", "10d", expect=30)  # extend only
    r = host.run("lock", sid, "--for", "10d", "--bypass-governance", expect=13)
    assert "write-only" in r.stderr
    host.run("hold", sid, "--reason", "litigation")
    host.run("release", sid, expect=13)
    host.run("forget", sid, expect=13)
    listed = {s["id"]: s for s in admin.snapshots()}
    assert listed[sid]["legal_hold"] is True and listed[sid]["retention"]["mode"] == "governance"
    # every object the host's snapshot needs is protected as long as its lock, and held
    report = admin.json("check")
    assert report["ok"] is True, report


def test_an_old_repository_is_upgraded_by_adding_objects_only(tmp_path):
    vectors = Path(__file__).resolve().parent.parent / "vectors"
    doc = json.loads((vectors / "repo-v1.json").read_text())
    admin = Amber(tmp_path / "admin", password=doc["password"])
    shutil.copytree(vectors / "repo-v1", admin.repo)
    before = {str(p.relative_to(admin.repo)): p.read_bytes() for p in admin.repo.rglob("*") if p.is_file()}
    r = admin.run("key", "add", "--role", "backup", env=admin.env(AMBER_NEW_PASSWORD=BACKUP_PASSWORD), expect=2)
    assert "amber upgrade" in r.stderr
    up = admin.json("upgrade")
    assert up["format"] == 2 and up["replaced"] != up["key"]
    after = {str(p.relative_to(admin.repo)): p.read_bytes() for p in admin.repo.rglob("*") if p.is_file()}
    assert all(after.get(k) == v for k, v in before.items() if not k.startswith("keys/")), "nothing rewritten"
    admin.run("upgrade", expect=2)  # once is enough
    host = backup_host(admin, tmp_path / "host")
    src = Path(make_source(tmp_path / "src", {SECRET_NAME: SECRET}))
    sid = host.backup(src)["snapshot_id"]
    host.run("restore", sid, "--target", tmp_path / "stolen", expect=13)
    for s in doc["snapshots"]:
        admin.run("restore", s["id"], "--target", tmp_path / s["id"][:8], "--verify")
    admin.run("restore", sid, "--target", tmp_path / "new", "--verify")
    assert_same_tree(src, restored_root(tmp_path / "new", src))
    assert admin.json("check", "--read-data")["ok"] is True
    events = [e["type"] for e in admin.json("audit", "log")]
    assert "upgrade" in events and "key-add" in events  # the backup key; the upgrade event names the new full key
