"""amber audit and amber evidence, end to end: the `amber` command, each user
with private cache, data, state folders and HOME. Damage is exit 20, named on stderr; a
bundle verifies anywhere with nothing but the log's public key; never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile

import pytest

from cli_helpers import Amber, flip_bit, iso_to_us, write

PUBLIC_KEY_PREFIX = "amber/"


def make_src(root):
    (root / "d\u00e9p\u00f4t \u2713").mkdir(parents=True)
    write(root / "report.txt", b"quarterly numbers\n")
    write(root / "d\u00e9p\u00f4t \u2713" / "contrat sign\u00e9.pdf", os.urandom(40_000))
    return root


def two_backups(repo, src):
    s1 = repo.backup(src)["snapshot_id"]
    write(src / "later.txt", b"later\n")
    s2 = repo.backup(src)["snapshot_id"]
    repo.s1, repo.s2, repo.src = s1, s2, src
    return repo


@pytest.fixture
def logged(repo, tmp_path):
    """init, two backups: a log of three events (a repository of this test's own)."""
    return two_backups(repo, make_src(tmp_path / "src"))


@pytest.fixture(scope="module")
def world(tmp_path_factory, amber_exe):
    """A repository with two snapshots and an evidence bundle of two files of the first, shared
    by the tests below that only read them."""
    base = tmp_path_factory.mktemp("audit-world")
    repo = Amber(base / "amber")
    repo.create()
    two_backups(repo, make_src(base / "src"))
    repo.files = [str(repo.src / "d\u00e9p\u00f4t \u2713" / "contrat sign\u00e9.pdf"), str(repo.src / "report.txt")]
    out = base / "out" / "evidence.zip"
    out.parent.mkdir()
    r = repo.run("evidence", "export", repo.s1, *repo.files, "-o", out)
    assert out.is_file() and "verify with" in r.out
    assert not any(p.name.endswith(".tmp") for p in out.parent.iterdir())
    repo.bundle = out
    repo.vkey = repo.run("audit", "checkpoint", "--public-key").out.strip()
    assert repo.vkey in r.out
    return repo


def log_path(amber, folder: str, n: int):
    return amber.repo / "log" / folder / f"{n:012d}"


def restore_bytes(path, data: bytes) -> None:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.chmod(path, mode | stat.S_IWUSR)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def replace_repo(amber, old) -> None:
    shutil.rmtree(amber.repo)
    shutil.copytree(old, amber.repo, symlinks=True)


# -- audit log --------------------------------------------------------------------------------


def test_audit_log_lists_every_change_oldest_first(logged):
    repo, s1, s2 = logged, logged.s1, logged.s2
    repo.run("lock", s1, "--for", "1d")
    repo.run("hold", s2, "--reason", "case 42")
    repo.run("release", s2)
    repo.run("forget", s2)
    repo.run("check")
    evs = repo.json("audit", "log")
    assert isinstance(evs, list)
    assert [(e["seq"], e["type"], e.get("snapshot")) for e in evs] == [
        (0, "init", None),
        (1, "snapshot", s1),
        (2, "snapshot", s2),
        (3, "lock", s1),
        (4, "hold", s2),
        (5, "release", s2),
        (6, "forget", s2),
        (7, "check", None),
    ]
    times = [iso_to_us(e["time"]) for e in evs]
    assert times == sorted(times)
    snaps = {s["id"]: s for s in repo.snapshots()}
    assert evs[1]["details"]["content_root"] == snaps[s1]["content_root"]
    assert evs[7]["details"]["ok"] is True
    human = repo.run("audit", "log").out.splitlines()
    assert len(human) == 8
    for line, ev in zip(human, evs):
        assert ev["type"] in line and str(ev["seq"]) in line
        if ev.get("snapshot"):
            assert ev["snapshot"][:8] in line


def test_audit_log_after_init_only(repo):
    evs = repo.json("audit", "log")
    assert [(e["seq"], e["type"]) for e in evs] == [(0, "init")] and "snapshot" not in evs[0]


def test_audit_verify_passes_then_names_a_flipped_entry_or_checkpoint(legacy_log, logged):
    repo = logged
    r = repo.run("audit", "verify")
    assert "no errors" in r.out and r.stderr == ""
    doc = repo.json("audit", "verify")
    assert doc["ok"] is True and doc["size"] == 3 and doc["errors"] == [] and doc["remembered_size"] == 3
    for folder, n in (("entries", 1), ("checkpoints", 2)):
        path = log_path(repo, folder, n)
        original = path.read_bytes()
        flip_bit(path, len(original) // 2, 2)
        try:
            r = repo.run("audit", "verify", expect=20)
            assert f"log/{folder}/{n:012d}" in r.stderr, r
            doc = repo.json("audit", "verify", expect=20, quiet=False)
            assert doc["ok"] is False and any(f"log/{folder}/{n:012d}" in e for e in doc["errors"])
        finally:
            restore_bytes(path, original)
        repo.run("audit", "verify")
    os.unlink(log_path(repo, "entries", 1))
    r = repo.run("audit", "verify", expect=20)
    assert f"log/entries/{1:012d}" in r.stderr and "missing" in r.stderr, r


def test_a_checkpoint_kept_outside_and_an_old_copy_put_back(logged, tmp_path):
    repo = logged
    note = repo.run("audit", "checkpoint").out
    lines = note.split("\n")
    assert lines[0].startswith(PUBLIC_KEY_PREFIX) and lines[1] == "3" and lines[3] == ""
    assert lines[4].startswith("\u2014 " + lines[0] + " ") and note.endswith("\n")
    vkey = repo.run("audit", "checkpoint", "--public-key").out.strip()
    assert vkey.startswith(lines[0] + "+")
    early = tmp_path / "checkpoint-3.txt"
    early.write_text(note, encoding="utf-8")
    r = repo.run("audit", "verify", "--checkpoint", early)
    assert "no errors" in r.out

    old = tmp_path / "old-copy"
    shutil.copytree(repo.repo, old, symlinks=True)
    write(repo.src / "newer.txt", b"newer\n")
    repo.backup(repo.src)
    later = tmp_path / "checkpoint-4.txt"
    later.write_text(repo.run("audit", "checkpoint").out, encoding="utf-8")
    repo.run("audit", "verify", "--checkpoint", later)
    n_snaps = len(repo.snapshots())

    replace_repo(repo, old)
    r = repo.run("audit", "verify", expect=20)
    assert "rolled back" in r.stderr, r
    write(repo.src / "newest.txt", b"newest\n")
    r = repo.run("backup", repo.src, expect=20)
    assert "rolled back" in r.stderr, r
    assert len(repo.snapshots()) == n_snaps - 1, "no snapshot was added to the old copy"

    # a user who never saw this repository, holding a checkpoint kept outside it
    fresh = repo.env(XDG_STATE_HOME=tmp_path / "fresh-state")
    repo.run("audit", "verify", "--checkpoint", early, env=fresh)
    r = repo.run("audit", "verify", "--checkpoint", later, env=fresh, expect=20)
    assert "given checkpoint" in r.stderr and "rolled back" in r.stderr, r


@pytest.mark.parametrize(
    "content",
    [
        b"not a checkpoint\n",
        b"\xff\xfe\x00",
        "amber/x\n1\n\u00e9AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 amber/x AAAA\n".encode(),
    ],
    ids=["text", "binary", "non-ascii-root"],
)
def test_audit_verify_with_a_malformed_checkpoint_file(world, tmp_path, content):
    bad = tmp_path / "bad-checkpoint.txt"
    bad.write_bytes(content)
    r = world.run("audit", "verify", "--checkpoint", bad, expect=20)
    assert "given checkpoint" in r.stderr, r


def test_audit_verify_with_a_checkpoint_of_another_repository(world, tmp_path):
    other = Amber(tmp_path / "other")
    other.create()
    note = tmp_path / "other-checkpoint.txt"
    note.write_text(other.run("audit", "checkpoint").out, encoding="utf-8")
    r = world.run("audit", "verify", "--checkpoint", note, expect=20)
    assert "given checkpoint" in r.stderr, r


# -- evidence ---------------------------------------------------------------------------------


def offline(amber, tmp_path):
    """Environment and folder of someone with the bundle and the key only."""
    where = tmp_path / "elsewhere"
    where.mkdir(exist_ok=True)
    env = amber.env(
        AMBER_PASSWORD=None,
        AMBER_REPOSITORY=None,
        XDG_STATE_HOME=tmp_path / "other-state",
        XDG_CACHE_HOME=tmp_path / "other-cache",
        HOME=where,
    )
    return env, where


def test_evidence_verifies_elsewhere_with_only_the_public_key(world, tmp_path):
    repo = world
    moved = repo.repo.with_name("repo-moved-away")
    os.rename(repo.repo, moved)
    try:
        verify_elsewhere(repo, tmp_path)
    finally:
        os.rename(moved, repo.repo)


def verify_elsewhere(repo, tmp_path):
    env, where = offline(repo, tmp_path)
    r = repo.run("evidence", "verify", repo.bundle, "--public-key", repo.vkey, env=env, cwd=where)
    assert "evidence verified" in r.out and "FAIL" not in r.out, r
    for f in repo.files:
        assert f in r.out
    keyfile = tmp_path / "key.txt"
    keyfile.write_text(repo.vkey + "\n", encoding="utf-8")
    repo.run("evidence", "verify", repo.bundle, "--public-key", keyfile, env=env, cwd=where)
    doc = repo.json("evidence", "verify", repo.bundle, "--public-key", repo.vkey, env=env, cwd=where)
    assert doc["ok"] is True and doc["key_from_bundle"] is False
    assert doc["checks"] and all(c["ok"] for c in doc["checks"])
    assert doc["snapshot"]["id"] == repo.s1
    assert [f["path"] for f in doc["files"]] == repo.files
    # without a key of one's own, the bundle's key is used and the user told so
    r = repo.run("evidence", "verify", repo.bundle, env=env, cwd=where, expect=21)
    assert "public key was taken from the bundle" in r.stderr, r


def rezip(src, dst, name: str, change) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == name:
                data = change(data)
                if data is None:
                    continue
            zout.writestr(info.filename, data)


def flip_middle(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x04]) + data[i + 1 :]


def flip_first(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x04]) + data[1:]


