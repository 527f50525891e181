"""The same attacks on the in-memory backend, through the library: objects planted through the
storage API (as a writer holding storage rights would), then prune, forget and the log's replay."""

from __future__ import annotations

import uuid

import pytest

from amber.clock import to_iso
from amber.errors import IntegrityError, Locked
from amber.format import layout
from amber.repo import records as rec

from .helpers import DAY, backup, init_repo, make_source, rand, restored, tree_digest


@pytest.fixture
def mem(clock):
    return init_repo(f"memory:{uuid.uuid4().hex}", clock)


def listing(repo) -> dict:
    return {p: sorted(i.key for i in repo.storage.list(p)) for p in ("snapshots/", "data/", "index/")}


def replace(repo, key: str, data: bytes) -> None:
    repo.storage.delete(key)
    repo.storage.put(key, data)


def test_prune_refuses_over_garbage_snapshot_and_index(mem, clock, tmp_path):
    src = make_source(tmp_path / "src", {"a.bin": rand(50_000, "a")})
    s1 = backup(mem, src, clock=clock)
    want = tree_digest(src)
    make_source(src, {"b.bin": rand(50_000, "b")})
    backup(mem, src, clock=clock)
    mem.prune()
    for key in (layout.snapshot(s1.id), listing(mem)["index/"][0]):
        original = mem.storage.get(key)
        replace(mem, key, b"planted garbage" * 4)
        before = listing(mem)
        for dry_run in (True, False):
            with pytest.raises(IntegrityError) as e:
                mem.prune(dry_run=dry_run)
            assert key in str(e.value) and "nothing was deleted" in str(e.value)
        assert listing(mem) == before
        replace(mem, key, original)
    mem.prune()
    mem.refresh()
    mem.restore(mem.find_snapshot(s1.id), str(tmp_path / "t"))
    assert tree_digest(restored(tmp_path / "t", src)) == want


def test_a_forged_release_record_and_a_forged_forget_event(mem, clock, tmp_path):
    src = make_source(tmp_path / "src", {"a.bin": rand(20_000, "a")})
    held = backup(mem, src, clock=clock)
    locked = backup(mem, src, clock=clock, seconds=DAY)
    mem.hold(held, "case")
    ev = {"v": 1, "type": "release", "snapshot": held.id, "time": to_iso(clock.now()), "key": mem.key_id[:16]}
    name, raw = mem.records.seal(rec.EVENT, ev)
    mem.storage.put(layout.event(held.id, name), raw)
    mem.refresh()
    with pytest.raises(Locked, match="legal hold"):
        mem.forget([held])
    assert mem.protection(held).hold is True
    forged = mem.audit.append("forget", locked.id, None, bypass_governance=False)
    errors = mem.verify_audit_log(remember=False).errors
    assert any(f"{layout.event(held.id, name)}: a release of snapshot {held.short_id}" in e for e in errors), errors
    assert any(f"was forgotten (event {forged['seq']}" in e and "before the end" in e for e in errors), errors
