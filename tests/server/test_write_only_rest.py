"""The strongest backup host: a backup token on `amber serve` and a write-only key. It adds
snapshots; it can neither read them back (its key) nor delete anything (its token)."""

from __future__ import annotations

import os
from pathlib import Path

from rest_helpers import RestAmber

from cli_helpers import make_source, sha256_file

BACKUP_PASSWORD = "backup host password"


def test_a_backup_token_and_a_write_only_key(tmp_path, serve):
    admin = RestAmber(tmp_path / "admin", serve, "office", serve.token("office", "admin")["token"])
    admin.run("init")
    admin.run("key", "add", "--role", "backup", env=admin.env(AMBER_NEW_PASSWORD=BACKUP_PASSWORD))
    host = RestAmber(
        tmp_path / "host", serve, "office", serve.token("office", "backup")["token"], password=BACKUP_PASSWORD
    )
    src = Path(make_source(tmp_path / "src", {"ledger.csv": os.urandom(150_000)}))
    sid = host.backup(src, args=("--retain", "7d"))["snapshot_id"]
    assert host.snapshots()[0]["sealed"] is True
    assert "write-only" in host.run("restore", sid, "--target", tmp_path / "t", expect=13).stderr
    assert "write-only" in host.run("prune", expect=13).stderr
    host.run("hold", sid, "--reason", "audit")
    admin.run("restore", sid, "--target", tmp_path / "restored", "--verify")
    assert sha256_file(tmp_path / "restored" / str(src).lstrip("/") / "ledger.csv") == sha256_file(src / "ledger.csv")
    assert admin.json("check", "--read-data")["ok"] is True
