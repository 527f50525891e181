"""Witnesses of the audit log through the commands a user runs: a folder and an S3 bucket
keep every checkpoint write-once; a rolled-back or forked repository is reported (exit 20,
naming the witness and its checkpoint) even after the client's own state is deleted;
planted witness checkpoints (another log, a bad signature) are named; `audit trust --reset`
is the recorded way out."""

from __future__ import annotations

import shutil

import pytest

from s3.helpers import S3Amber

from cli_helpers import Amber, with_one_backup, write
from s3server import S3_SERVERS


def forget_client(u: Amber) -> None:
    """Delete everything the client keeps: its remembered checkpoint, summary and witness list."""
    for d in (u.state, u.cache):
        shutil.rmtree(d)
        d.mkdir()


def grow(u: Amber, n: int = 1) -> None:
    for i in range(n):
        write(u.src / f"f{i}.txt", f"{u.src} {i} {id(u)}\n".encode())
        u.backup(u.src)


@pytest.fixture
def user(tmp_path, amber_exe) -> Amber:
    u = Amber(tmp_path / "amber")
    with_one_backup(u, tmp_path / "src")
    return u


@pytest.fixture
def witnessed(user, tmp_path) -> Amber:
    user.wdir = tmp_path / "witness"
    user.run("audit", "witness", "add", "w1", "--dir", user.wdir)
    return user


def test_add_and_list_and_publish(witnessed):
    u = witnessed
    listed = u.json("audit", "witness", "list")
    assert [w["name"] for w in listed] == ["w1"] and listed[0]["url"] == f"local:{u.wdir}"
    grow(u, 2)
    names = sorted(p.name for p in (u.wdir / "checkpoints").iterdir())
    size = int(names[-1].split("-")[0])
    assert len(names) == 3 and size == u.json("audit", "verify")["size"]
    doc = u.json("audit", "verify")
    assert doc["ok"] and doc["witnesses"][0]["ok"] and doc["witnesses"][0]["size"] == size
    events = [ev["type"] for ev in u.json("audit", "log")]
    assert "witness" in events
    r = u.run("audit", "witness", "add", "w1", "--dir", u.wdir, expect=2)
    assert "already" in r.stderr


def test_rollback_is_reported_without_client_state(witnessed, tmp_path):
    u = witnessed
    old = tmp_path / "old-copy"
    shutil.copytree(u.repo, old)
    grow(u, 2)
    shutil.rmtree(u.repo)
    shutil.copytree(old, u.repo)  # the attacker restores the older copy
    forget_client(u)
    r = u.run("audit", "verify", expect=20)
    assert "witness w1" in r.stderr and "rolled back" in r.stderr and "checkpoints/0000" in r.stderr
    u.run("check", expect=20)
    # the way out, recorded
    r = u.run("audit", "trust", "--reset", "--reason", "restored from the backup tape")
    assert "abandoned w1" in r.out
    doc = u.json("audit", "verify")
    assert doc["ok"], doc
    reset = [ev for ev in u.json("audit", "log") if ev["type"] == "trust-reset"]
    assert reset and reset[0]["details"]["reason"] == "restored from the backup tape"
    assert len(reset[0]["details"]["abandoned"]) == 2
    assert any(p.name.startswith("0") for p in (u.wdir / "resets").iterdir())
    grow(u, 1)
    assert u.json("audit", "verify")["ok"]


def test_rollback_is_reported_with_client_state_of_witnesses_only(witnessed, tmp_path):
    """The repository is rolled back to before the witness was added: the client's mirror still names it."""
    u = witnessed
    grow(u, 1)
    old = tmp_path / "old-copy"
    shutil.copytree(u.repo, old)
    grow(u, 1)
    shutil.rmtree(u.repo)
    shutil.copytree(old, u.repo)
    # the witness mirror stays; the remembered checkpoint goes
    for p in (u.state / "amber").rglob("checkpoint"):
        p.unlink()
    shutil.rmtree(u.cache)
    u.cache.mkdir()
    r = u.run("audit", "verify", expect=20)
    assert "witness w1" in r.stderr and "rolled back" in r.stderr


def test_fork_is_reported(witnessed, tmp_path):
    u = witnessed
    other = Amber(tmp_path / "other")
    shutil.copytree(u.repo, other.repo)
    shutil.copytree(u.state, other.state, dirs_exist_ok=True)
    other.src = tmp_path / "src-other"
    write(other.src / "b.txt", b"beta\n")
    grow(u, 2)  # the first copy goes on: the witness keeps its history
    other.backup(other.src)  # the second copy diverges at a size the witness has already
    forget_client(other)
    r = other.run("audit", "verify", expect=20)
    assert "witness w1" in r.stderr


