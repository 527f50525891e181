"""`amber copy` into and out of `s3:` repositories: locks and holds set on the bucket's
objects as the source had them, the copy restored bit for bit (moto and Ceph RGW alike)."""

from __future__ import annotations

import os

from .helpers import S3Amber, iso, retention_of

from cli_helpers import Amber, tree_state, write  # isort: skip

SRC_PASSWORD = "the source's password"


def _source(tmp_path) -> Amber:
    src = Amber(tmp_path / "src", password=SRC_PASSWORD)
    src.create()
    return src


def test_local_to_s3_carries_locks_and_holds_and_restores(tmp_path, s3amber: S3Amber):
    src = _source(tmp_path)
    env = s3amber.env(AMBER_FROM_PASSWORD=SRC_PASSWORD)
    s3amber.run("init", "--copy-params-from", src.url, env=env)
    write(tmp_path / "d" / "big.bin", os.urandom(3 << 20))
    write(tmp_path / "d" / "small.txt", b"small\n")
    locked = src.backup(tmp_path / "d", args=("--retain", "20d", "--retention-mode", "compliance"))["snapshot_id"]
    write(tmp_path / "d" / "more.txt", b"more\n")
    held = src.backup(tmp_path / "d")["snapshot_id"]
    src.run("hold", held, "--reason", "litigation 7")

    first = s3amber.json("copy", "--from", src.url, locked, env=env)["copied"]
    packs = s3amber.keys("data/")  # all the locked snapshot's: each locked as long as it
    assert packs and all(retention_of(s3amber.head(k))[0] == "COMPLIANCE" for k in packs)
    out = s3amber.json("copy", "--from", src.url, env=env)
    copies = {c["source"]: c["snapshot"] for c in first + out["copied"]}
    assert set(copies) == {locked, held} and out["refused"] == []
    until = iso(next(s for s in src.snapshots() if s["id"] == locked)["retention"]["until"])
    mode, stored_until = retention_of(s3amber.head(f"snapshots/{copies[locked]}"))
    assert mode == "COMPLIANCE" and abs((stored_until - until).total_seconds()) < 2
    hold = s3amber.s3.get_object_legal_hold(Bucket=s3amber.bucket, Key=s3amber.key(f"snapshots/{copies[held]}"))
    assert hold["LegalHold"]["Status"] == "ON"
    s3amber.run("forget", copies[held], expect=30)

    a, b = tmp_path / "a", tmp_path / "b"
    src.run("restore", held, "--target", a)
    s3amber.run("restore", copies[held], "--target", b, "--verify")
    inner = str(tmp_path / "d").lstrip("/")
    assert tree_state(b / inner) == tree_state(a / inner)
    assert s3amber.json("copy", "--from", src.url, env=env)["copied"] == []
    s3amber.run("check", "--read-data")


def test_s3_to_local(tmp_path, s3amber: S3Amber):
    s3amber.password = SRC_PASSWORD
    s3amber.create()
    write(tmp_path / "d" / "f.bin", os.urandom(1 << 20))
    sid = s3amber.backup(tmp_path / "d")["snapshot_id"]
    dst = Amber(tmp_path / "dst")
    env = s3amber.env(AMBER_FROM_PASSWORD=SRC_PASSWORD, AMBER_REPOSITORY=dst.url, AMBER_PASSWORD=dst.password)
    env.update({k: v for k, v in dst.env().items() if k.startswith("XDG_") or k == "HOME"})
    dst.run("init", "--copy-params-from", s3amber.url, env=env)
    out = dst.run("copy", "--from", s3amber.url, "--json", env=env).json()
    assert [c["source"] for c in out["copied"]] == [sid]
    dst.run("check", "--read-data", env=env)
