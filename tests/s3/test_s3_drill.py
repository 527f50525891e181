"""A restore drill of an `s3:` repository (moto and Ceph RGW): the same figures and the same event."""

from __future__ import annotations

import os


def test_a_drill_through_s3(s3repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"f{i}.bin").write_bytes(os.urandom(10_000 + i))
    sid = s3repo.backup(src)["snapshot_id"]
    out = s3repo.json("drill", "--sample", "25%", quiet=False)
    assert out["ok"] and out["files"] == 5 and out["total_files"] == 20 and out["snapshot_id"] == sid, out
    assert out["rto_seconds"] >= out["seconds"] - 0.1
    assert [e for e in s3repo.json("audit", "log") if e["type"] == "drill"][-1]["details"]["verified"] == 5
