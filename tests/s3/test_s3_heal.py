"""Damage heals by adding on an `s3:` repository: a pack overwritten with one flipped bit (a new
version, which moto serves as the object) is recorded damaged under `damage/` in the bucket,
and the next backup stores the blob again."""

from __future__ import annotations

import os

from cli_helpers import write


def test_a_damaged_pack_on_s3_is_recorded_and_healed(s3repo, tmp_path):
    src = tmp_path / "src"
    data = os.urandom(300 << 10)
    write(src / "victim.bin", data)
    sid = s3repo.backup(src)["snapshot_id"]
    sizes = {k: s3repo.head(k)["ContentLength"] for k in s3repo.keys("data/")}
    pack = max(sizes, key=sizes.get)  # the data pack; the tree pack is far smaller
    body = bytearray(s3repo.s3.get_object(Bucket=s3repo.bucket, Key=s3repo.key(pack))["Body"].read())
    body[len(body) // 2] ^= 0x08
    s3repo.overwrite(pack, bytes(body))

    r = s3repo.run("check", "--read-data", expect=20)
    assert pack.rsplit("/", 1)[1] in r.stderr and str(src / "victim.bin") in r.stderr, r
    assert len(s3repo.keys("damage/")) == 1, "the damage record reached the bucket"

    assert s3repo.backup(src)["bytes_added"] > 200 << 10
    doc = s3repo.json("check", "--read-data", quiet=False)
    assert doc["ok"] and doc["damage_healed"] and not doc["damage_unhealed"], doc
    target = tmp_path / "restored"
    s3repo.run("restore", sid, "--target", target, "--verify")
    assert (target / str(src / "victim.bin").lstrip("/")).read_bytes() == data
