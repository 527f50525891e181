"""Retention locks, legal holds, forget and prune through the real `amber` command.

Exit 30 means "refused by immutability", with what is protected and until when
on stderr. Every run is checked for tracebacks by the helpers.
"""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest

from cli_helpers import make_source, packs, restored_root, tree_state

UTC = dt.UTC


def rnd(n: int, seed: str) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def snap_doc(repo, sid: str) -> dict:
    docs = {d["id"]: d for d in repo.snapshots()}
    return docs[sid]


def data_listing(repo) -> list[str]:
    return [str(p) for p in packs(repo.repo)]


@pytest.fixture
def src(tmp_path) -> str:
    return make_source(tmp_path / "src", {"a.bin": rnd(50_000, "a"), "notes.txt": b"retention\n" * 100})


# -- a short lock, then its expiry ------------------------------------------------------------


def test_a_retained_snapshot_cannot_be_forgotten_until_it_expires(repo, src):
    sid = repo.backup(src, args=("--retain", "2s"))["snapshot_id"]
    doc = snap_doc(repo, sid)
    assert doc["retention"]["mode"] == "governance"
    until = doc["retention"]["until"]
    assert parse(until) > parse(doc["time"])
    r = repo.run("forget", sid, expect=30)
    assert "governance" in r.stderr and until in r.stderr and sid[:8] in r.stderr
    assert [d["id"] for d in repo.snapshots()] == [sid]
    wait = (parse(until) - dt.datetime.now(UTC)).total_seconds() + 0.3
    assert 0 < wait < 3.5
    time.sleep(wait)
    repo.run("forget", sid)
    assert repo.snapshots() == []


# -- compliance ------------------------------------------------------------------------------


def test_compliance_cannot_be_shortened_downgraded_or_bypassed(repo, src):
    sid = repo.backup(src, args=("--retain", "2h", "--retention-mode", "compliance"))["snapshot_id"]
    ret = snap_doc(repo, sid)["retention"]
    assert ret["mode"] == "compliance"
    r = repo.run("lock", sid, "--for", "30m", expect=30)
    assert "compliance" in r.stderr and ret["until"] in r.stderr
    r = repo.run("lock", sid, "--for", "3h", "--mode", "governance", expect=30)
    assert "compliance" in r.stderr
    repo.run("lock", sid, "--for", "30m", "--bypass-governance", expect=30)
    r = repo.run("forget", sid, "--bypass-governance", expect=30)
    assert "compliance" in r.stderr and ret["until"] in r.stderr
    assert snap_doc(repo, sid)["retention"] == ret
    # extending is allowed
    repo.run("lock", sid, "--for", "3h")
    new = snap_doc(repo, sid)["retention"]
    assert new["mode"] == "compliance" and parse(new["until"]) > parse(ret["until"])
    repo.run("check", "--read-data")


def test_governance_is_lifted_with_bypass(repo, src):
    sid = repo.backup(src, args=("--retain", "1h"))["snapshot_id"]
    r = repo.run("forget", sid, expect=30)
    assert "--bypass-governance" in r.stderr
    repo.run("forget", sid, "--bypass-governance")
    assert repo.snapshots() == []


def test_lock_an_existing_snapshot(repo, src):
    sid = repo.backup(src)["snapshot_id"]
    assert snap_doc(repo, sid)["retention"] is None
    repo.run("lock", sid[:8], "--for", "1h")
    assert snap_doc(repo, sid)["retention"]["mode"] == "governance"
    repo.run("lock", sid[:8], "--until", "2001-01-01", expect=2)
    repo.run("forget", sid, expect=30)


def test_default_retention_from_init(amber, src):
    amber.run("init", "--default-retention", "1h", "--retention-mode", "compliance")
    sid = amber.backup(src)["snapshot_id"]
    doc = snap_doc(amber, sid)
    assert doc["retention"]["mode"] == "compliance"
    span = parse(doc["retention"]["until"]) - parse(doc["time"])
    assert dt.timedelta(minutes=59) < span <= dt.timedelta(hours=1, seconds=2)
    r = amber.run("forget", sid, "--bypass-governance", expect=30)
    assert "compliance" in r.stderr
    # --retain without a mode takes the repository's default mode
    sid2 = amber.backup(src, args=("--retain", "2h"))["snapshot_id"]
    assert snap_doc(amber, sid2)["retention"]["mode"] == "compliance"


# -- legal holds -----------------------------------------------------------------------------


def test_hold_and_release(repo, src):
    sid = repo.backup(src)["snapshot_id"]
    repo.run("hold", sid, "--reason", "case 2031-7 (discovery)")
    doc = snap_doc(repo, sid)
    assert doc["legal_hold"] is True
    r = repo.run("forget", sid, expect=30)
    assert "legal hold" in r.stderr and "case 2031-7" in r.stderr
    repo.run("forget", sid, "--bypass-governance", expect=30)
    repo.run("hold", sid, expect=2)  # a hold needs a reason
    repo.run("release", sid)
    assert snap_doc(repo, sid)["legal_hold"] is False
    repo.run("forget", sid)
    assert repo.snapshots() == []


