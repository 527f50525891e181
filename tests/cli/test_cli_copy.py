"""`amber copy` and `init --copy-params-from`, as a user runs them: two repositories, the real
command, the copy restored and checked bit for bit; a source that lies refused by name."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from cli_helpers import Amber, make_tree, tree_state, write

SRC_PASSWORD = "source password \u2713"


def _users(tmp_path: Path, params: bool = True, **kw) -> tuple[Amber, Amber]:
    """A source repository and an empty destination (made with --copy-params-from unless not `params`)."""
    src = Amber(tmp_path / "src", password=SRC_PASSWORD, **kw)
    src.create()
    dst = Amber(tmp_path / "dst", **kw)
    if params:
        dst.run("init", "--copy-params-from", src.url, env=_from(dst, src))
    else:
        dst.create()
    return src, dst


def _from(dst: Amber, src: Amber, **extra) -> dict:
    return dst.env(AMBER_FROM_PASSWORD=src.password, **extra)


def _copy(dst: Amber, src: Amber, *args, expect: int = 0, env: dict | None = None) -> dict:
    r = dst.run("copy", "--from", src.url, *args, "--json", expect=expect, env=env or _from(dst, src))
    return r.json()


def _restore_equal(src: Amber, dst: Amber, sid: str, copy_id: str, tmp_path: Path, name: str) -> None:
    a, b = tmp_path / f"{name}-a", tmp_path / f"{name}-b"
    src.run("restore", sid, "--target", a)
    dst.run("restore", copy_id, "--target", b, "--verify")
    inner = str(tmp_path).lstrip("/")  # what was backed up lies below the test's folder
    assert tree_state(b / inner) == tree_state(a / inner)
    assert len(tree_state(b / inner)) > 1


def test_copy_restores_bit_for_bit_and_a_second_copy_moves_nothing(tmp_path):
    src, dst = _users(tmp_path)
    make_tree(tmp_path / "data", non_utf8=False)
    s1 = src.backup(tmp_path / "data", args=("--tag", "one"))["snapshot_id"]
    write(tmp_path / "data" / "later.txt", os.urandom(300_000))
    s2 = src.backup(tmp_path / "data")["snapshot_id"]

    out = _copy(dst, src)
    assert {c["source"] for c in out["copied"]} == {s1, s2} and out["refused"] == [] and not out["rechunked"]
    assert out["blobs_copied"] > 0
    copies = {c["source"]: c["snapshot"] for c in out["copied"]}
    snaps = {s["id"]: s for s in dst.snapshots()}
    source = {s["id"]: s for s in src.snapshots()}
    for sid, cid in copies.items():
        assert snaps[cid]["content_root"] == source[sid]["content_root"]
        assert snaps[cid]["tree"] == source[sid]["tree"]
        assert snaps[cid]["tags"] == source[sid]["tags"] and snaps[cid]["time"] == source[sid]["time"]
    _restore_equal(src, dst, s2, copies[s2], tmp_path, "r")

    again = _copy(dst, src)
    assert again["copied"] == [] and again["blobs_copied"] == 0 and again["bytes_added"] == 0
    assert {s["source"] for s in again["skipped"]} == {s1, s2}
    assert len(dst.snapshots()) == 2
    dst.run("check", "--read-data")

    events = dst.json("audit", "log")
    kinds = [e["type"] for e in events]
    assert kinds.count("copy") == 2 and kinds.count("snapshot") == 2
    dst.run("audit", "verify", "--full")  # every copy's proof of its original, checked again
    copy_event = next(e for e in events if e["type"] == "copy")
    assert events[0]["details"]["params_from"] == copy_event["details"]["source_repository"]


def test_copy_filters_and_named_snapshots(tmp_path):
    src, dst = _users(tmp_path)
    write(tmp_path / "a" / "f", b"a" * 1000)
    write(tmp_path / "b" / "f", b"b" * 1000)
    sa = src.backup(tmp_path / "a", args=("--tag", "keep", "--host", "h1"))["snapshot_id"]
    sb = src.backup(tmp_path / "b", args=("--host", "h2"))["snapshot_id"]
    assert [c["source"] for c in _copy(dst, src, "latest", "--host", "h1")["copied"]] == [sa]  # not sb
    assert _copy(dst, src, "--tag", "keep")["copied"] == []
    assert _copy(dst, src, "--path", str(tmp_path / "b"), "--host", "h1")["copied"] == []
    assert [c["source"] for c in _copy(dst, src, sb[:8])["copied"]] == [sb]


def test_without_copy_params_the_copy_rechunks_and_says_so(tmp_path):
    src, dst = _users(tmp_path, params=False)
    make_tree(tmp_path / "data", non_utf8=False)
    sid = src.backup(tmp_path / "data")["snapshot_id"]
    r = dst.run("copy", "--from", src.url, env=_from(dst, src))
    assert "chunked again" in r.stderr
    copied = dst.snapshots()[0]
    assert copied["tree"] != src.snapshots()[0]["tree"]  # other ids: other tree bytes (FORMAT.md §11)
    assert _listing(dst, copied["id"]) == _listing(src, sid)  # every path, its metadata and SHA-256
    _restore_equal(src, dst, sid, copied["id"], tmp_path, "r")
    dst.run("check", "--read-data")
    assert _copy(dst, src)["copied"] == []


def _listing(u: Amber, sid: str) -> dict:
    return {e["path"]: {k: e.get(k) for k in ("type", "size", "mode", "mtime", "sha256")} for e in u.json("ls", sid)}


def test_a_missing_or_truncated_source_pack_refuses_the_snapshots_that_need_it(tmp_path):
    src, dst = _users(tmp_path)
    write(tmp_path / "a" / "f", os.urandom(100_000))
    first = src.backup(tmp_path / "a")["snapshot_id"]
    packs_before = set((Path(src.repo) / "data").rglob("*"))
    write(tmp_path / "b" / "f", os.urandom(100_000))
    second = src.backup(tmp_path / "b")["snapshot_id"]
    new = sorted(p for p in set((Path(src.repo) / "data").rglob("*")) - packs_before if p.is_file())
    assert new
    os.chmod(new[0].parent, 0o755)
    os.unlink(new[0])  # as an attacker with write access to the folder does
    r = dst.run("copy", "--from", src.url, "--json", env=_from(dst, src), expect=20)
    out = r.json()
    assert [c["source"] for c in out["copied"]] == [first]
    assert [x["source"] for x in out["refused"]] == [second]
    assert f"snapshot {second[:8]}" in r.stderr
    dst.run("check", "--read-data")


def test_a_broken_source_index_refuses_what_it_cannot_place(tmp_path):
    src, dst = _users(tmp_path)
    write(tmp_path / "a" / "f", os.urandom(100_000))
    first = src.backup(tmp_path / "a")["snapshot_id"]
    before = set((Path(src.repo) / "index").iterdir())
    write(tmp_path / "b" / "f", os.urandom(100_000))
    second = src.backup(tmp_path / "b")["snapshot_id"]
    (index,) = set((Path(src.repo) / "index").iterdir()) - before
    os.chmod(index, 0o644)
    index.write_bytes(os.urandom(index.stat().st_size))
    r = dst.run("copy", "--from", src.url, "--json", env=_from(dst, src), expect=20)
    out = r.json()
    assert [c["source"] for c in out["copied"]] == [first]
    assert [x["source"] for x in out["refused"]] == [second] and f"snapshot {second[:8]}" in r.stderr
    dst.run("check", "--read-data")


def test_wrong_source_password_is_12_and_write_only_source_is_13(tmp_path):
    src, dst = _users(tmp_path)
    write(tmp_path / "d" / "f", b"x" * 100)
    src.backup(tmp_path / "d")
    r = dst.run("copy", "--from", src.url, env=dst.env(AMBER_FROM_PASSWORD="wrong"), expect=12)
    assert "password" in r.stderr
    r = dst.run("copy", "--from", src.url, env=dst.env(AMBER_FROM_PASSWORD=None), expect=1)
    assert "AMBER_FROM_PASSWORD" in r.stderr
    pwfile = tmp_path / "pw"
    pwfile.write_text(SRC_PASSWORD + "\n")
    assert len(_copy(dst, src, env=dst.env(AMBER_FROM_PASSWORD_FILE=pwfile))["copied"]) == 1

    src.run("key", "add", "--role", "backup", env=src.env(AMBER_NEW_PASSWORD="writer only"))
    r = dst.run("copy", "--from", src.url, env=dst.env(AMBER_FROM_PASSWORD="writer only"), expect=13)
    assert "write-only" in r.stderr


def _flip_blob(src: Amber, blob_hex: str) -> None:
    """Flip a byte inside one stored blob of the source, where the index places it."""
    from amber.repository import Repository

    from cli_helpers import environment

    with environment(src.env()):
        repo = Repository.open(src.url, src.password)
        repo.load_index()
        e = repo.blobs.lookup(bytes.fromhex(blob_hex))
        pack = Path(src.repo) / "data" / e.pack.hex()[:2] / e.pack.hex()
        repo.close()
    os.chmod(pack, 0o644)
    raw = bytearray(pack.read_bytes())
    raw[e.offset + e.length // 2] ^= 0xFF
    pack.write_bytes(bytes(raw))


def test_a_lying_source_blob_refuses_that_snapshot_only(tmp_path):
    src, dst = _users(tmp_path)
    write(tmp_path / "good" / "g.bin", os.urandom(200_000))
    write(tmp_path / "bad" / "b.bin", os.urandom(200_000))
    good = src.backup(tmp_path / "good")["snapshot_id"]
    bad = src.backup(tmp_path / "bad")["snapshot_id"]
    node = next(n for n in src.json("ls", bad) if n["path"].endswith("b.bin"))
    content = _content_of(src, bad, node["path"])
    _flip_blob(src, content[0])

    r = dst.run("copy", "--from", src.url, "--json", env=_from(dst, src), expect=20)
    out = r.json()
    assert [c["source"] for c in out["copied"]] == [good]
    assert [x["source"] for x in out["refused"]] == [bad]
    assert f"snapshot {bad[:8]}" in r.stderr and f"blob {content[0][:16]}" in r.stderr
    dst.run("check", "--read-data")
    assert [s["id"] for s in dst.snapshots()] == [out["copied"][0]["snapshot"]]
    assert not _stored_anywhere(dst, content[0])
    assert len(list((Path(dst.repo) / "running").iterdir())) == 1  # the refused copy's marker is gone
    assert dst.json("prune", "--dry-run") is not None


def _content_of(u: Amber, sid: str, path: str) -> list[str]:
    from amber.repository import Repository

    from cli_helpers import environment

    with environment(u.env()):
        repo = Repository.open(u.url, u.password)
        node = repo.node_at(repo.find_snapshot(sid), path)
        repo.close()
    return list(node["content"])


def _stored_anywhere(u: Amber, blob_hex: str) -> bool:
    from amber.repository import Repository

    from cli_helpers import environment

    with environment(u.env()):
        repo = Repository.open(u.url, u.password)
        repo.load_index()
        found = repo.blobs.index.get(bytes.fromhex(blob_hex)) is not None
        repo.close()
    return found


def test_locks_and_holds_travel(tmp_path):
    src, dst = _users(tmp_path)
    write(tmp_path / "d" / "f", os.urandom(50_000))
    comp = src.backup(tmp_path / "d", args=("--retain", "40d", "--retention-mode", "compliance"))["snapshot_id"]
    write(tmp_path / "e" / "f", os.urandom(50_000))
    held = src.backup(tmp_path / "e", args=("--retain", "2d"))["snapshot_id"]
    src.run("hold", held, "--reason", "case 42")
    plain = src.backup(tmp_path / "e")["snapshot_id"]

    out = _copy(dst, src)
    copies = {c["source"]: c["snapshot"] for c in out["copied"]}
    snaps = {s["id"]: s for s in dst.snapshots()}
    source = {s["id"]: s for s in src.snapshots()}
    assert snaps[copies[comp]]["retention"]["mode"] == "compliance"
    assert snaps[copies[comp]]["retention"]["until"] == source[comp]["retention"]["until"]
    assert snaps[copies[held]]["legal_hold"] and snaps[copies[held]]["legal_hold_reason"] == "case 42"
    assert snaps[copies[held]]["retention"]["mode"] == "governance"
    assert snaps[copies[plain]]["retention"] is None and not snaps[copies[plain]]["legal_hold"]
    dst.run("forget", copies[comp], expect=30)
    dst.run("forget", copies[held], "--bypass-governance", expect=30)
    dst.run("check")


def test_destination_default_and_minimum_and_retain_override(tmp_path):
    src = Amber(tmp_path / "src", password=SRC_PASSWORD)
    src.create()
    dst = Amber(tmp_path / "dst")
    env = _from(dst, src)
    dst.run("init", "--copy-params-from", src.url, "--default-retention", "30d", "--min-retention", "7d", env=env)
    write(tmp_path / "d" / "f", os.urandom(10_000))
    short = src.backup(tmp_path / "d", args=("--retain", "1d"))["snapshot_id"]
    longer = src.backup(tmp_path / "d", args=("--retain", "90d", "--retention-mode", "compliance"))["snapshot_id"]

    out = _copy(dst, src, short)
    snap = dst.snapshots()[0]
    assert snap["retention"]["mode"] == "governance"
    assert snap["retention"]["until"] > src.snapshots()[0]["retention"]["until"]  # the destination's 30 days

    r = dst.run("copy", "--from", src.url, longer, "--retain", "2d", env=env, expect=30)
    assert "minimum" in r.stderr
    out = _copy(dst, src, longer, "--retain", "10d", "--retention-mode", "governance")
    cid = out["copied"][0]["snapshot"]
    copied = next(s for s in dst.snapshots() if s["id"] == cid)
    assert copied["retention"]["mode"] == "governance"  # replaced explicitly, as asked


@pytest.mark.subprocess
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
def test_a_killed_copy_resumes_without_moving_again_what_it_stored(tmp_path, sig):
    import signal
    import subprocess
    import time

    src, dst = _users(tmp_path, subprocess=True)
    rnd = random.Random(7)
    for i in range(12):
        write(tmp_path / "big" / f"f{i}", rnd.randbytes(12 << 20))
    sid = src.backup(tmp_path / "big")["snapshot_id"]

    p = subprocess.Popen(
        dst.cmd("copy", "--from", src.url), env=_from(dst, src), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    index = Path(dst.repo) / "index"
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline and not _stored(index):
        time.sleep(0.05)  # until the copy has stored packs and an index file naming them
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate()
    assert p.returncode != 0, "the copy finished before it could be stopped"
    assert b"Traceback" not in err
    assert dst.snapshots() == []

    out = _copy(dst, src)
    assert [c["source"] for c in out["copied"]] == [sid]
    total = sum(n["size"] for n in src.json("ls", sid) if n["type"] == "file")
    assert out["bytes_copied"] < total  # what the killed run stored was not moved again
    _restore_equal(src, dst, sid, out["copied"][0]["snapshot"], tmp_path, "r")
    dst.run("check", "--read-data")


def _stored(folder: Path) -> bool:
    """Whether an object (not a temporary file being written) is in `folder`."""
    return folder.is_dir() and any(not p.name.startswith(".") for p in folder.iterdir())


def test_the_copy_event_carries_the_source_proof_and_evidence_verifies_the_chain(tmp_path):
    from amber.evidence.copychain import verify_copy_proof

    src, dst = _users(tmp_path)
    write(tmp_path / "d" / "f.txt", b"proof me\n")
    sid = src.backup(tmp_path / "d")["snapshot_id"]
    cid = _copy(dst, src)["copied"][0]["snapshot"]
    ev = next(e for e in dst.json("audit", "log") if e["type"] == "copy")
    d = ev["details"]
    assert ev["snapshot"] == cid and d["source_snapshot"] == sid
    source_key = _log_key(src)
    assert d["source_public_key"] == source_key
    original = verify_copy_proof(d, source_key)
    assert original["snapshot"] == sid and original["details"]["content_root"] == d["source_content_root"]

    bundle = tmp_path / "ev.zip"
    path = str(tmp_path / "d" / "f.txt")
    dst.run("evidence", "export", cid, path, "-o", bundle)
    both = ("--public-key", _log_key(dst), "--source-public-key", source_key)
    out = dst.json("evidence", "verify", bundle, *both)
    assert out["ok"] and out["signer_verified"] and out["source_signer_verified"]
    assert out["copy_of"] == {"repository": d["source_repository"], "snapshot": sid}
    assert any("the original" in c["check"] and c["ok"] for c in out["checks"])
    # without the original's key: the key the copy event names, vouched for by the copy's own log
    r = dst.run("evidence", "verify", bundle, "--public-key", _log_key(dst), "--json")
    assert r.json()["ok"] and not r.json()["source_signer_verified"] and "--source-public-key" in r.stderr
    dst.run("evidence", "verify", bundle, expect=21)  # no key at all: as for any bundle
    # another repository's key for the original: refused
    other = ("--public-key", _log_key(dst), "--source-public-key", _log_key(dst))
    r = dst.run("evidence", "verify", bundle, *other, expect=20)
    assert "not by the key given" in r.stderr


def test_a_tampered_copy_proof_fails_offline(tmp_path):
    import copy as _copy_mod

    from amber.errors import IntegrityError
    from amber.evidence.copychain import copy_proof_problems, verify_copy_proof

    src, dst = _users(tmp_path)
    write(tmp_path / "d" / "f.txt", b"x\n")
    src.backup(tmp_path / "d")
    write(tmp_path / "d" / "g.txt", b"y\n")
    src.backup(tmp_path / "d")
    _copy(dst, src)
    d = next(e for e in dst.json("audit", "log") if e["type"] == "copy")["details"]
    for field, value in (
        ("source_event", d["source_event"].replace('"snapshot"', '"snapshoT"', 1)),
        ("source_seq", d["source_seq"] + 1),
        ("source_checkpoint", d["source_checkpoint"].replace("\n", "\n\n", 1)),
        ("source_snapshot", "0" * 64),
        ("source_repository", "0" * 32),
        ("source_inclusion_proof", d["source_inclusion_proof"][:-1]),
    ):
        bad = _copy_mod.deepcopy(d)
        bad[field] = value
        with pytest.raises(IntegrityError):
            verify_copy_proof(bad)
        assert len(copy_proof_problems([({"type": "copy", "seq": 9, "details": bad}, b"")])) == 1
    assert copy_proof_problems([({"type": "copy", "seq": 9, "details": d}, b"")]) == []


def _log_key(u: Amber) -> str:
    """A repository's log verifier key, as its owner reads it (independently of any bundle)."""
    from amber.repository import Repository

    from cli_helpers import environment

    with environment(u.env()):
        repo = Repository.open(u.url, u.password)
        key = repo.audit.vkey()
        repo.close()
    return key


