"""prune after forget: only unused, unprotected data goes, and never from under a backup."""

from __future__ import annotations

import pytest

from amber.repository import Repository
from amber.retention.prune import RUN_TIMEOUT, start_run
from amber.storage.base import GOVERNANCE, StorageWrapper

from .helpers import DAY, backup, data_keys, make_source, open_repo, pack_of_file, packs_of, rand, restored, tree_digest

A, SHARED, B, C = rand(40_000, "a"), rand(40_000, "shared"), rand(40_000, "b"), rand(40_000, "c")


def assert_restores(repo, snap, src_digest, target) -> None:
    repo.restore(snap, str(target))
    got = tree_digest(restored(target, snap.paths[0]))
    assert got == src_digest


@pytest.fixture
def history(repo, clock, tmp_path):
    """s1: a + shared; s2: shared + b (same folder, later); s3: c elsewhere, governance-locked a day."""
    src = tmp_path / "src"
    make_source(src, {"a.bin": A, "shared.bin": SHARED})
    s1 = backup(repo, str(src), clock=clock)
    d1 = tree_digest(src)
    make_source(src, {"shared.bin": SHARED, "b.bin": B})
    s2 = backup(repo, str(src), clock=clock)
    d2 = tree_digest(src)
    src3 = make_source(tmp_path / "src3", {"c.bin": C})
    s3 = backup(repo, src3, clock=clock, mode=GOVERNANCE, seconds=DAY)
    d3 = tree_digest(src3)
    return {"s1": s1, "s2": s2, "s3": s3, "d1": d1, "d2": d2, "d3": d3, "src": str(src)}


def test_prune_deletes_unused_packs_and_repacks_partly_used_ones(repo, repo_path, clock, history, tmp_path):
    s1, s2, s3 = history["s1"], history["s2"], history["s3"]
    mixed = pack_of_file(repo, s1, f"{history['src']}/a.bin")
    assert mixed == pack_of_file(repo, s1, f"{history['src']}/shared.bin"), "a and shared share a pack"
    only_s1 = packs_of(repo, s1) - packs_of(repo, s2) - packs_of(repo, s3) - {mixed}
    assert only_s1, "s1's trees are in a pack of their own"
    still_needed = packs_of(repo, s2) | packs_of(repo, s3)
    before = data_keys(repo)

    repo.forget([s1])
    clock.advance(60)
    rep = repo.prune()

    assert rep.waiting_for_runs == []
    assert rep.packs_locked == {}
    assert rep.packs_repacked == [mixed.rsplit("/", 1)[1]]
    after = data_keys(repo)
    deleted = before - after
    assert deleted == only_s1 | {mixed}, "the unused packs and the repacked one are gone"
    assert {k.rsplit("/", 1)[1] for k in deleted} == set(rep.packs_deleted)
    assert rep.bytes_freed > 0
    assert still_needed - {mixed} <= after
    assert len(after - before) == 1, "the live part of the mixed pack went to one new pack"
    fresh = open_repo(repo_path, clock)
    assert pack_of_file(fresh, s2, f"{history['src']}/shared.bin") in after - before
    check = fresh.check(read_data=True)
    assert check.ok, check.errors
    assert_restores(fresh, fresh.find_snapshot(s2.id), history["d2"], tmp_path / "t2")
    assert_restores(fresh, fresh.find_snapshot(s3.id), history["d3"], tmp_path / "t3")
    # nothing left to do
    again = open_repo(repo_path, clock).prune()
    assert again.packs_deleted == [] and again.packs_repacked == []
    assert data_keys(fresh) == after
    # and the client that pruned sees the repository as it is now
    check = repo.check(read_data=True)
    assert check.ok, check.errors
    assert_restores(repo, s2, history["d2"], tmp_path / "t2-pruner")


def test_prune_is_a_no_op_when_every_pack_is_used(repo, clock, history):
    before = data_keys(repo)
    rep = repo.prune()
    assert rep.packs_deleted == [] and rep.packs_repacked == [] and rep.packs_locked == {}
    assert data_keys(repo) == before
    assert repo.check(read_data=True).ok


