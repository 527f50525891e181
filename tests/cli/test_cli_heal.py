"""Damage heals by adding: a damaged blob is recorded, the next backup stores it again, readers
take the good copy, and `check` tells healed damage from damage not yet healed.

Every test damages the repository the way bit rot or an attacker would (bytes changed in a
pack file, objects written under `damage/`), then runs the commands a user would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli_helpers import PASSWORD, environment, flip_bit, packs, truncate, write

pytestmark = pytest.mark.subprocess


@pytest.fixture
def damaged(repo, tmp_path):
    """A snapshot of a small tree: `data_pack` holds the blobs of `victim` and `other.txt`,
    `tree_pack` its folder listings. Each test damages them its own way."""
    src = tmp_path / "src"
    victim_data = os.urandom(256 << 10)
    write(src / "d" / "victim.bin", victim_data)
    write(src / "other.txt", b"small and far away\n")
    repo.sid = repo.backup(src)["snapshot_id"]
    ordered = sorted(packs(repo.repo), key=lambda p: p.stat().st_size)
    repo.src, repo.victim, repo.victim_data = src, str(src / "d" / "victim.bin"), victim_data
    repo.data_pack, repo.tree_pack = ordered[-1], ordered[0]
    return repo


def _damage_records(repo) -> list[Path]:
    folder = Path(repo.repo) / "damage"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _restore_matches(repo, sid: str, target: Path) -> None:
    repo.run("restore", sid, "--target", target, "--verify")
    restored = target / repo.victim.lstrip("/")
    assert restored.read_bytes() == repo.victim_data
    assert (target / str(repo.src / "other.txt").lstrip("/")).read_bytes() == b"small and far away\n"


def test_a_flipped_byte_is_recorded_then_healed_by_the_next_backup(damaged, tmp_path):
    repo = damaged
    flip_bit(repo.data_pack, repo.data_pack.stat().st_size // 2, 5)

    r = repo.run("check", "--read-data", expect=20)
    assert repo.data_pack.name in r.stderr and repo.victim in r.stderr, r
    assert len(_damage_records(repo)) == 1, "check --read-data must record what it found"
    doc = repo.json("check", "--read-data", expect=20, quiet=False)
    assert doc["damage_unhealed"] and doc["damage_healed"] == []
    assert {d["pack"] for d in doc["damage_unhealed"]} == {repo.data_pack.name}
    assert doc["damage_recorded"] == 0, "damage already recorded is not recorded twice"
    assert len(_damage_records(repo)) == 1

    # the source is unchanged: without the record the files cache would skip the file
    again = repo.backup(repo.src)
    assert again["bytes_added"] > 200 << 10, again
    # read and stored again, yet counted against the parent: the same content, so unmodified
    assert again["files_changed"] == 0 and again["files_new"] == 0, again

    doc = repo.json("check", "--read-data", quiet=False)
    assert doc["ok"] and doc["errors"] == [] and doc["damage_unhealed"] == []
    healed = doc["damage_healed"]
    assert healed and {h["pack"] for h in healed} == {repo.data_pack.name}
    assert all(h["copy"] != repo.data_pack.name for h in healed)
    assert repo.data_pack.name not in doc["damaged_packs"]
    r = repo.run("check", "--read-data")
    assert "healed" in r.stderr and repo.data_pack.name in r.stderr, r
    repo.run("check")
    checks = [e["details"] for e in repo.json("audit", "log") if e["type"] == "check"]
    assert checks[0]["damage_recorded"] >= 1 and checks[0]["damage_unhealed"] >= 1
    assert checks[-1]["damage_healed"] >= 1 and checks[-1]["damage_unhealed"] == 0 and checks[-1]["ok"]

    # the old snapshot reads the good copy
    _restore_matches(repo, repo.sid, tmp_path / "restored-old")
    assert repo.run("cat", repo.sid, repo.victim).stdout == repo.victim_data

    # a third backup stores nothing again: healed stays healed
    assert repo.backup(repo.src)["bytes_added"] < 64 << 10

    # prune keeps the good copy and moves the damaged pack's good blobs out: the damaged pack goes,
    # and nothing the user backed up is lost
    pruned = repo.json("prune")
    assert repo.data_pack.name in pruned["packs_repacked"] and repo.data_pack.name in pruned["packs_deleted"]
    assert not repo.data_pack.exists()
    _restore_matches(repo, repo.sid, tmp_path / "restored-after-prune")
    doc = repo.json("check", "--read-data", quiet=False)
    assert doc["ok"] and doc["damage_healed"] == [] and doc["damage_unhealed"] == [], doc
    assert repo.backup(repo.src)["bytes_added"] < 64 << 10


def test_a_restore_that_meets_damage_records_it_and_the_backup_heals_it(damaged, tmp_path):
    repo = damaged
    flip_bit(repo.data_pack, repo.data_pack.stat().st_size // 2, 1)
    r = repo.run("restore", repo.sid, "--target", tmp_path / "failed", "--verify", expect=20)
    assert repo.victim in r.stderr, r
    assert len(_damage_records(repo)) == 1, "the restore must record the damaged blob"

    assert repo.backup(repo.src)["bytes_added"] > 200 << 10
    _restore_matches(repo, repo.sid, tmp_path / "restored")
    assert repo.json("check", "--read-data", quiet=False)["ok"]


def test_a_cat_that_meets_damage_records_it(damaged):
    repo = damaged
    flip_bit(repo.data_pack, repo.data_pack.stat().st_size // 2, 2)
    repo.run("cat", repo.sid, repo.victim, expect=20)
    assert len(_damage_records(repo)) == 1
    assert repo.backup(repo.src)["bytes_added"] > 200 << 10
    assert repo.run("cat", repo.sid, repo.victim).stdout == repo.victim_data


def test_a_damaged_folder_listing_heals_the_same_way(damaged, tmp_path):
    repo = damaged
    flip_bit(repo.tree_pack, 40)
    r = repo.run("check", "--read-data", expect=20)
    assert repo.tree_pack.name in r.stderr or repo.tree_pack.name[:16] in r.stderr, r
    assert _damage_records(repo)

    assert repo.backup(repo.src)["bytes_added"] > 0
    doc = repo.json("check", "--read-data", quiet=False)
    assert doc["ok"] and doc["damage_healed"], doc
    assert {h["pack"] for h in doc["damage_healed"]} == {repo.tree_pack.name}
    _restore_matches(repo, repo.sid, tmp_path / "restored")


def test_a_deleted_pack_heals_too(damaged, tmp_path):
    repo = damaged
    os.remove(repo.data_pack)
    repo.run("check", expect=20)  # structure alone sees a missing pack, and records its blobs
    assert _damage_records(repo)
    assert repo.backup(repo.src)["bytes_added"] > 200 << 10
    doc = repo.json("check", "--read-data", quiet=False)
    assert doc["ok"] and not doc["damage_unhealed"], doc
    _restore_matches(repo, repo.sid, tmp_path / "restored")


def test_a_damaged_pack_header_heals_by_storing_its_blobs_again(damaged, tmp_path):
    repo = damaged
    flip_bit(repo.data_pack, repo.data_pack.stat().st_size - 20)  # inside the sealed header
    doc = repo.json("check", "--read-data", expect=20, quiet=False)
    assert {d["pack"] for d in doc["damage_unhealed"]} == {repo.data_pack.name}, doc
    _restore_matches(repo, repo.sid, tmp_path / "still-readable")  # the blobs themselves are intact
    assert repo.backup(repo.src)["bytes_added"] > 200 << 10
    doc = repo.json("check", "--read-data", quiet=False)
    assert doc["ok"] and doc["damage_healed"] and not doc["damage_unhealed"], doc
    _restore_matches(repo, repo.sid, tmp_path / "restored")


def test_a_deleted_tree_pack_heals_what_a_backup_can_store_again(damaged, tmp_path):
    """Folder listings that are the same today are stored again; those of folders that changed
    since (the snapshot's parents, such as /tmp) cannot be, and stay reported, never hidden."""
    repo = damaged
    os.remove(repo.tree_pack)
    doc = repo.json("check", expect=20, quiet=False)
    lost = {d["blob"] for d in doc["damage_unhealed"]}
    assert repo.backup(repo.src)["bytes_added"] > 0
    doc = repo.json("check", "--read-data", expect=None, quiet=False)
    healed = {d["blob"] for d in doc["damage_healed"]}
    still = {d["blob"] for d in doc["damage_unhealed"]}
    assert healed and healed | still == lost and not healed & still
    assert bool(still) == (not doc["ok"])
    target = tmp_path / "latest"
    repo.run("restore", "latest", "--target", target, "--verify")
    assert (target / repo.victim.lstrip("/")).read_bytes() == repo.victim_data


def test_a_truncated_pack_heals_too(damaged, tmp_path):
    repo = damaged
    truncate(repo.data_pack, repo.data_pack.stat().st_size // 3)
    r = repo.run("check", "--read-data", expect=20)
    assert repo.victim in r.stderr, r
    assert repo.backup(repo.src)["bytes_added"] > 200 << 10
    doc = repo.json("check", "--read-data", quiet=False)
    assert doc["ok"] and doc["damage_healed"] and not doc["damage_unhealed"], doc
    _restore_matches(repo, repo.sid, tmp_path / "restored")


def _seal_damage_record(repo, doc: dict) -> str:
    """A damage record sealed with the repository's real keys, as an insider would plant it."""
    from amber.format import layout
    from amber.repo import damage
    from amber.repository import Repository

    with environment(repo.env()):
        r = Repository.open(str(repo.repo), PASSWORD)
        try:
            return r.records.put(damage.DAMAGE, doc, layout.damage_record)
        finally:
            r.close()


def _content_of(repo) -> str:
    from amber.repository import Repository

    with environment(repo.env()):
        r = Repository.open(str(repo.repo), PASSWORD)
        try:
            return r.node_at(r.find_snapshot(repo.sid), repo.victim)["content"][0]
        finally:
            r.close()


@pytest.mark.parametrize(
    "junk",
    [
        {"v": 1, "time": "2026-01-01T00:00:00Z", "found_by": "x", "damaged": "everything"},
        {"v": 1, "time": "2026-01-01T00:00:00Z", "found_by": "x", "damaged": [{"blob": "zz", "pack": 7}]},
        {"v": 2},
        {"v": 1, "time": "yesterday", "found_by": "x", "damaged": []},
    ],
)
def test_a_planted_junk_record_is_reported_and_stops_nothing(damaged, tmp_path, junk):
    repo = damaged
    name = _seal_damage_record(repo, junk)
    r = repo.run("check", expect=20)
    assert f"damage/{name}" in r.stderr, r
    assert repo.backup(repo.src)["bytes_added"] < 64 << 10  # nothing stored again
    _restore_matches(repo, repo.sid, tmp_path / "restored")


def test_unsealed_junk_under_damage_is_reported_and_stops_nothing(damaged, tmp_path):
    repo = damaged
    folder = Path(repo.repo) / "damage"
    folder.mkdir()
    (folder / ("ab" * 32)).write_bytes(b"\x01\x01\x06" + os.urandom(100))
    (folder / "not-a-record").write_bytes(b"{}")
    r = repo.run("check", expect=20)
    assert "damage/" + "ab" * 32 in r.stderr and "damage/not-a-record" in r.stderr, r
    repo.backup(repo.src)
    _restore_matches(repo, repo.sid, tmp_path / "restored")
    # prune decides which copy of a blob is live by the damage records: it fails safe
    r = repo.run("prune", expect=20)
    assert "damage/not-a-record" in r.stderr and "nothing was deleted" in r.stderr, r


def test_a_record_naming_a_healthy_blob_costs_one_more_copy_and_nothing_else(damaged, tmp_path):
    repo = damaged
    blob = _content_of(repo)
    doc = {
        "v": 1,
        "time": "2026-01-01T00:00:00Z",
        "found_by": "an insider",
        "damaged": [{"blob": blob, "pack": repo.data_pack.name, "problem": "made up"}],
    }
    _seal_damage_record(repo, doc)
    # reading every byte shows the copy is good: a warning, not an error
    r = repo.run("check", "--read-data")
    assert "reads correctly" in r.stderr, r
    assert repo.backup(repo.src)["bytes_added"] > 200 << 10  # stored again: the record is believed
    doc = repo.json("check", "--read-data", quiet=False)
    assert doc["ok"] and doc["damage_unhealed"] == [], doc
    assert any("reads correctly" in w for w in doc["warnings"])
    _restore_matches(repo, repo.sid, tmp_path / "restored")
    repo.run("prune")
    _restore_matches(repo, repo.sid, tmp_path / "restored-after-prune")
    assert repo.json("check", "--read-data", quiet=False)["ok"]


def test_a_repository_that_refuses_the_record_warns_and_keeps_the_result(damaged, tmp_path):
    repo = damaged
    flip_bit(repo.data_pack, repo.data_pack.stat().st_size // 2, 4)
    # storage that takes no new object (a read-only mount, an auditor's token)
    blocker = Path(repo.repo) / "damage"
    blocker.write_bytes(b"")  # a file where the folder would go: every put under damage/ fails
    r = repo.run("check", "--read-data", expect=20)
    assert "could not be recorded" in r.stderr, r
    assert "Traceback" not in r.stderr
    blocker.unlink()


def test_a_healed_blob_keeps_the_lock_and_hold_of_the_snapshots_that_use_it(repo, tmp_path):
    src = tmp_path / "src"
    data = os.urandom(256 << 10)
    write(src / "victim.bin", data)
    sid = repo.backup(src, args=("--retain", "60d"))["snapshot_id"]
    repo.run("hold", sid, "--reason", "litigation")
    (pack,) = [p for p in packs(repo.repo) if p.stat().st_size > 200 << 10]
    flip_bit(pack, pack.stat().st_size // 2, 6)
    repo.run("check", "--read-data", expect=20)

    # the healing backup is locked for a day only: its new pack must still carry 60 days and the hold
    assert repo.backup(src, args=("--retain", "1d"))["bytes_added"] > 200 << 10
    doc = repo.json("check", "--read-data", quiet=False)
    assert doc["ok"] and doc["damage_healed"], doc
    assert not any("protection" in w and "shorter" in w for w in doc["warnings"]), doc
    target = tmp_path / "restored"
    repo.run("restore", sid, "--target", target, "--verify")
    assert (target / str(src / "victim.bin").lstrip("/")).read_bytes() == data
