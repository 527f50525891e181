"""Packs carry Reed–Solomon parity (`init --parity PERCENT`): a flipped byte or a truncated
tail in a pack is rebuilt in memory by `restore` and `check --read-data`, reported, and the
damaged blobs stored again in a new pack that takes the old one's lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli_helpers import Amber, assert_same_tree, make_source, restored_root

pytestmark = pytest.mark.subprocess


def stored(repo: Path, prefix: str) -> list[Path]:
    return sorted((p for p in (repo / prefix).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def damage(path: Path, *offsets: int, truncate: int = 0) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    for off in offsets:
        data[off] ^= 0x42
    path.write_bytes(bytes(data[: len(data) - truncate]))


@pytest.fixture
def user(tmp_path) -> Amber:
    u = Amber(tmp_path / "user", subprocess=True)
    u.run("init", env=u.env(AMBER_PASSWORD=u.password))
    files = {"big.bin": os.urandom(2_000_000)} | {f"docs/{i}.txt": f"note {i}\n".encode() * 50 for i in range(40)}
    u.src = Path(make_source(tmp_path / "src", files))
    u.sid = u.backup(u.src, args=("--retain", "30d"))["snapshot_id"]
    return u


def test_every_pack_has_parity_and_init_takes_a_percentage(user, tmp_path):
    packs, parity = stored(user.repo, "data"), stored(user.repo, "parity")
    assert sorted(p.name for p in parity) == sorted(p.name for p in packs)
    big = packs[-1]
    assert next(p for p in parity if p.name == big.name).stat().st_size < big.stat().st_size * 0.04
    none = Amber(tmp_path / "none", subprocess=True)
    none.run("init", "--parity", "0")
    none.backup(user.src)
    assert not (none.repo / "parity").exists() or stored(none.repo, "parity") == []
    assert "parity" in Amber(tmp_path / "bad", subprocess=True).run("init", "--parity", "60", expect=2).stderr


@pytest.mark.parametrize("how", ["flipped bytes", "truncated tail"])
def test_damage_is_rebuilt_by_restore_and_healed_by_check(user, tmp_path, how):
    big = stored(user.repo, "data")[-1]
    if how == "flipped bytes":
        damage(big, 1000, 700_000)
    else:
        damage(big, truncate=30_000)
    r = user.run("restore", user.sid, "--target", tmp_path / "r", "--verify")
    assert "rebuilt from its parity" in r.stderr, r
    assert_same_tree(user.src, restored_root(tmp_path / "r", user.src))
    doc = user.json("check", "--read-data", quiet=False)
    assert doc["ok"] and doc["parity_rebuilt"] == [big.name] and doc["damage_healed"], doc
    assert len(stored(user.repo, "data")) == 3  # the damaged pack stays (locked); a healed copy is added
    again = user.json("check", "--read-data", quiet=False)
    assert again["ok"] and again["parity_rebuilt"] == [], again  # readers take the healed copy now
    user.run("restore", user.sid, "--target", tmp_path / "r2", "--verify")


def test_damage_beyond_the_parity_is_reported_as_before(user, tmp_path):
    big = stored(user.repo, "data")[-1]
    damage(big, truncate=big.stat().st_size // 2)
    r = user.run("check", "--read-data", expect=20)
    assert big.name in r.stderr and "big.bin" in r.stderr
    r = user.run("restore", user.sid, "--target", tmp_path / "r", expect=None)
    assert r.rc != 0 and "big.bin" in r.stderr, r  # named, never silently short


def test_a_planted_parity_object_cannot_put_other_bytes_in_a_restore(user, tmp_path):
    """An attacker with write access damages a pack and replaces its parity with another pack's
    (or junk): nothing is rebuilt from it, the restore fails naming the file, no wrong byte lands."""
    packs, parity = stored(user.repo, "data"), stored(user.repo, "parity")
    big = packs[-1]
    mine = next(p for p in parity if p.name == big.name)
    other = next(p for p in parity if p.name != big.name)
    damage(big, 1000)
    for planted in (other.read_bytes(), b"AMBR\x01" + os.urandom(4000)):
        os.chmod(mine, 0o644)
        mine.write_bytes(planted)
        target = tmp_path / f"r{len(planted)}"
        r = user.run("restore", user.sid, "--target", target, "--verify", expect=None)
        assert r.rc != 0 and "big.bin" in r.stderr, r
        assert not (target / str(user.src).lstrip("/") / "big.bin").exists()
    assert user.run("check", "--read-data", expect=20).rc == 20