def test_prune_keeps_packs_still_locked_and_deletes_them_once_expired(repo, repo_path, clock, history, tmp_path):
    s2, s3 = history["s2"], history["s3"]
    s3_packs = packs_of(repo, s3)
    repo.forget([s3], bypass_governance=True)  # the snapshot goes, its data stays locked in storage
    clock.advance(60)
    rep = repo.prune()
    assert {f"data/{p[:2]}/{p}" for p in rep.packs_locked} == s3_packs
    assert all("governance retention until" in why for why in rep.packs_locked.values())
    assert s3_packs <= data_keys(repo)
    assert rep.packs_deleted == []
    assert repo.check(read_data=True).ok

    clock.advance(DAY)
    fresh = open_repo(repo_path, clock)
    rep = fresh.prune()
    assert rep.packs_locked == {}
    assert {f"data/{p[:2]}/{p}" for p in rep.packs_deleted} == s3_packs
    assert not (s3_packs & data_keys(fresh))
    other = open_repo(repo_path, clock)
    check = other.check(read_data=True)
    assert check.ok, check.errors
    assert_restores(other, other.find_snapshot(s2.id), history["d2"], tmp_path / "t2")
    check = fresh.check(read_data=True)
    assert check.ok, f"the client that pruned: {check.errors}"


def test_a_partly_used_locked_pack_is_neither_repacked_nor_deleted(repo, repo_path, clock, tmp_path):
    src = tmp_path / "src"
    make_source(src, {"a.bin": A, "shared.bin": SHARED})
    s1 = backup(repo, str(src), clock=clock, mode=GOVERNANCE, seconds=DAY)
    make_source(src, {"shared.bin": SHARED, "b.bin": B})
    s2 = backup(repo, str(src), clock=clock)
    mixed = pack_of_file(repo, s1, f"{src}/a.bin")
    repo.forget([s1], bypass_governance=True)
    before = data_keys(repo)
    rep = repo.prune()
    assert mixed.rsplit("/", 1)[1] in rep.packs_locked
    assert rep.packs_repacked == [] and rep.packs_deleted == []
    assert data_keys(repo) == before
    assert open_repo(repo_path, clock).check(read_data=True).ok
    assert_restores(repo, s2, tree_digest(src), tmp_path / "t")


def test_prune_dry_run_deletes_nothing(repo, repo_path, clock, history):
    repo.forget([history["s1"]])
    before = data_keys(repo)
    index_before = {i.key for i in repo.storage.list("index/")}
    rep = repo.prune(dry_run=True)
    assert rep.dry_run and rep.packs_planned and rep.packs_repacked and rep.bytes_freed > 0
    assert rep.packs_deleted == []
    assert data_keys(repo) == before
    assert {i.key for i in repo.storage.list("index/")} == index_before
    assert list(repo.storage.list("prune/")) == []


# -- the race with backups ----------------------------------------------------------------


def test_prune_waits_while_a_backup_is_running(repo, repo_path, clock, history):
    repo.forget([history["s1"]])
    clock.advance(60)
    run = start_run(open_repo(repo_path, clock))  # a backup that started and has no snapshot yet
    before = data_keys(repo)
    rep = repo.prune()
    assert rep.waiting_for_runs == [run]
    assert rep.packs_deleted == [] and rep.bytes_freed == 0
    assert before <= data_keys(repo), "nothing is deleted while a backup may depend on it"
    assert rep.packs_planned
    assert [i.key for i in repo.storage.list("prune/") if i.key.startswith("prune/plan-")]
    assert open_repo(repo_path, clock).check(read_data=True).ok

    clock.advance(RUN_TIMEOUT.total_seconds() - 120)
    rep = open_repo(repo_path, clock).prune()
    assert rep.waiting_for_runs == [run] and rep.packs_deleted == []
    assert before <= data_keys(repo)

    clock.advance(180)  # the run is older than RUN_TIMEOUT: presumed dead
    fresh = open_repo(repo_path, clock)
    rep = fresh.prune()
    assert rep.waiting_for_runs == []
    assert rep.packs_deleted
    assert not (set(rep.packs_deleted) & {k.rsplit("/", 1)[1] for k in packs_of(fresh, history["s2"])})
    assert not {i.key for i in fresh.storage.list("prune/") if i.key.startswith("prune/plan-")}
    assert list(fresh.storage.list("running/")) == []
    check = open_repo(repo_path, clock).check(read_data=True)
    assert check.ok, check.errors


def test_prune_proceeds_once_the_running_backup_made_its_snapshot(repo, repo_path, clock, history, tmp_path):
    repo.forget([history["s1"]])
    clock.advance(60)
    other = open_repo(repo_path, clock)
    run = start_run(other)
    rep = repo.prune()
    assert rep.waiting_for_runs == [run]
    # a real backup finishing names its own run; the hand-made marker above is still open
    clock.advance(RUN_TIMEOUT.total_seconds() + 60)
    src = make_source(tmp_path / "late", {"late.bin": rand(10_000, "late")})
    backup(open_repo(repo_path, clock), src, clock=clock)
    rep = open_repo(repo_path, clock).prune()
    assert rep.waiting_for_runs == [] and rep.packs_deleted