def test_fork_at_the_same_size(witnessed, tmp_path):
    u = witnessed
    other = Amber(tmp_path / "other")
    shutil.copytree(u.repo, other.repo)
    shutil.copytree(u.state, other.state, dirs_exist_ok=True)
    other.src = tmp_path / "src-other"
    write(other.src / "b.txt", b"beta\n")
    grow(u, 1)
    other.backup(other.src)
    grow(u, 1)
    forget_client(u)
    assert u.json("audit", "verify")["ok"]
    write(other.src / "c.txt", b"gamma\n")
    other.backup(other.src)  # the fork grows past the witness's newest: not a prefix of it
    r = other.run("audit", "verify", expect=20)
    assert "witness w1" in r.stderr and "rewritten or forked" in r.stderr
    forget_client(u)
    r = u.run("audit", "verify", expect=20)  # the witness's newest is now the fork's
    assert "witness w1" in r.stderr


def test_planted_checkpoints_are_named(witnessed, tmp_path):
    u = witnessed
    stranger = Amber(tmp_path / "stranger")
    stranger.create()
    stranger.src = u.src
    stranger.run("audit", "witness", "add", "w1", "--dir", tmp_path / "stranger-witness")
    grow(stranger, 3)
    theirs = sorted((tmp_path / "stranger-witness" / "checkpoints").iterdir())[-1]
    planted = u.wdir / "checkpoints" / theirs.name
    planted.write_bytes(theirs.read_bytes())
    r = u.run("audit", "verify", expect=20)
    assert "witness w1" in r.stderr and planted.name in r.stderr and "not a checkpoint of this log" in r.stderr
    planted.unlink()
    mine = sorted((u.wdir / "checkpoints").iterdir())[-1]
    note = mine.read_bytes()
    size = int(mine.name.split("-")[0])
    bad = u.wdir / "checkpoints" / f"{size + 5:012d}-{mine.name.split('-')[1]}"
    bad.write_bytes(note.replace(note.splitlines()[-1][-6:], b"AAAAAA"))
    r = u.run("audit", "verify", expect=20)
    assert "witness w1" in r.stderr and bad.name in r.stderr
    bad.unlink()
    (u.wdir / "checkpoints" / "junk").write_bytes(b"junk")
    r = u.run("audit", "verify", expect=20)
    assert "checkpoints/junk" in r.stderr


def test_unreachable_witness_warns_and_backup_succeeds(witnessed):
    u = witnessed
    shutil.rmtree(u.wdir)
    u.wdir.write_bytes(b"not a folder")
    write(u.src / "c.txt", b"gamma\n")
    r = u.run("backup", u.src)
    assert "witness w1" in r.stderr
    r = u.run("audit", "verify")
    assert "witness w1" in r.stderr and "cannot be reached" in r.stderr


@pytest.mark.parametrize("server_name", S3_SERVERS)
def test_s3_witness_rollback(request, tmp_path, amber_exe, server_name):
    server = request.getfixturevalue(f"{server_name}_server")
    u = S3Amber(tmp_path / "amber", server, server.new_bucket(object_lock=True))
    with_one_backup(u, tmp_path / "src")
    wbucket = server.new_bucket(object_lock=True)
    u.run("audit", "witness", "add", "s3w", "--s3", f"{wbucket}/witness")
    grow(u, 1)
    keys = [o["Key"] for o in u.s3.list_objects_v2(Bucket=wbucket, Prefix="witness/checkpoints/")["Contents"]]
    assert len(keys) == 2
    assert u.json("audit", "verify")["witnesses"][0]["ok"]
    # the attacker plants another log's checkpoint in the witness bucket
    u.s3.put_object(Bucket=wbucket, Key="witness/checkpoints/000000000099-" + "ab" * 32, Body=b"x\n1\n\n")
    r = u.run("audit", "verify", expect=20)
    assert "witness s3w" in r.stderr and "000000000099-" in r.stderr


def test_witness_list_from_the_log_after_client_state_is_lost(witnessed):
    u = witnessed
    forget_client(u)
    (w,) = u.json("audit", "witness", "list")
    assert w["name"] == "w1" and w["url"] == f"local:{u.wdir}"
    grow(u, 1)  # the witness still gets every change
    assert u.json("audit", "verify")["witnesses"][0]["ok"]


def test_witness_add_usage_errors(user, tmp_path):
    u = user
    u.run("audit", "witness", "add", "w", expect=2)
    u.run("audit", "witness", "add", "w", "--dir", tmp_path / "a", "--s3", "b/c", expect=2)
    u.run("audit", "witness", "add", "w", "--url", "https://example.invalid/x", expect=2)
    u.run("audit", "witness", "add", "bad/name", "--dir", tmp_path / "a", expect=2)
    u.run("audit", "trust", "--reset", expect=2)
    assert u.json("audit", "witness", "list") == []
