"""`amber repair packs` and `amber repair snapshots`, tried as a user whose disk lost a pack or
flipped a bit: lost data is stored again from another repository or from files, matched by
blob id (never from a source holding other bytes under that id); what cannot be found is left
out of new, listed, recorded snapshots; locked originals stay untouched."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from amber.format.pack import BLOB_DATA

from cli_helpers import Amber, assert_same_tree, make_source, restored_root, write
from sources import open_repo

pytestmark = pytest.mark.subprocess


def packs(repo: Path) -> list[Path]:
    return sorted((p for p in (repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def writable(path: Path) -> Path:
    os.chmod(path, 0o644)
    return path


def flip(path: Path, offset: int) -> None:
    data = bytearray(writable(path).read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.fixture
def user(tmp_path) -> Amber:
    u = Amber(tmp_path / "user", subprocess=True)
    u.create()
    u.src = Path(
        make_source(
            tmp_path / "src",
            {"big.bin": os.urandom(600_000), "docs/a.txt": b"alpha\n" * 100, "docs/b.txt": b"beta\n" * 100},
        )
    )
    u.sid = u.backup(u.src, args=("--retain", "30d"))["snapshot_id"]
    return u


def test_a_lost_pack_is_stored_again_from_the_files(user, tmp_path):
    data_pack = packs(user.repo)[-1]
    data_pack.unlink()
    assert "big.bin" in user.run("check", "--read-data", expect=20).stderr
    dry = user.json("repair", "packs", "--from-path", user.src, "--dry-run")
    assert dry["lost"] > 0 and dry["repaired"] == [] and len(packs(user.repo)) == 1
    out = user.json("repair", "packs", "--from-path", user.src)
    assert out["lost"] == len(out["repaired"]) > 0 and out["remaining"] == [] and out["packs_written"] == 1
    doc = user.json("check", "--read-data", quiet=False)
    assert doc["ok"], doc  # the new pack carries the snapshot's 30-day lock: check verifies it
    user.run("restore", user.sid, "--target", tmp_path / "r", "--verify")
    assert_same_tree(user.src, restored_root(tmp_path / "r", user.src))
    events = [e for e in user.json("audit", "log") if e["type"] == "repair"]
    assert events[-1]["details"]["what"] == "packs" and events[-1]["details"]["repaired"] == len(out["repaired"])


def test_a_damaged_folder_listing_heals_from_a_copy_of_the_repository(user, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(user.repo, mirror)
    tree_pack = packs(user.repo)[0]
    flip(tree_pack, 40)
    user.run("check", "--read-data", expect=20)
    # files cannot make a folder listing
    out = user.json("repair", "packs", "--from-path", user.src, expect=20, quiet=False)
    assert out["repaired"] == [] and out["remaining"]
    user.run("repair", "packs", "--from", mirror, env=user.env(AMBER_FROM_PASSWORD="wrong"), expect=12)
    out = user.json("repair", "packs", "--from", mirror, env=user.env(AMBER_FROM_PASSWORD=user.password))
    assert out["remaining"] == [] and out["repaired"], out
    assert user.json("check", "--read-data", quiet=False)["ok"]
    user.run("restore", "latest", "--target", tmp_path / "r", "--verify")


def test_a_source_holding_other_bytes_under_an_id_is_refused(user, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(user.repo, mirror)
    data_pack = packs(user.repo)[-1]
    data_pack.unlink()
    (mirror / data_pack.relative_to(user.repo)).unlink()
    for f in index_files(mirror):  # the source's own index names only what is planted below
        writable(f).unlink()
    # the source's owner plants other bytes under the lost ids (sealed with the real keys)
    src_repo = open_repo(mirror, password=user.password)
    src_repo.load_index()
    lost = user.json("repair", "packs", "--from-path", tmp_path / "nothing-here", "--dry-run", expect=None, quiet=False)
    ids = [line.split(":")[0] for line in lost["remaining"]]
    with src_repo.blobs.session() as s:
        for h in ids:
            s.add(BLOB_DATA, bytes.fromhex(h), b"not what was backed up\n")
        s.flush()
    env = user.env(AMBER_FROM_PASSWORD=user.password)
    out = user.json("repair", "packs", "--from", mirror, env=env, expect=20, quiet=False)
    assert out["repaired"] == [] and len(out["refused"]) == len(ids), out
    assert "does not match its id" in out["refused"][0]
    user.run("check", "--read-data", expect=20)  # still lost, honestly
    user.json("repair", "packs", "--from-path", user.src)
    assert user.json("check", "--read-data", quiet=False)["ok"]


def test_a_source_with_other_blob_ids_is_refused(user, tmp_path):
    other = Amber(tmp_path / "other", subprocess=True)
    other.create()
    packs(user.repo)[-1].unlink()
    r = user.run("repair", "packs", "--from", other.repo, env=user.env(AMBER_FROM_PASSWORD=other.password), expect=2)
    assert "id keys" in r.stderr
    user.run("repair", "packs", expect=2)  # a source is needed


def test_what_no_source_has_is_left_out_of_a_new_listed_snapshot(user, tmp_path):
    write(user.src / "docs" / "c.txt", b"gamma\n")
    packs(user.repo)[-1].unlink()  # big.bin and the docs are lost; c.txt was never backed up
    dry = user.json("repair", "snapshots", "--dry-run")
    assert dry[0]["snapshot"] is None and sorted(dry[0]["dropped"]) == sorted(
        str(user.src / n) for n in ("big.bin", "docs/a.txt", "docs/b.txt")
    )
    fixed = user.json("repair", "snapshots")
    new = fixed[0]["snapshot"]
    listed = {s["id"]: s for s in user.snapshots()}
    assert user.sid in listed and "repaired" in listed[new]["tags"]
    assert listed[new]["retention"]["mode"] == "governance"  # locked as its original
    assert [s["id"] for s in user.snapshots()][-1] == new  # it takes the original's place as latest
    user.run("restore", "latest", "--target", tmp_path / "r", "--verify")
    assert sorted(os.listdir(restored_root(tmp_path / "r", user.src))) == [b"docs"]
    r = user.run("check", "--read-data", expect=20)  # the original still lacks its data, and says so
    assert f"repaired as {new[:8]}" in r.stderr
    events = [e for e in user.json("audit", "log") if e["type"] == "repair"]
    assert events[-1]["details"]["original"] == user.sid and events[-1]["details"]["dropped"] == 3
    assert user.json("repair", "snapshots", new)[0]["dropped"] == []  # nothing more to leave out


def index_files(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / "index").rglob("*") if p.is_file())


def test_the_index_is_made_again_from_the_packs(user, tmp_path):
    for f in index_files(user.repo):
        writable(f).write_bytes(b"garbage over an index file\n")
    user.run("check", expect=20)
    user.run("prune", "--dry-run", expect=20)  # prune refuses while an index file cannot be read
    dry = user.json("repair", "index", "--dry-run")
    assert len(dry["packs_indexed"]) == 2 and dry["index_files"] == [] and len(dry["superseded"]) == 1
    out = user.json("repair", "index")
    assert len(out["packs_indexed"]) == 2 and len(out["index_files"]) == 1 and out["superseded"] == dry["superseded"]
    assert len(index_files(user.repo)) == 2, "the unreadable index file stays; a new one is added"
    doc = user.json("check", "--read-data", quiet=False)
    assert doc["ok"] and any("superseded" in w for w in doc["warnings"]), doc
    user.run("prune", "--dry-run")
    user.run("restore", user.sid, "--target", tmp_path / "r", "--verify")
    assert user.json("repair", "index")["packs_indexed"] == []  # nothing left to index
    # bytes written over the superseded file afterwards are not superseded
    old = next(f for f in index_files(user.repo) if f.read_bytes().startswith(b"garbage"))
    old.write_bytes(b"other garbage\n")
    r = user.run("check", expect=20)
    assert old.name in r.stderr and "superseded" not in r.stderr.split(old.name)[1].split("\n")[0]


def test_a_pack_whose_header_is_damaged_is_named_and_healed_by_repair_packs(user, tmp_path):
    for f in index_files(user.repo):
        f.unlink()
    data_pack = packs(user.repo)[-1]
    size = data_pack.stat().st_size
    flip(data_pack, size - 20)  # inside the header envelope
    out = user.json("repair", "index", expect=20, quiet=False)
    assert len(out["packs_indexed"]) == 1 and len(out["damaged"]) == 1 and data_pack.name in out["damaged"][0]
    user.json("repair", "packs", "--from-path", user.src)
    assert user.json("check", "--read-data", quiet=False)["ok"]
    user.run("restore", user.sid, "--target", tmp_path / "r", "--verify")
