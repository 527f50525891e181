"""Foreign objects in the audit log's namespace, at the library level, on memory and local
storage: the leaves are the valid entries whatever else lies around them, appends take the
first free slot after the last one, writers racing each other and junk planted meanwhile all
land, marks explain objects only as they were, and event times are checked against the
clock."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amber.audit.verifying import CLOCK_TOLERANCE, clock_warnings
from amber.clock import FakeClock, to_iso
from amber.crypto.aead import KIND_LOG
from amber.errors import AlreadyExists, IntegrityError, StorageError, UsageError
from amber.format import layout
from amber.format.canonical import utf8_json
from amber.repository import Repository
from amber.storage.base import StorageWrapper

from audit_helpers import events, init_repo, open_repo

pytestmark = pytest.mark.usefixtures("legacy_log")  # the layout before tiles (tests/audit/test_tiles.py: tiles)

JUNK = b"junk planted under log/\n"


def note(repo, n: int = 0, **extra) -> dict:
    return repo.log_event("check", read_data=False, ok=True, errors=0, n=n, **extra)


def slots(repo) -> list[int]:
    return sorted(s for s in (layout.log_slot(i.key) for i in repo.storage.list(layout.LOG_ENTRIES)) if s is not None)


@pytest.fixture(params=["memory", "local"])
def any_repo(request, tmp_path):
    if request.param == "memory":
        return init_repo(f"memory:{uuid.uuid4().hex}")
    return init_repo(tmp_path / "repo")


def test_junk_between_entries_is_skipped_and_reported(any_repo):
    repo = any_repo
    repo.storage.put(layout.log_entry(1), JUNK)
    repo.storage.put(layout.log_entry(3), JUNK)
    for n in range(3):
        note(repo, n)
    assert [ev["seq"] for ev in events(repo)] == [0, 1, 2, 3]
    assert slots(repo) == [0, 1, 2, 3, 4, 5]
    found = repo.audit.foreign_objects()
    assert [(f.key, f.size, f.marked_by) for f in found] == [
        (layout.log_entry(1), len(JUNK), None),
        (layout.log_entry(3), len(JUNK), None),
    ]
    assert found[0].sha256 == hashlib.sha256(JUNK).hexdigest()
    assert len(repo.audit.unexplained()) == 2
    rep = repo.verify_audit_log()
    assert [e.split(":")[0] for e in rep.errors] == [layout.log_entry(1), layout.log_entry(3)]
    assert rep.size == 4 and rep.checkpoints == 4


def test_marking_explains_an_object_until_its_bytes_change(any_repo):
    repo = any_repo
    key = layout.log_entry(1)
    repo.storage.put(key, JUNK)
    with pytest.raises(UsageError):
        repo.audit.mark_foreign([key], "  ")
    with pytest.raises(UsageError):
        repo.audit.mark_foreign([layout.log_entry(0)], "a valid entry is not foreign")
    [ev] = repo.audit.mark_foreign([key], "examined by the admin")
    assert ev["type"] == "foreign" and ev["seq"] == 1
    assert ev["details"]["objects"] == [
        {
            "key": key,
            "sha256": hashlib.sha256(JUNK).hexdigest(),
            "size": len(JUNK),
            "problem": ev["details"]["objects"][0]["problem"],
        }
    ]
    assert repo.audit.unexplained() == []
    rep = repo.verify_audit_log()
    assert rep.ok, rep.errors
    assert any("known foreign object, marked by event 1: examined by the admin" in w for w in rep.warnings)
    repo.storage.delete(key)
    repo.storage.put(key, JUNK + b"!")  # other bytes at the same name
    assert [m.split(":")[0] for m in repo.audit.unexplained()] == [key]
    assert not repo.verify_audit_log().ok


def test_all_marks_every_unexplained_object_in_batches(any_repo, monkeypatch):
    import amber.audit.foreign as foreign

    monkeypatch.setattr(foreign, "BATCH", 2)
    repo = any_repo
    keys = [layout.log_entry(5), "log/x", "log/checkpoints/y", layout.log_entry(7), "log/entries/z"]
    for key in keys:
        repo.storage.put(key, JUNK)
    evs = repo.audit.mark_foreign(None, "all examined")
    assert [len(ev["details"]["objects"]) for ev in evs] == [2, 2, 1]
    assert repo.audit.unexplained() == []
    assert repo.audit.mark_foreign(None, "again") == []
    assert repo.verify_audit_log().ok


def test_a_copy_of_an_entry_is_foreign_wherever_it_is_put(any_repo):
    repo = any_repo
    note(repo, 1)
    entry = repo.storage.get(layout.log_entry(1))
    for slot in (2, 9, 10**12 - 1):
        repo.storage.put(layout.log_entry(slot), entry)
    note(repo, 2)
    evs = events(repo)
    assert [ev["seq"] for ev in evs] == [0, 1, 2] and evs[2]["details"]["n"] == 2
    assert layout.log_entry(3) in {i.key for i in repo.storage.list(layout.LOG_ENTRIES)}
    found = {f.key: f.problem for f in repo.audit.foreign_objects()}
    assert set(found) == {layout.log_entry(s) for s in (2, 9, 10**12 - 1)}
    assert all(p == f"a copy of event 1, whose entry is {layout.log_entry(1)}" for p in found.values())


def test_a_copy_planted_before_its_original_is_foreign_too(tmp_path):
    """A hole (a planted object deleted after writers passed over it) filled with a copy of a
    later entry: the copy, not the original, is foreign."""
    repo = init_repo(tmp_path / "repo")
    repo.storage.put(layout.log_entry(1), JUNK)
    note(repo, 1)
    note(repo, 2)
    (tmp_path / "repo" / layout.log_entry(1)).unlink()
    repo.storage.put(layout.log_entry(1), repo.storage.get(layout.log_entry(3)))
    assert [ev["seq"] for ev in events(repo)] == [0, 1, 2]
    assert [f.key for f in repo.audit.foreign_objects()] == [layout.log_entry(1)]
    note(repo, 3)
    assert [ev["seq"] for ev in events(repo)] == [0, 1, 2, 3]


def test_an_authentic_malformed_or_misnumbered_entry_is_foreign(any_repo):
    repo = any_repo
    sealer = repo.audit.sealer
    bad = {"v": 1, "seq": 1, "time": "yesterday", "type": "check", "actor": {}, "details": {}}
    repo.storage.put(layout.log_entry(1), sealer.seal(KIND_LOG, utf8_json(bad)))
    repo.storage.put(layout.log_entry(2), sealer.seal(KIND_LOG, utf8_json({**bad, "seq": "2"})))
    repo.storage.put(layout.log_entry(3), sealer.seal(KIND_LOG, b'{"seq": 1}'))
    note(repo)
    assert [ev["seq"] for ev in events(repo)] == [0, 1]
    problems = {f.key: f.problem for f in repo.audit.foreign_objects()}
    assert "malformed" in problems[layout.log_entry(1)]
    assert "seq" in problems[layout.log_entry(2)]
    assert "canonical" in problems[layout.log_entry(3)]


def test_another_event_at_a_taken_position_is_a_fork_and_appends_stop(any_repo):
    """Only a password holder can write a second, different event 1: both are named."""
    repo = any_repo
    note(repo, 1)
    other = {**events(repo)[1], "details": {"forged": True}}
    repo.storage.put(layout.log_entry(5), repo.audit.sealer.seal(KIND_LOG, utf8_json(other)))
    rep = repo.verify_audit_log(remember=False)
    assert any(layout.log_entry(5) in e and layout.log_entry(1) in e and "same position" in e for e in rep.errors)
    with pytest.raises(IntegrityError, match="same position"):
        note(repo, 2)


def test_a_deleted_entry_is_missing_and_named(tmp_path):
    repo = init_repo(tmp_path / "repo")
    repo.storage.put(layout.log_entry(1), JUNK)
    note(repo, 1)
    note(repo, 2)
    (tmp_path / "repo" / layout.log_entry(2)).unlink()  # event 1, after the junk
    rep = repo.verify_audit_log(remember=False)
    assert any(layout.log_entry(3) in e and "event 1 missing" in e for e in rep.errors), rep.errors


def test_junk_checkpoints_are_passed_over(any_repo):
    repo = any_repo
    note(repo)
    n = len(events(repo))
    for key in (layout.log_checkpoint(n + 1), layout.log_checkpoint(n + 7), "log/checkpoints/zz"):
        repo.storage.put(key, b"not a note\n")
    repo.storage.put(layout.log_checkpoint(n + 3), repo.storage.get(layout.log_checkpoint(n)))  # misnamed
    note(repo)  # its checkpoint's name is taken: the client remembers its own note
    assert repo.audit.latest_checkpoint() == repo.storage.get(layout.log_checkpoint(n))
    note(repo)
    assert repo.audit.latest_checkpoint() == repo.storage.get(layout.log_checkpoint(n + 2))
    problems = {f.key: f.problem for f in repo.audit.foreign_objects()}
    assert problems[layout.log_checkpoint(n + 3)] == f"a checkpoint of size {n}, stored under another size"
    assert len(problems) == 4
    repo.audit.mark_foreign(None, "examined")
    assert repo.verify_audit_log().ok


def test_threads_appending_with_junk_planted_meanwhile_all_land(tmp_path):
    path = tmp_path / "repo"
    init_repo(path)
    writers, each = 3, 6
    barrier = threading.Barrier(writers + 1)
    errors: list[str] = []
    planted: list[str] = []

    def work(w: int) -> None:
        mine = open_repo(path)
        barrier.wait()
        for n in range(each):
            try:
                note(mine, n, writer=w)
            except Exception as e:  # reported below, with the writer and event
                errors.append(f"writer {w} event {n}: {type(e).__name__}: {e}")

    def attacker() -> None:
        storage = open_repo(path).storage
        barrier.wait()
        for _ in range(12):
            top = max(slots_of(storage), default=-1)
            for slot in (top + 1, top + 2):
                try:
                    storage.put(layout.log_entry(slot), JUNK)
                    planted.append(layout.log_entry(slot))
                except AlreadyExists:  # a writer took it first
                    pass

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    threads.append(threading.Thread(target=attacker))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, "\n".join(errors)
    repo = open_repo(path)
    evs = events(repo)
    assert [ev["seq"] for ev in evs] == list(range(1 + writers * each))
    got = sorted((ev["details"]["writer"], ev["details"]["n"]) for ev in evs[1:])
    assert got == [(w, n) for w in range(writers) for n in range(each)]
    assert planted and {f.key for f in repo.audit.foreign_objects()} == set(planted)
    repo.audit.mark_foreign(None, "the attacker's")
    rep = repo.verify_audit_log()
    assert rep.ok, rep.errors


def slots_of(storage) -> list[int]:
    return [s for s in (layout.log_slot(i.key) for i in storage.list(layout.LOG_ENTRIES)) if s is not None]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    junk=st.dictionaries(
        st.integers(min_value=1, max_value=24) | st.just(10**12 - 1),
        st.sampled_from(["garbage", "copy", "checkpoint"]),
        max_size=10,
    ),
    appends=st.integers(min_value=1, max_value=8),
)
def test_appends_around_any_junk_number_events_0_to_n(junk, appends):
    """Garbage, copies of the first entry, or a checkpoint note at random slots: every append
    lands at a free slot, the events are 0..n, and all that was planted is named."""
    repo = init_repo(f"memory:{uuid.uuid4().hex}")
    planted = {
        "garbage": lambda slot: JUNK + str(slot).encode(),
        "copy": lambda slot: repo.storage.get(layout.log_entry(0)),
        "checkpoint": lambda slot: repo.storage.get(layout.log_checkpoint(1)),
    }
    for slot, kind in junk.items():
        repo.storage.put(layout.log_entry(slot), planted[kind](slot))
    for n in range(appends):
        note(repo, n)
    evs = events(repo)
    assert [ev["seq"] for ev in evs] == list(range(appends + 1))
    assert {f.key for f in repo.audit.foreign_objects()} == {layout.log_entry(s) for s in junk}
    valid = [s for s in slots(repo) if s not in junk]
    assert len(valid) == appends + 1 and valid == sorted(valid)
    assert repo.verify_audit_log().ok == (not junk)
    repo.audit.mark_foreign(None, "examined")
    rep = repo.verify_audit_log()
    assert rep.ok, rep.errors


class Unreadable(StorageWrapper):
    """Real storage where some objects cannot be read: on S3, an object put with an encryption
    key amber does not hold (SSE-C), or archived; `everything` models lost read permission."""

    def __init__(self, inner, keys=(), everything: bool = False) -> None:
        super().__init__(inner)
        self.keys, self.everything = set(keys), everything

    def get(self, key, offset=0, length=None):
        if self.everything or key in self.keys:
            raise StorageError(f"{key}: S3 error InvalidRequest: the object was stored with a customer key")
        return self.inner.get(key, offset, length)


def with_storage(repo, storage) -> Repository:
    return Repository(storage, repo.keys, repo.config, repo.key_id, repo.clock)


def test_an_object_that_cannot_be_read_is_foreign_and_never_blocks(tmp_path):
    repo = init_repo(tmp_path / "repo")
    key, cp = layout.log_entry(1), layout.log_checkpoint(2)
    repo.storage.put(key, JUNK)
    repo.storage.put(cp, JUNK)
    mine = with_storage(repo, Unreadable(open_repo(tmp_path / "repo").storage, [key, cp]))
    note(mine, 1)
    note(mine, 2)
    assert [ev["seq"] for ev in events(mine)] == [0, 1, 2]
    found = mine.audit.foreign_objects()
    assert [f.key for f in found] == [cp, key]
    assert all(f.sha256 is None and f.problem.startswith("cannot be read") for f in found)
    assert mine.audit.latest_checkpoint() == repo.storage.get(layout.log_checkpoint(3))
    assert not mine.verify_audit_log().ok
    mine.audit.mark_foreign(None, "objects we cannot read, examined with the bucket owner's key")
    assert mine.audit.unexplained() == []
    assert mine.verify_audit_log().ok


def test_a_storage_that_reads_nothing_stops_the_append_rather_than_forking(tmp_path):
    repo = init_repo(tmp_path / "repo")
    note(repo, 1)
    blind = with_storage(repo, Unreadable(open_repo(tmp_path / "repo").storage, everything=True))
    with pytest.raises(StorageError):
        note(blind, 2)
    assert [ev["seq"] for ev in events(repo)] == [0, 1]


# -- event times -----------------------------------------------------------------------------


def test_events_dated_ahead_of_the_clock_or_going_back_are_warnings(tmp_path):
    clock = FakeClock(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    repo = init_repo(tmp_path / "repo", clock)
    clock.advance(8 * 86400)  # a writer whose clock was moved ahead
    note(repo, 1)
    clock.advance(-8 * 86400 + 60)
    note(repo, 2)
    rep = repo.verify_audit_log()
    assert rep.ok, rep.errors
    ahead = [w for w in rep.warnings if "after this clock's" in w]
    back = [w for w in rep.warnings if "clock went back" in w]
    assert len(ahead) == 1 and "event 1 (check)" in ahead[0] and "2030-01-09T00:00:00Z" in ahead[0]
    assert to_iso(clock.now()) in ahead[0]
    assert len(back) == 1 and "event 2 (check)" in back[0] and "before event 1 (2030-01-09T00:00:00Z)" in back[0]


def test_times_within_the_tolerance_are_no_warning():
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    entries = [
        ({"seq": i, "type": "check", "time": to_iso(now + d)}, b"")
        for i, d in enumerate([dt.timedelta(0), CLOCK_TOLERANCE, dt.timedelta(seconds=1)])
    ]
    assert clock_warnings(entries, now) == []
    late = entries + [({"seq": 3, "type": "check", "time": to_iso(now + CLOCK_TOLERANCE * 2)}, b"")]
    assert len(clock_warnings(late, now)) == 1