@pytest.mark.parametrize(
    "member", ["manifest.json", "files/0", "files/1", "trees", "event.json", "checkpoint.txt", "public-key.txt"]
)
@pytest.mark.parametrize("how", ["flipped", "removed"])
def test_evidence_verify_fails_for_each_tampered_member(world, tmp_path, member, how):
    repo = world
    with zipfile.ZipFile(repo.bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
        names = [i.filename for i in z.infolist()]
    if member == "trees":  # the tree of the folder holding files/0
        member = f"trees/{manifest['files'][0]['merkle_path'][-1]}.json"
        assert member in names
    change = None if how == "removed" else flip_first if member in ("manifest.json", "public-key.txt") else flip_middle
    bad = tmp_path / "tampered.zip"
    rezip(repo.bundle, bad, member, (lambda d: None) if change is None else change)
    env, where = offline(repo, tmp_path)
    r = repo.run("evidence", "verify", bad, "--public-key", repo.vkey, env=env, cwd=where, expect=20)
    concerned = [member]
    if member.startswith("trees/"):
        concerned = ["files/0", manifest["files"][0]["path"]]
    elif member == "public-key.txt":
        concerned = ["public-key.txt", "public key"]
    assert any(c in r.stderr for c in concerned), r
    doc = repo.json("evidence", "verify", bad, "--public-key", repo.vkey, env=env, cwd=where, expect=20, quiet=False)
    assert doc["ok"] is False and any(not c["ok"] for c in doc["checks"])


def test_evidence_verify_of_something_that_is_not_a_bundle(world, tmp_path):
    env, where = offline(world, tmp_path)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip file")
    world.run("evidence", "verify", junk, "--public-key", world.vkey, env=env, cwd=where, expect=20)
    r = world.run("evidence", "verify", tmp_path / "missing.zip", env=env, cwd=where, expect=None)
    assert r.rc == 2, r


def test_evidence_verify_with_another_repositorys_key(world, tmp_path):
    other = Amber(tmp_path / "other")
    other.create()
    other_key = other.run("audit", "checkpoint", "--public-key").out.strip()
    env, where = offline(world, tmp_path)
    r = world.run("evidence", "verify", world.bundle, "--public-key", other_key, env=env, cwd=where, expect=20)
    assert "public key" in r.stderr and "checkpoint.txt" in r.stderr, r


def test_evidence_export_refusals(world, tmp_path):
    repo = world
    out = tmp_path / "x.zip"
    r = repo.run("evidence", "export", repo.s1, str(repo.src / "no-such-file"), "-o", out, expect=1)
    assert "no-such-file" in r.stderr and not out.exists()
    r = repo.run("evidence", "export", repo.s1, str(repo.src), "-o", out, expect=2)
    assert not out.exists()
    repo.run("evidence", "export", "ffffffffffff", str(repo.src / "report.txt"), "-o", out, expect=1)


def test_evidence_verify_of_a_checkpoint_with_non_ascii_text(world, tmp_path):
    def tamper(note: bytes) -> bytes:
        lines = note.decode().split("\n")
        lines[2] = "\u00e9" + lines[2][1:]
        return "\n".join(lines).encode()

    bad = tmp_path / "non-ascii.zip"
    rezip(world.bundle, bad, "checkpoint.txt", tamper)
    env, where = offline(world, tmp_path)
    r = world.run("evidence", "verify", bad, "--public-key", world.vkey, env=env, cwd=where, expect=20)
    assert "checkpoint.txt" in r.stderr, r


def meaning_file(repo) -> list:
    return list(repo.cache.glob("amber/*/log-meaning.json"))


def test_verify_from_the_kept_fold_still_names_a_snapshot_deleted_behind_the_log(logged):
    """`audit verify` keeps the fold of every event it checked (log-meaning.json) and, next time,
    reads only what was added since: a snapshot document deleted behind the log is named all
    the same, and so it is when the kept fold is junk (rebuilt from every event)."""
    logged.run("audit", "verify")
    (kept,) = meaning_file(logged)
    before = json.loads(kept.read_text())
    assert before["size"] == 3 and set(before["logged"]) == {logged.s1, logged.s2}
    write(logged.src / "third.txt", b"third\n")
    s3 = logged.backup(logged.src)["snapshot_id"]
    logged.run("audit", "verify")
    after = json.loads(kept.read_text())
    assert after["size"] == 4 and set(after["logged"]) == {logged.s1, logged.s2, s3}
    victim = logged.repo / "snapshots" / logged.s1
    os.chmod(victim, 0o644)
    victim.unlink()
    for junk in (None, b"{not json", b'{"v": 1, "size": 4, "root": "00", "logged": {}}'):
        if junk is not None:
            kept.write_bytes(junk)
        r = logged.run("audit", "verify", expect=20)
        assert f"snapshot {logged.s1[:8]} (event" in r.stderr and "deleted behind the log" in r.stderr, r