@pytest.mark.parametrize("client", ["another client", "the same repository object"])
def test_a_backup_after_a_prune_plan_does_not_deduplicate_against_planned_packs(
    repo, repo_path, clock, tmp_path, client
):
    src = make_source(tmp_path / "src", {"x.bin": rand(50_000, "x")})
    s1 = backup(repo, src, clock=clock)
    planned = packs_of(repo, s1)
    repo.forget([s1])
    clock.advance(60)
    start_run(open_repo(repo_path, clock))  # keeps the plan waiting
    rep = repo.prune()
    assert rep.waiting_for_runs and {f"data/{p[:2]}/{p}" for p in rep.packs_planned} >= planned

    writer = open_repo(repo_path, clock) if client == "another client" else repo
    s2 = backup(writer, src, clock=clock)  # the same file again
    assert not (packs_of(writer, s2) & planned), "the new snapshot must not depend on planned packs"

    clock.advance(RUN_TIMEOUT.total_seconds() + 60)
    rep = open_repo(repo_path, clock).prune()
    assert rep.waiting_for_runs == []
    fresh = open_repo(repo_path, clock)
    check = fresh.check(read_data=True)
    assert check.ok, check.errors
    assert_restores(fresh, fresh.find_snapshot(s2.id), tree_digest(src), tmp_path / "t")


def test_a_long_lived_client_never_reuses_data_another_client_pruned(repo, repo_path, clock, tmp_path):
    """One Repository object backs up, another client forgets and prunes, then the first backs
    up the same files again: its new snapshot must not name the deleted packs."""
    src = make_source(tmp_path / "src", {"x.bin": rand(50_000, "x"), "y.txt": b"why\n" * 100})
    s1 = backup(repo, src, clock=clock)
    admin = open_repo(repo_path, clock)
    admin.forget([admin.find_snapshot(s1.id)])
    clock.advance(60)
    rep = admin.prune()
    assert rep.packs_deleted
    s2 = backup(repo, src, clock=clock)
    fresh = open_repo(repo_path, clock)
    check = fresh.check(read_data=True)
    assert check.ok, check.errors
    assert_restores(fresh, fresh.find_snapshot(s2.id), tree_digest(src), tmp_path / "t")


def test_prune_by_a_client_that_loaded_the_index_before_another_clients_backup(repo, repo_path, clock, tmp_path):
    """A Repository object that loaded the index earlier prunes after another client made a
    snapshot: that snapshot's new data is not mistaken for garbage, and prune does not fail."""
    src = make_source(tmp_path / "src", {"x.bin": rand(50_000, "x")})
    s1 = backup(repo, src, clock=clock)
    repo.forget([s1])
    src2 = make_source(tmp_path / "src2", {"z.bin": rand(50_000, "z")})
    s2 = backup(open_repo(repo_path, clock), src2, clock=clock)
    rep = repo.prune()
    assert rep.waiting_for_runs == []
    fresh = open_repo(repo_path, clock)
    check = fresh.check(read_data=True)
    assert check.ok, check.errors
    assert_restores(fresh, fresh.find_snapshot(s2.id), tree_digest(src2), tmp_path / "t")


class BackupDuringPrune(StorageWrapper):
    """Runs `action` once, when prune (through this storage) reads the prune records for its
    second phase: after it decided no backup is running, before it reads the snapshots again."""

    def __init__(self, inner, action) -> None:
        super().__init__(inner)
        self.action = action
        self.reads = 0

    def list(self, prefix=""):
        if prefix == "prune/":
            self.reads += 1
            if self.reads == 2 and self.action is not None:
                action, self.action = self.action, None
                action()
        return self.inner.list(prefix)


def test_a_backup_finishing_during_prune_keeps_its_data_and_prune_completes(repo, repo_path, clock, tmp_path):
    src = make_source(tmp_path / "src", {"x.bin": rand(50_000, "x")})
    s1 = backup(repo, src, clock=clock)
    repo.forget([s1])
    clock.advance(60)
    src2 = make_source(tmp_path / "src2", {"z.bin": rand(50_000, "z")})
    made = []

    def concurrent_backup():
        made.append(backup(open_repo(repo_path, clock), src2))

    pruner = open_repo(repo_path, clock)
    pruner = Repository(
        BackupDuringPrune(pruner.storage, concurrent_backup), pruner.keys, pruner.config, pruner.key_id, clock
    )
    rep = pruner.prune()
    assert made, "the concurrent backup ran"
    assert rep.packs_deleted
    fresh = open_repo(repo_path, clock)
    check = fresh.check(read_data=True)
    assert check.ok, check.errors
    assert_restores(fresh, fresh.find_snapshot(made[0].id), tree_digest(src2), tmp_path / "t")
