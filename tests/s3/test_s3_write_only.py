"""A write-only key on an `s3:` repository (moto, and Ceph RGW which enforces Object Lock): the
backup host adds locked snapshots and reads nothing back; the administrator's full key restores
them bit for bit."""

from __future__ import annotations

import os
from pathlib import Path

from s3.helpers import S3Amber

from cli_helpers import make_source, sha256_file

BACKUP_PASSWORD = "backup host password"


def test_a_write_only_key_on_s3_backs_up_locked_and_reads_nothing_back(s3repo, tmp_path):
    admin = s3repo
    admin.run("key", "add", "--role", "backup", env=admin.env(AMBER_NEW_PASSWORD=BACKUP_PASSWORD))
    host = S3Amber(tmp_path / "host", admin.server, admin.bucket, admin.prefix, password=BACKUP_PASSWORD)
    src = Path(make_source(tmp_path / "src", {"ledger.csv": os.urandom(200_000), "notes/plan.txt": b"plan\n" * 300}))
    sid = host.backup(src, args=("--retain", "7d", "--retention-mode", "compliance"))["snapshot_id"]
    assert host.backup(src)["bytes_added"] < 50_000  # deduplicated against what it cannot read
    listed = {s["id"]: s for s in host.snapshots()}
    assert listed[sid]["sealed"] is True and listed[sid]["retention"]["mode"] == "compliance"
    for args in (("restore", sid, "--target", tmp_path / "t"), ("ls", sid), ("check",), ("forget", sid)):
        assert "write-only" in host.run(*args, expect=13).stderr
    host.run("lock", sid, "--for", "14d")  # extend only
    admin.run("restore", sid, "--target", tmp_path / "restored", "--verify")
    for rel in ("ledger.csv", "notes/plan.txt"):
        assert sha256_file(tmp_path / "restored" / str(src).lstrip("/") / rel) == sha256_file(src / rel)
    doc = admin.json("check", "--read-data", quiet=False)
    assert doc["ok"], doc
    admin.run("forget", sid, expect=30)  # locked: the bucket refuses, whoever asks