# -- forget by policy, then prune ------------------------------------------------------------


def test_forget_policy_lists_locked_snapshots(repo, src):
    s1 = repo.backup(src, args=("--retain", "1h"))["snapshot_id"]
    s2 = repo.backup(src)["snapshot_id"]
    s3 = repo.backup(src)["snapshot_id"]
    repo.run("hold", s3, "--reason", "audit")
    s4 = repo.backup(src)["snapshot_id"]
    dry = repo.json("forget", "--keep-last", "1", "--dry-run")
    res = repo.json("forget", "--keep-last", "1")
    for doc in (dry, res):
        assert set(doc["keep"]) == {s1, s3, s4}
        assert set(doc["locked"]) == {s1, s3}
        assert doc["remove"] == [s2]
    assert {d["id"] for d in repo.snapshots()} == {s1, s3, s4}


def test_forget_with_prune_keeps_what_is_kept_intact(repo, tmp_path):
    src = tmp_path / "src"
    shared = rnd(60_000, "shared")
    make_source(src, {"a.bin": rnd(60_000, "a"), "shared.bin": shared})
    s1 = repo.backup(src, args=("--retain", "1h"))["snapshot_id"]
    state1 = tree_state(src)
    make_source(src, {"shared.bin": shared, "b.bin": rnd(60_000, "b")})
    s2 = repo.backup(src)["snapshot_id"]
    make_source(src, {"shared.bin": shared, "c.bin": rnd(60_000, "c")})
    s3 = repo.backup(src)["snapshot_id"]
    state3 = tree_state(src)
    before = set(data_listing(repo))

    res = repo.json("forget", "--keep-last", "1", "--prune")
    assert res["remove"] == [s2] and res["locked"] == [s1]
    assert "prune" in res and res["prune"]["packs_deleted"], res
    after = set(data_listing(repo))
    assert before - after, "prune deleted the data only s2 needed"
    repo.run("check", "--read-data")
    for sid, state in ((s1, state1), (s3, state3)):
        target = tmp_path / f"restore-{sid[:8]}"
        repo.run("restore", sid, "--target", target)
        assert tree_state(restored_root(target, src)) == state


def test_prune_dry_run_deletes_nothing(repo, tmp_path):
    src = make_source(tmp_path / "src", {"a.bin": rnd(60_000, "a")})
    s1 = repo.backup(src)["snapshot_id"]
    make_source(src, {"b.bin": rnd(60_000, "b")})
    repo.backup(src)
    repo.run("forget", s1)
    before = data_listing(repo)
    index_before = sorted(os.listdir(repo.repo / "index"))
    r = repo.run("prune", "--dry-run")
    assert "would delete" in r.out
    doc = repo.json("prune", "--dry-run")
    assert doc["dry_run"] is True and doc["packs_planned"] and doc["packs_deleted"] == []
    assert data_listing(repo) == before
    assert sorted(os.listdir(repo.repo / "index")) == index_before
    assert not (repo.repo / "prune").exists() or not any((repo.repo / "prune").iterdir())
    doc = repo.json("prune")
    assert doc["packs_deleted"]
    assert len(data_listing(repo)) < len(before)
    repo.run("check", "--read-data")


# -- nothing a locked snapshot needs can be deleted through amber -----------------------------


def test_a_key_file_a_locked_snapshot_needs_cannot_be_removed_but_is_revoked(repo, src):
    repo.run("key", "add", env=repo.env(AMBER_NEW_PASSWORD="second password"))
    keys = repo.json("key", "list")
    other = next(k["id"] for k in keys if not k["current"])
    repo.backup(src, args=("--retain", "1h", "--retention-mode", "compliance"))
    r = repo.run("key", "remove", other[:10])
    assert "retention" in r.stderr and "stays until its lock ends" in r.out
    assert {k["id"] for k in repo.json("key", "list")} == {k["id"] for k in keys}
    r = repo.run("snapshots", env=repo.env(AMBER_PASSWORD="second password"), expect=12)
    assert "revoked" in r.stderr


def test_adding_a_key_to_a_locked_repository_keeps_check_clean(repo, src):
    """Every key file is among what a locked snapshot needs: a key added later must be
    protected too, or `check` reports damage that is not there."""
    repo.backup(src, args=("--retain", "1h", "--retention-mode", "compliance"))
    repo.run("check")
    repo.run("key", "add", env=repo.env(AMBER_NEW_PASSWORD="second password"))
    repo.run("check")


def test_prune_leaves_locked_data_alone(repo, src):
    sid = repo.backup(src, args=("--retain", "1h"))["snapshot_id"]
    before = data_listing(repo)
    repo.run("forget", sid, "--bypass-governance")  # the snapshot goes; its data stays locked
    doc = repo.json("prune")
    assert doc["packs_deleted"] == []
    assert len(doc["packs_locked"]) == len(before)
    assert all("retention until" in why for why in doc["packs_locked"].values())
    assert data_listing(repo) == before
