"""A backup to S3 killed half-way is resumed by the next one (moto, real HTTP, real processes)."""

from __future__ import annotations

import signal

import pytest
from test_cli_resume import MIB, interrupt_at, random_tree

pytestmark = pytest.mark.subprocess


def bucket_data_bytes(s3amber) -> int:
    total = 0
    for page in s3amber.s3.get_paginator("list_objects_v2").paginate(
        Bucket=s3amber.bucket, Prefix=s3amber.key("data/")
    ):
        total += sum(o["Size"] for o in page.get("Contents", []))
    return total


def test_a_killed_backup_to_s3_is_resumed(s3repo, tmp_path):
    if getattr(s3repo.server, "kind", "moto") != "moto":
        pytest.skip("run on moto only: a large upload")
    src = tmp_path / "src"
    total = random_tree(src, 128)
    # a third, not a half: moto stores fast and a listing is slow, so by the time one shows half
    # the packs the backup may already have indexed them all (then nothing would be resumed)
    interrupt_at(s3repo, src, signal.SIGKILL, total // 3, measure=bucket_data_bytes)
    left = s3repo.json("check", quiet=False)
    assert left["packs_unindexed"] > 0
    again = s3repo.backup(src)
    # every pack the killed run finished is taken over; only the rest is stored again (how much
    # that is depends on when the kill landed, so the bound follows what was left behind)
    assert again["packs_resumed"] == left["packs_unindexed"] and again["bytes_resumed"] == left["bytes_unindexed"]
    assert again["bytes_added"] <= total - left["bytes_unindexed"] + 2 * MIB, (
        f"resumed backup stored {again['bytes_added']} of {total} bytes, {left['bytes_unindexed']} were left"
    )
    doc = s3repo.json("check", "--read-data")
    assert doc["ok"] and doc["packs_unindexed"] == 0
