"""`amber check --read-data-subset` and `--since`, as a user runs them."""

from __future__ import annotations

import os

import pytest

from amber.clock import to_iso
from amber.format import layout
from amber.format import verified as verifiedfmt
from amber.repo import verified as verifiedrec
from fakeclock import LIBFAKETIME, NO_FAKETIME, moved_clock

from cli_helpers import flip_bit, packs, write
from sources import open_repo


@pytest.fixture
def backed_up(repo, tmp_path):
    src = tmp_path / "src"
    for i in range(6):
        write(src / f"f{i}.bin", os.urandom(600_000))
    repo.backup(src)
    return repo


@pytest.mark.parametrize(
    "args, named",
    [
        (["--read-data-subset", "0/5"], "--read-data-subset"),
        (["--read-data-subset", "6/5"], "--read-data-subset"),
        (["--read-data-subset", "1/300"], "--read-data-subset"),
        (["--read-data-subset", "150%"], "--read-data-subset"),
        (["--read-data-subset", "lots"], "--read-data-subset"),
        (["--read-data", "--read-data-subset", "1/2"], "--read-data-subset"),
        (["--since", "soon"], "duration"),
    ],
)
def test_bad_arguments_are_usage_errors(backed_up, args, named):
    r = backed_up.run("check", *args, expect=2)
    assert named in r.stderr and "Traceback" not in r.stderr


def test_slices_read_every_pack_once(backed_up):
    packs = backed_up.json("check")["packs"]
    read = 0
    for n in (1, 2, 3):
        doc = backed_up.json("check", "--read-data-subset", f"{n}/3")
        assert doc["ok"] and doc["read_subset"] == f"{n}/3"
        read += doc["packs_read"]
    assert read == packs


def test_a_share_and_a_size(backed_up):
    packs = backed_up.json("check")["packs"]
    assert backed_up.json("check", "--read-data-subset", "100%")["packs_read"] == packs
    assert backed_up.json("check", "--read-data-subset", "1K")["packs_read"] == 1


@pytest.mark.skipif(LIBFAKETIME is None, reason=NO_FAKETIME)
@pytest.mark.subprocess
def test_since_skips_what_was_verified_and_reads_it_again_later(backed_up):
    full = backed_up.json("check", "--read-data")
    assert full["ok"] and full["packs_read"] == full["packs"] == full["packs_verified_recorded"]
    soon = backed_up.json("check", "--read-data", "--since", "7d")
    assert soon["packs_read"] == 0 and soon["packs_skipped_verified"] == full["packs"]
    later = backed_up.json("check", "--since", "7d", env=moved_clock(backed_up.env(), "+8d"), quiet=False)
    assert later["packs_read"] == full["packs"] and later["packs_skipped_verified"] == 0


def test_garbage_under_verified_is_a_warning(backed_up):
    backed_up.json("check", "--read-data")
    write(backed_up.repo / "verified" / ("ab" * 32), b"garbage", mode=0o444)
    r = backed_up.run("check", "--since", "7d")
    assert "verification record ignored" in r.stderr and "verified/" + "ab" * 32 in r.stderr


def test_a_planted_verification_record_does_not_hide_a_damaged_pack(backed_up):
    """An attacker with the password damages a pack and seals a record calling every pack
    read clean today, without touching the log: `check --since` still reads them all."""
    lib = open_repo(backed_up.url, password=backed_up.password)
    stored = {layout.pack_id(i.key): i.size for i in lib.storage.list(layout.DATA)}
    doc = verifiedfmt.document(to_iso(lib.clock.now()), "attacker", [(p.hex(), n) for p, n in stored.items()])
    name = lib.records.put(verifiedrec.VERIFIED, doc, layout.verified_record)
    victim = packs(backed_up.repo)[0]
    flip_bit(victim, os.path.getsize(victim) // 2)
    r = backed_up.run("check", "--since", "7d", "--json", expect=20)
    out = r.json()
    assert out["packs_read"] == len(stored) and out["packs_skipped_verified"] == 0
    assert victim.name in r.stderr or victim.name in r.stdout or victim.name[:16] in r.out
    assert any(f"verified/{name}" in w and "no check event" in w for w in out["warnings"])
