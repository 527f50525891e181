"""amber's whole command line on an `s3:BUCKET/PREFIX` repository, over real HTTP."""

from __future__ import annotations

import os

from .helpers import S3Amber
from cli_helpers import assert_same_tree, make_tree, restored_root, sha256_file, write


def test_round_trip(s3amber, tmp_path):
    tree = make_tree(tmp_path / "src", big=3 << 20)
    root = tree["root"]
    # the endpoint given once on the command line instead of the environment
    no_env = s3amber.env(AMBER_S3_ENDPOINT=None)
    r = s3amber.run("init", "--s3-endpoint", s3amber.server.endpoint, env=no_env)
    assert s3amber.url in r.out
    assert "config" in s3amber.keys() and s3amber.keys("keys/"), "init wrote nothing to the bucket"  # noqa: SIM118
    # ... and before the subcommand
    assert s3amber.json("--s3-endpoint", s3amber.server.endpoint, "snapshots", env=no_env) == []

    doc = s3amber.backup(root)
    sid = doc["snapshot_id"]
    assert doc["files_new"] > 10 and doc["bytes_added"] > 3 << 20
    assert s3amber.keys("data/"), "no pack reached the bucket"
    assert s3amber.keys("index/"), "no index file reached the bucket"
    assert s3amber.keys("snapshots/") == [f"snapshots/{sid}"]

    snaps = s3amber.snapshots()
    assert [s["id"] for s in snaps] == [sid]
    assert snaps[0]["paths"] == [root] and snaps[0]["retention"] is None and snaps[0]["legal_hold"] is False

    files = {e["path"]: e for e in s3amber.json("ls", sid) if e["type"] == "file"}
    assert files[tree["big"]]["sha256"] == sha256_file(tree["big"])
    assert files[tree["small"]]["size"] == len(b"hello amber\n")

    target = tmp_path / "restore"
    s3amber.run("restore", sid, "--target", target, "--verify")
    assert_same_tree(root, restored_root(target, root))

    # a second backup of a changed tree reuses what is stored and restores exactly too
    write(os.path.join(root, "added.txt"), b"one more file\n")
    doc2 = s3amber.backup(root)
    assert doc2["files_new"] == 1 and doc2["files_unmodified"] > 10
    assert doc2["bytes_added"] < 1 << 20, "unchanged data was stored again"
    target2 = tmp_path / "restore-2"
    s3amber.run("restore", "latest", "--target", target2, "--verify")
    assert_same_tree(root, restored_root(target2, root))

    s3amber.run("check", "--read-data")
    s3amber.run("audit", "verify")
    types = [e["type"] for e in s3amber.json("audit", "log")]
    assert types[0] == "init" and types.count("snapshot") == 2


def test_two_repositories_in_one_bucket_stay_apart(s3repo, tmp_path):
    src = tmp_path / "one"
    src.mkdir()
    write(src / "f.txt", b"first repository\n")
    s3repo.backup(src)
    other = S3Amber(
        tmp_path / "other", s3repo.server, s3repo.bucket, prefix="nested/other-repo", password="another password"
    )
    other.init()
    assert other.snapshots() == []
    assert other.keys("config") == ["config"]
    assert len(s3repo.snapshots()) == 1
    s3repo.run("check", "--read-data")
    other.run("check", "--read-data")


def test_wrong_password_and_missing_repository(s3repo, s3_server, tmp_path):
    s3repo.run("snapshots", env=s3repo.env(AMBER_PASSWORD="not the password"), expect=12)
    s3repo.run("snapshots", env=s3repo.env(AMBER_REPOSITORY=f"s3:{s3repo.bucket}/nothing-here"), expect=10)
    r = s3repo.run("snapshots", env=s3repo.env(AMBER_REPOSITORY="s3:no-such-bucket-amber/x"), expect=None)
    assert r.rc not in (0, 2) and "no-such-bucket-amber" in r.stderr


def test_init_with_retention_on_a_bucket_without_object_lock(s3_server, tmp_path):
    user = S3Amber(tmp_path / "amber", s3_server, s3_server.new_bucket(object_lock=False))
    r = user.run("init", "--default-retention", "1h", "--retention-mode", "compliance", expect=None)
    assert r.rc != 0, f"init promised locks the bucket cannot keep:\n{r!r}"
    msg = r.stderr
    assert "Object Lock" in msg and user.bucket in msg, r
    assert "--object-lock-enabled-for-bucket" in msg or "object-lock" in msg.lower(), (
        f"the message does not say how to enable Object Lock:\n{r!r}"
    )
    assert user.keys() == [], "a refused init left objects in the bucket"
    # without retention the same bucket is fine
    user.run("init")
    user.snapshots()
