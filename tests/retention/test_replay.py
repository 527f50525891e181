"""replay: each snapshot's protection as the audit log alone tells it, and where the lock records,
storage and forgets disagree with it (pure: entries, records and a stat function are given)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from amber.clock import to_iso
from amber.errors import NotFound
from amber.retention.replay import (
    Meaning,
    load_meaning,
    log_protections,
    replay,
    replay_problems,
    save_meaning,
    stricter,
)
from amber.retention.state import Protection
from amber.storage.base import Capabilities, ObjectInfo, Retention

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
G, C = "governance", "compliance"
SID = "ab" * 32
OTHER = "cd" * 32
LOCKING = Capabilities(object_lock=True, legal_hold=True, conditional_put=True)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


class Log:
    """A log as `AuditLog.entries` returns it: (event, canonical bytes), in seq order."""

    def __init__(self) -> None:
        self.entries: list = [({"v": 1, "seq": 0, "time": to_iso(at(0)), "type": "init", "details": {}}, b"")]

    def add(self, kind: str, hours: float, sid: str = SID, **details) -> int:
        seq = len(self.entries)
        ev = {"v": 1, "seq": seq, "time": to_iso(at(hours)), "type": kind, "snapshot": sid, "details": details}
        self.entries.append((ev, b""))
        return seq

    def snapshot(self, hours: float, sid: str = SID, retention: tuple | None = None) -> int:
        ret = {"mode": retention[0], "until": to_iso(at(retention[1]))} if retention else None
        return self.add("snapshot", hours, sid, retention=ret)

    def lock(self, hours: float, mode: str, until_h: float, sid: str = SID, bypass: bool = False) -> int:
        return self.add("lock", hours, sid, mode=mode, until=to_iso(at(until_h)), bypass_governance=bypass)


def record(kind: str, hours: float, eid: str, sid: str = SID, **fields) -> dict:
    return {"v": 1, "type": kind, "snapshot": sid, "time": to_iso(at(hours)), "id": eid, **fields}


def lock_record(hours: float, mode: str, until_h: float, eid: str = "r-lock") -> dict:
    return record("lock", hours, eid, mode=mode, until=to_iso(at(until_h)))


def stat_of(objects: dict):
    def stat(key: str) -> ObjectInfo:
        if key not in objects:
            raise NotFound(key)
        return objects[key]

    return stat


def folded(entries) -> Meaning:
    m = Meaning()
    for ev, _raw in entries:
        m.add(ev)
    return m


def problems(log: Log, records=None, objects=None, stored=(SID,), now_h: float = 1):
    """`replay_problems` of the log folded whole, checked equal to the same log folded in two
    runs with the fold kept in JSON between them after every event (as a client keeps it)."""
    whole = replay_problems(folded(log.entries), records or {}, stored, stat_of(objects or {}), LOCKING, at(now_h))
    for cut in range(len(log.entries) + 1):
        m = Meaning.from_json(json.loads(json.dumps(folded(log.entries[:cut]).to_json())))
        for ev, _raw in log.entries[cut:]:
            m.add(ev)
        again = replay_problems(m, records or {}, stored, stat_of(objects or {}), LOCKING, at(now_h))
        assert again == whole, f"kept after {cut} events"
    return whole


def protected_doc(until_h: float | None, mode: str = G, hold: bool = False) -> dict:
    ret = Retention(mode, at(until_h)) if until_h is not None else None
    return {f"snapshots/{SID}": ObjectInfo(f"snapshots/{SID}", 10, ret, hold)}


# -- the fold -----------------------------------------------------------------------------


def test_the_log_folds_as_the_records_do():
    log = Log()
    log.snapshot(0.1, retention=(G, 10))
    log.lock(1, C, 5)  # compliance wins; the later until stays
    log.add("hold", 2, reason="case")
    log.lock(3, G, 2, sid=OTHER)
    p = log_protections(log.entries)
    assert p[SID] == Protection(C, at(10), True, "case")
    assert p[OTHER] == Protection(G, at(2))
    log.add("release", 4)
    assert log_protections(log.entries)[SID] == Protection(C, at(10))


def test_stricter_takes_the_longer_lock_compliance_and_any_hold():
    a = Protection(G, at(10))
    b = Protection(C, at(5), True, "why")
    assert stricter(a, b) == Protection(C, at(10), True, "why")
    assert stricter(Protection(), None) == Protection()
    assert stricter(Protection(), Protection(G, at(1))) == Protection(G, at(1))


# -- forgets against the logged locks and holds ------------------------------------------------


def test_a_forget_before_the_logged_lock_ends_is_an_error():
    log = Log()
    log.snapshot(0.1)
    lock_seq = log.lock(1, G, 48)
    seq = log.add("forget", 2, bypass_governance=False)
    errors, warnings = problems(log, {SID: [lock_record(1, G, 48)]}, stored=())
    assert errors == [
        f"snapshot {SID[:8]} was forgotten (event {seq}, {to_iso(at(2))}) before the end of its "
        f"governance lock until {to_iso(at(48))} (event {lock_seq})"
    ]
    assert warnings == []


def test_a_forget_that_bypassed_governance_is_a_warning_but_compliance_is_never_bypassed():
    log = Log()
    log.snapshot(0.1, retention=(G, 48))
    log.add("forget", 2, bypass_governance=True)
    log.snapshot(0.2, sid=OTHER, retention=(C, 48))
    log.add("forget", 3, sid=OTHER, bypass_governance=True)
    errors, warnings = problems(log, stored=())
    assert len(warnings) == 1 and "bypassing governance" in warnings[0] and SID[:8] in warnings[0]
    assert len(errors) == 1 and OTHER[:8] in errors[0] and "compliance lock" in errors[0]


def test_a_forget_after_the_lock_ended_or_after_a_release_is_fine():
    log = Log()
    log.snapshot(0.1, retention=(C, 1))
    log.add("hold", 0.5, reason="r")
    log.add("release", 0.7, reason="r")
    log.add("forget", 2)
    recs = {SID: [record("hold", 0.5, "h", reason="r"), record("release", 0.7, "rel")]}
    assert problems(log, recs, stored=()) == ([], [])


def test_a_forget_of_a_held_snapshot_without_a_logged_release_is_an_error():
    log = Log()
    log.snapshot(0.1)
    hold_seq = log.add("hold", 1, reason="r")
    seq = log.add("forget", 2)
    errors, _ = problems(log, {SID: [record("hold", 1, "h", reason="r")]}, stored=())
    assert errors == [
        f"snapshot {SID[:8]} was forgotten (event {seq}, {to_iso(at(2))}) while held (event {hold_seq}) "
        "with no release logged before it"
    ]


# -- the log against the lock records ---------------------------------------------------------


def test_a_logged_lock_or_hold_whose_record_is_gone_is_an_error():
    log = Log()
    log.snapshot(0.1)
    lock_seq = log.lock(0.5, G, 48)
    hold_seq = log.add("hold", 0.6, reason="r")
    errors, _ = problems(log, objects=protected_doc(48, hold=True))
    assert errors == [
        f"snapshot {SID[:8]}: the lock of event {lock_seq} has no record under locks/{SID}/ (removed behind the log)",
        f"snapshot {SID[:8]}: the hold of event {hold_seq} has no record under locks/{SID}/ (removed behind the log)",
    ]
    # a record of another lock does not stand in for it
    errors, _ = problems(log, {SID: [lock_record(0.5, G, 47), record("hold", 0.6, "h", reason="r")]}, protected_doc(48))
    assert len(errors) == 2 and "the lock of event" in errors[0] and "no legal hold in storage" in errors[1]


def test_a_release_or_unlock_record_the_log_does_not_show_is_an_error():
    log = Log()
    log.snapshot(0.1)
    log.add("hold", 0.5, reason="r")
    recs = {
        SID: [
            record("hold", 0.5, "h", reason="r"),
            record("release", 0.9, "forged"),
            record("unlock", 0.9, "forged-too", bypass_governance=True),
        ]
    }
    errors, _ = problems(log, recs, protected_doc(None, hold=True))
    assert errors == [
        f"locks/{SID}/forged: a release of snapshot {SID[:8]} that the audit log does not show "
        "(forged, or written behind the log)",
        f"locks/{SID}/forged-too: an unlock of snapshot {SID[:8]} that the audit log does not show "
        "(forged, or written behind the log)",
    ]
    p = replay(log.entries).snapshots[SID].protection
    assert p.hold is True  # whatever the records say


def test_records_older_than_a_log_started_by_an_upgrade_need_no_event():
    log = Log()
    log.entries = [({"v": 1, "seq": 0, "time": to_iso(at(5)), "type": "check", "details": {}}, b"")]
    recs = {SID: [record("release", 1, "old")]}
    assert problems(log, recs, stored=()) == ([], [])


# -- the log against storage ----------------------------------------------------------------


def test_storage_shorter_than_the_logged_lock_is_an_error():
    log = Log()
    lock_seq = log.snapshot(0.1, retention=(C, 48))
    errors, _ = problems(log, objects=protected_doc(24, C))
    assert errors == [
        f"snapshots/{SID}: storage retention {to_iso(at(24))} is shorter than the compliance lock until "
        f"{to_iso(at(48))} the audit log gives snapshot {SID[:8]} (event {lock_seq})"
    ]
    assert problems(log, objects=protected_doc(48, C)) == ([], [])
    assert problems(log, objects=protected_doc(None), now_h=49) == ([], [])  # expired
    assert problems(log, objects={}) == ([], [])  # gone: the snapshot comparison reports that


def test_the_kept_fold_survives_its_file_and_a_damaged_file_is_no_fold(tmp_path):
    log = Log()
    log.snapshot(0.5, retention=(C, 48))
    log.lock(1, G, 72, sid=OTHER)
    log.add("hold", 2, reason="case 7")
    m = folded(log.entries)
    m.size, m.root = len(log.entries), b"\x01" * 32
    path = str(tmp_path / "log-meaning.json")
    save_meaning(path, m)
    back = load_meaning(path)
    assert back is not None and back.to_json() == m.to_json()
    assert back.replayed.snapshots[SID].protection == m.replayed.snapshots[SID].protection
    for junk in (b"", b"{}", b'{"v": 1}', b"[1, 2]", b'{"v": 1, "size": "x"}', b"\xff\xfe"):
        with open(path, "wb") as f:
            f.write(junk)
        assert load_meaning(path) is None


@pytest.mark.parametrize("first", ["init", "snapshot"])
def test_the_fold_knows_when_the_log_began(first):
    m = Meaning()
    m.add({"v": 1, "seq": 0, "time": to_iso(at(5)), "type": first, "snapshot": SID, "details": {}})
    assert m.log_start() == (None if first == "init" else at(5))