def test_a_validly_sealed_blob_that_lies_about_its_id_is_refused(tmp_path):
    """The source holds, under the id of one chunk, another chunk sealed with the real keys:
    the copy refuses the snapshot that needs it, copies the others, and never stores it."""
    import hashlib

    from amber.audit.snapshot_events import record_snapshots
    from amber.format.pack import BLOB_DATA
    from hostile import Planter, meta

    from cli_helpers import environment
    from sources import open_repo

    src, dst = _users(tmp_path)
    write(tmp_path / "good" / "g.bin", os.urandom(100_000))
    good = src.backup(tmp_path / "good")["snapshot_id"]
    truth = os.urandom(5000)
    with environment(src.env()):
        repo = open_repo(src.url, password=src.password)
        repo.load_index()
        lie_id = repo.keys.blob_id(truth)
        repo.blobs.add(BLOB_DATA, lie_id, b"a lie " * 800)  # sealed like any blob, under the wrong id
        node = meta("f.bin", "file", size=len(truth), content=[lie_id.hex()], sha256=hashlib.sha256(truth).hexdigest())
        liar = Planter(repo).snapshot([node])
        record_snapshots(repo.audit, repo.snapshot_store, liar)
        repo.close()

    r = dst.run("copy", "--from", src.url, "--json", env=_from(dst, src), expect=20)
    out = r.json()
    assert [c["source"] for c in out["copied"]] == [good]
    assert [x["source"] for x in out["refused"]] == [liar]
    assert f"snapshot {liar[:8]}" in r.stderr and "content does not match its id" in r.stderr
    assert not _stored_anywhere(dst, lie_id.hex())
    dst.run("check", "--read-data")
    # the same source, copied again: still refused, nothing stored twice
    again = dst.run("copy", "--from", src.url, "--json", env=_from(dst, src), expect=20).json()
    assert again["copied"] == [] and again["blobs_copied"] == 0


def test_copy_into_a_write_only_destination(tmp_path):
    """The offsite host holds only a write-only key: it copies in, skips what it copied before,
    and a full key restores the copy."""
    src, dst = _users(tmp_path)
    write(tmp_path / "d" / "f.bin", os.urandom(300_000))
    sid = src.backup(tmp_path / "d", args=("--retain", "2d"))["snapshot_id"]
    dst.run("key", "add", "--role", "backup", env=dst.env(AMBER_NEW_PASSWORD="offsite writer"))
    writer = dst.env(AMBER_PASSWORD="offsite writer", AMBER_FROM_PASSWORD=src.password)
    out = _copy(dst, src, env=writer)
    assert [c["source"] for c in out["copied"]] == [sid]
    again = _copy(dst, src, env=writer)
    assert again["copied"] == [] and [s["source"] for s in again["skipped"]] == [sid]
    _restore_equal(src, dst, sid, out["copied"][0]["snapshot"], tmp_path, "r")
    assert dst.json("check", "--read-data")["ok"]
    kinds = [e["type"] for e in dst.json("audit", "log")]
    assert kinds.count("snapshot") == 1 and kinds.count("copy") == 1
