"""Signed audit events (docs/AUDIT-LOG.md §4.4): the encoding and its golden vector, the fold of
who may write what, and a repository of format 2 where a backup key forges admin events
through the library: reported (naming the event) and never honoured by forget or release."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.audit import authors
from amber.audit.entry import parse_entry, validate_entry
from amber.audit.log import AuditLog
from amber.audit.summary import Summary
from amber.check import verify_audit_log
from amber.clock import FakeClock, to_iso
from amber.crypto.aead import Sealer
from amber.crypto.keys import MasterKeys
from amber.errors import IntegrityError, Locked
from amber.format import layout
from amber.format.canonical import utf8_json
from amber.retention import replay
from amber.storage.base import Retention
from amber.storage.memory import MemoryStorage
from format2 import ADMIN_PASSWORD, Upgraded

from audit_helpers import backup, open_repo, write

VECTOR = json.loads((Path(__file__).parents[1] / "vectors" / "audit_author.json").read_text(encoding="utf-8"))
ORIGIN = "amber/" + "0f" * 16


# -- the encoding ---------------------------------------------------------------------


def test_golden_vector_reproduces_with_the_spec_alone():
    """CONTEXT || origin || LF || canonical event without sig, signed with Ed25519 (RFC 8032,
    deterministic): built here from the spec, not from amber's code."""
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR["author_seed"]))
    body = {**VECTOR["event"], "author": VECTOR["author"]}
    message = (
        b"amber audit event v1\n"
        + VECTOR["origin"].encode()
        + b"\n"
        + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert message.decode() == VECTOR["signed_bytes"]
    assert base64.b64encode(key.sign(message)).decode() == VECTOR["sig"]
    assert authors.public_key(key) == VECTOR["author"]
    signed = authors.sign(VECTOR["event"], key, VECTOR["origin"])
    assert utf8_json(signed).decode() == VECTOR["entry"]
    assert authors.signature_ok(json.loads(VECTOR["entry"]), VECTOR["origin"])


texts = st.text(max_size=30)
details = st.dictionaries(st.sampled_from(["reason", "key", "mode", "until", "n"]), texts | st.integers(), max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    seq=st.integers(0, 2**40),
    kind=st.sampled_from(["snapshot", "release", "forget", "key-add", "x-y"]),
    d=details,
    host=texts,
    origin=st.text(min_size=1, max_size=40),
)
def test_signed_entries_round_trip_and_bind_their_origin_and_position(seq, kind, d, host, origin):
    key = Ed25519PrivateKey.generate()
    ev = {"v": 1, "seq": seq, "time": "2030-01-01T00:00:00Z", "type": kind, "actor": {"host": host}, "details": d}
    if kind == "snapshot":
        ev.update(snapshot="a" * 64, details={**d, "tree": "b" * 64, "content_root": "c" * 64})
    raw = utf8_json(authors.sign(ev, key, origin))
    back = parse_entry(raw, seq, "entry")
    assert authors.signature_ok(back, origin)
    assert not authors.signature_ok({**back, "seq": seq + 1}, origin)
    assert not authors.signature_ok(back, origin + "x")
    assert not authors.signature_ok({**back, "details": {**back["details"], "extra": 1}}, origin)


@pytest.mark.parametrize(
    "change",
    [
        {"sig": None},
        {"author": None},
        {"author": "AAAA"},
        {"author": "!" * 44},
        {"sig": base64.b64encode(bytes(63)).decode()},
        {"author": 5},
        {"sig": base64.b64encode(bytes(64)).decode().rstrip("=")},
    ],
)
def test_validation_refuses_malformed_authors_and_signatures(change):
    ev = authors.sign({"v": 1, "seq": 0, "time": "2030-01-01T00:00:00Z", "type": "check"}, _key(), ORIGIN)
    for k, v in change.items():
        if v is None:
            del ev[k]
        else:
            ev[k] = v
    with pytest.raises(IntegrityError, match="author and sig"):
        validate_entry(ev, "entry")


# -- the fold of who may write what (pure) ----------------------------------------------


def _key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


class Log:
    """Events in order, each signed by the author given (None: unsigned)."""

    def __init__(self) -> None:
        self.admin, self.backup = _key(), _key()
        self.entries: list = []

    def add(self, kind: str, by: Ed25519PrivateKey | None, sid: str | None = None, **d) -> dict:
        ev = {"v": 1, "seq": len(self.entries), "time": to_iso(FakeClock().now()), "type": kind, "details": d}
        if sid is not None:
            ev["snapshot"] = sid
        ev = authors.sign(ev, by, ORIGIN) if by is not None else ev
        self.entries.append((ev, utf8_json(ev)))
        return ev

    def format2(self) -> Log:
        self.add("init", self.admin, format=2, admin_key=authors.public_key(self.admin))
        self.add("key-add", self.admin, key="k" * 64, role="backup", author_key=authors.public_key(self.backup))
        return self

    def judged(self) -> tuple[list[int], list[str]]:
        """(seq of every honoured event, problems)."""
        a, honoured, problems = authors.Authors(ORIGIN), [], []
        for ev, _raw in self.entries:
            ok, problem = a.judge(ev)
            honoured += [ev["seq"]] if ok else []
            problems += [problem] if problem else []
        return honoured, problems


SID = "ab" * 32


def test_a_format_1_log_honours_everything_signed_or_not():
    log = Log()
    log.add("init", None, format=1)
    log.add("release", log.backup, SID, reason="r")
    log.add("forget", None, SID)
    assert log.judged() == ([0, 1, 2], [])


def test_backup_keys_write_snapshots_locks_holds_checks_and_nothing_else():
    log = Log().format2()
    allowed = [
        log.add("snapshot", log.backup, SID, tree="b" * 64, content_root="c" * 64),
        log.add("lock", log.backup, SID, mode="compliance", until="2031-01-01T00:00:00Z"),
        log.add("hold", log.backup, SID, reason="x"),
        log.add("check", log.backup, ok=True),
    ]
    refused = [
        log.add(kind, log.backup, SID if kind in ("release", "forget") else None)
        for kind in ("release", "forget", "prune", "key-remove", "key-revoke", "key-add", "setting", "upgrade")
    ]
    refused.append(log.add("lock", log.backup, SID, mode="governance", until="x", bypass_governance=True))
    admin = log.add("release", log.admin, SID, reason="x")
    honoured, problems = log.judged()
    assert honoured == [0, 1] + [e["seq"] for e in allowed] + [admin["seq"]]
    assert len(problems) == len(refused)
    for ev, problem in zip(refused, problems, strict=True):
        assert problem.startswith(f"event {ev['seq']} ({ev['type']}")
        assert "signed by backup key kkkkkkkkkkkkkkkk, which may not write it: not honoured" in problem


def test_unsigned_forged_unknown_replayed_and_removed_authors_are_named():
    log = Log().format2()
    log.add("hold", None, SID, reason="unsigned")  # 2
    forged = log.add("hold", log.backup, SID, reason="x")
    forged["details"]["reason"] = "changed after signing"  # 3
    log.add("snapshot", _key(), SID, tree="b" * 64, content_root="c" * 64)  # 4: a key never registered
    admin_release = log.add("release", log.admin, SID)  # 5
    log.entries.append(({**admin_release, "seq": 6}, b""))  # the admin's bytes again, one place on
    log.add("key-revoke", log.admin, key="k" * 64)  # 7
    log.add("hold", log.backup, SID, reason="after removal")  # 8
    honoured, problems = log.judged()
    assert honoured == [0, 1, 5, 7]
    assert "event 2 (hold of snapshot abababab" in problems[0] and "is not signed" in problems[0]
    assert problems[1].startswith("event 3 ") and "signature does not verify" in problems[1]
    assert problems[2].startswith("event 4 ") and "a key this log does not know" in problems[2]
    assert problems[3].startswith("event 6 ") and "signature does not verify" in problems[3]
    assert problems[4].startswith("event 8 ") and "removed by event 7" in problems[4]


def test_the_honoured_events_of_some_kinds_are_judged_as_by_the_whole_fold():
    """`honoured(..., kinds)` judges only those kinds and the events that change who may write
    (what a full verify does to find the `foreign` marks): the same verdicts as the whole fold."""
    log = Log()
    log.add("foreign", None, objects=[{"key": "log/x"}], reason="before format 2: counts")  # 0
    log.format2()  # 1, 2
    log.add("foreign", log.admin, objects=[{"key": "log/y"}], reason="by the admin")  # 3
    log.add("foreign", log.backup, objects=[{"key": "log/z"}], reason="a backup key may not")  # 4
    forged = log.add("foreign", log.admin, objects=[{"key": "log/w"}], reason="x")  # 5
    forged["details"]["reason"] = "changed after signing"
    log.add("snapshot", log.backup, SID, tree="b" * 64, content_root="c" * 64)  # 6
    other = _key()
    log.add("key-add", log.admin, key="o" * 64, role="backup", author_key=authors.public_key(other))  # 7
    log.add("foreign", other, objects=[{"key": "log/v"}], reason="registered, but not for this")  # 8
    log.add("key-add", log.backup, key="p" * 64, role="backup", author_key=authors.public_key(_key()))  # 9
    log.add("foreign", log.admin, objects=[{"key": "log/u"}], reason="after all that")  # 10
    whole = [ev["seq"] for ev, _raw in authors.honoured(log.entries, ORIGIN) if ev["type"] == "foreign"]
    some = [ev["seq"] for ev, _raw in authors.honoured(log.entries, ORIGIN, frozenset({"foreign"}))]
    assert some == whole == [0, 3, 10]


def test_a_backup_key_cannot_claim_the_admin_keys_name():
    log = Log().format2()
    ev = {"v": 1, "seq": 2, "time": to_iso(FakeClock().now()), "type": "release", "snapshot": SID, "details": {}}
    ev["author"] = authors.public_key(log.admin)
    ev["sig"] = authors.b64(log.backup.sign(authors.signed_bytes(ev, ORIGIN)))
    log.entries.append((ev, utf8_json(ev)))
    honoured, problems = log.judged()
    assert honoured == [0, 1] and problems[0].startswith("event 2 (release") and "does not verify" in problems[0]


def test_the_pin_signed_by_another_key_is_reported_and_still_pins():
    log = Log()
    log.add("upgrade", log.backup, format=2, admin_key=authors.public_key(log.admin))
    log.add("hold", log.backup, SID, reason="x")
    honoured, problems = log.judged()
    assert honoured == [0]
    assert "pins admin key" in problems[0] and "unknown" not in problems[0]
    assert "a key this log does not know" in problems[1]


def test_the_kept_meaning_agrees_with_the_full_fold():
    log = Log().format2()
    log.add("snapshot", log.backup, SID, tree="b" * 64, content_root="c" * 64)
    log.add("hold", log.backup, SID, reason="kept")
    log.add("release", log.backup, SID, reason="kept")
    log.add("key-revoke", log.admin, key="k" * 64)
    log.add("forget", log.backup, SID)
    log.add("snapshot", log.backup, "cd" * 32, tree="b" * 64, content_root="c" * 64)
    full = replay.Meaning.of(ORIGIN)
    for ev, _raw in log.entries:
        full.add(ev)
    for cut in range(len(log.entries) + 1):
        part = replay.Meaning.of(ORIGIN)
        for ev, _raw in log.entries[:cut]:
            part.add(ev)
        part = replay.Meaning.from_json(json.loads(json.dumps(part.to_json())))
        for ev, _raw in log.entries[cut:]:
            part.add(ev)
        assert part.to_json() == full.to_json()
    assert full.replayed.snapshots[SID].protection.hold  # the backup key's release is not honoured
    assert SID not in full.forgotten and "cd" * 32 not in full.logged
    assert len(full.replayed.errors) == 3
    assert replay.Meaning().to_json()["authors"]["origin"] == ""  # without the origin nothing verifies


def test_an_audit_log_signs_what_it_appends_and_binds_its_origin():
    keys = MasterKeys.generate()
    storage = MemoryStorage()
    log = AuditLog(storage, Sealer(keys.data), keys.signing_key(), "0f" * 16, FakeClock(), "k" * 64, keys.author_key())
    ev = log.append("init", format=2, admin_key=authors.public_key(keys.author_key()))
    log.append("check", ok=True)
    assert ev["author"] == authors.public_key(keys.author_key())
    entries = log.entries()
    assert [e["seq"] for e, _ in entries] == [0, 1]
    assert all(authors.signature_ok(e, log.origin) for e, _ in entries)
    assert authors.honoured(entries, log.origin) == entries
    assert authors.honoured(entries, "amber/another") == entries[:1]  # the pin; the check is not this log's
    assert log.honoured() == entries
    stranger = AuditLog(storage, Sealer(keys.data), keys.signing_key(), "0f" * 16, FakeClock(), "s" * 64, _key())
    stranger.append("check", ok=True)
    assert log.honoured() == entries  # judged once per event, the new one not honoured
    log.append("check", ok=False)
    assert [ev["seq"] for ev, _raw in log.honoured()] == [0, 1, 3]


# -- a repository of format 2, with a backup key (library) --------------------------------


@pytest.fixture
def upgraded(request, tmp_path) -> Upgraded:
    if "each_log_layout" in request.fixturenames:
        request.getfixturevalue("each_log_layout")  # before the repository is made
    u = Upgraded(tmp_path / "repo")
    write(tmp_path / "src" / "a.txt", b"alpha\n")
    u.src = tmp_path / "src"
    return u


def test_a_backup_client_writes_what_the_log_accepts(each_log_layout, upgraded):
    assert upgraded.admin.audit.tiled() == (each_log_layout == "tiles")
    sid = upgraded.backup.backup([str(upgraded.src)]).snapshot_id
    until = upgraded.backup.clock.now().replace(year=2099)
    storage = upgraded.backup.storage
    storage.set_legal_hold(layout.snapshot(sid), True)  # what the log says must be so in storage too
    storage.set_retention(layout.snapshot(sid), Retention("governance", until))
    upgraded.as_backup("hold", sid, reason="evidence")
    upgraded.as_backup("lock", sid, mode="governance", until=to_iso(until), bypass_governance=False, previous=None)
    evs = [ev for ev, _ in upgraded.admin.audit.entries()]
    mine = authors.public_key(upgraded.backup_keys.author_key())
    assert [ev["type"] for ev in evs if ev.get("author") == mine] == ["snapshot", "hold", "lock"]
    assert upgraded.verify() == []
    assert upgraded.verify(full=False) == []


def test_a_release_by_a_backup_key_is_reported_and_frees_nothing(each_log_layout, upgraded):
    snap = backup(upgraded.admin, upgraded.src)
    upgraded.admin.hold(snap, "litigation")
    assert upgraded.verify(full=False) == []  # the kept meaning, brought up to date below
    released = upgraded.as_backup("release", snap.id, reason="litigation")  # the record, and a signed event
    assert released["type"] == "release" and released["author"] == authors.public_key(upgraded.backup_keys.author_key())
    errors = upgraded.verify()
    assert any(
        e.startswith(f"event {released['seq']} (release of snapshot {snap.id[:8]}") and "not honoured" in e
        for e in errors
    ), errors
    assert any("that the audit log does not show" in e for e in errors), errors  # its release record
    assert upgraded.verify(full=False) == errors
    admin = open_repo(upgraded.path, password=ADMIN_PASSWORD)
    assert replay.log_view(admin)[snap.id].hold
    with pytest.raises(Locked):
        admin.forget([admin.find_snapshot(snap.id)])
    assert admin.find_snapshot(snap.id).id == snap.id


def test_a_forget_bypassing_governance_by_a_backup_key_lifts_no_lock(each_log_layout, upgraded):
    snap = backup(upgraded.admin, upgraded.src)
    upgraded.admin.lock(snap, "governance", upgraded.admin.clock.now().replace(year=2099))
    forged = upgraded.backup.log_event(
        "forget", snap.id, None, bypass_governance=True, protection=None, snapshot_time=to_iso(snap.time)
    )
    errors = upgraded.verify()
    assert any(e.startswith(f"event {forged['seq']} (forget of snapshot {snap.id[:8]}") for e in errors), errors
    admin = open_repo(upgraded.path, password=ADMIN_PASSWORD)
    assert replay.log_view(admin)[snap.id].locked(admin.clock.now())
    meaning = replay.Meaning.of(admin.audit.origin)
    for ev, _raw in admin.audit.entries():
        meaning.add(ev)
    assert snap.id not in meaning.forgotten


def test_events_of_an_unknown_key_a_replayed_admin_event_and_a_removed_key(upgraded):
    snap = backup(upgraded.admin, upgraded.src)
    stranger = upgraded.log_as(_key()).append("hold", snap.id, None, reason="no key file says who I am")
    # the admin's own signed event, its seq moved to the next place: the signature no longer holds
    add = next(ev for ev, _ in upgraded.admin.audit.entries() if ev["type"] == "key-add")
    store = upgraded.admin.audit.store()
    head = upgraded.admin.audit.head(store)
    assert store.append(head, utf8_json({**add, "seq": head.size}), None) is not None
    upgraded.admin.remove_key(upgraded.backup_id)
    late = upgraded.log_as(upgraded.backup_keys.author_key()).append("check", None, None, ok=True)
    errors = upgraded.verify()
    assert any(e.startswith(f"event {stranger['seq']} (hold") and "does not know" in e for e in errors), errors
    assert any(e.startswith(f"event {head.size} (key-add") and "does not verify" in e for e in errors), errors
    assert any(e.startswith(f"event {late['seq']} (check") and "removed by event" in e for e in errors), errors


def test_a_format_1_repository_verifies_as_before(tmp_path):
    """The repository amber 0.1.0 wrote (tests/vectors/repo-v1), changed by a client of format 1:
    its events are not signed, and its log verifies as it always did."""
    vectors = Path(__file__).parents[1] / "vectors"
    shutil.copytree(vectors / "repo-v1", tmp_path / "repo")
    password = json.loads((vectors / "repo-v1.json").read_text())["password"]
    repo = open_repo(tmp_path / "repo", password=password)
    assert repo.audit.author is None
    snap = repo.snapshots()[0]
    repo.hold(snap, "x")
    repo.release(snap)
    assert [ev["type"] for ev, _ in repo.audit.entries()] == ["hold", "release"]
    assert all("author" not in ev for ev, _ in repo.audit.entries())
    rep = verify_audit_log(open_repo(tmp_path / "repo", password=password), remember=False, full=True)
    # the vector's snapshots are dated 2030, after the log began: unlogged, as they always were
    assert all("has no event in the audit log" in e for e in rep.errors), rep.errors
    assert not replay.log_view(repo)[snap.id].hold


def test_the_backup_summary_counts_no_setting_witness_or_trust_reset_a_backup_key_wrote():
    log = Log().format2()
    log.add("setting", log.backup, version=2, sha256="0" * 64, default_retention=None, min_retention=None)
    log.add("witness", log.backup, name="mine", url="local:/tmp/w")
    log.add("trust-reset", log.backup, reason="x", size=3, abandoned=[{"witness": "w", "object": "o"}])
    log.add("witness", log.admin, name="theirs", url="local:/tmp/t")
    s = Summary.of(ORIGIN)
    for ev, _raw in log.entries:
        s.add(ev)
    assert s.settings == {} and s.abandoned == [] and list(s.witnesses) == ["theirs"]
    assert Summary.from_json(json.loads(json.dumps(s.to_json()))).to_json() == s.to_json()


def test_a_foreign_mark_by_a_backup_key_explains_nothing(upgraded):
    junk = Path(upgraded.path, "log", "tile", "entries", "planted")
    junk.write_bytes(b"planted by the backup host")
    key = "log/tile/entries/planted"
    planted = [f"{key}: not a tile or bundle name"]
    assert upgraded.admin.audit.unexplained() == planted
    upgraded.backup.audit.mark_foreign([key], "nothing to see")
    assert upgraded.admin.audit.unexplained() == planted
    assert any(e.startswith(f"{key}: ") for e in upgraded.verify())


def test_a_snapshot_deleted_behind_a_forged_forget_keeps_its_data_from_prune(upgraded):
    """The backup host deletes a locked snapshot's document (it has the disk here) and forges
    the forget, bypassing governance, that would explain it: the log prune decides by still
    locks the snapshot, so prune keeps every blob its tree needs (`protected_but_gone`)."""
    snap = backup(upgraded.admin, upgraded.src)
    upgraded.admin.lock(snap, "governance", upgraded.admin.clock.now().replace(year=2099))
    doc = Path(upgraded.path, "snapshots", snap.id)
    doc.parent.chmod(0o755)
    doc.unlink()
    upgraded.backup.log_event("forget", snap.id, None, bypass_governance=True, protection=None)
    admin = open_repo(upgraded.path, password=ADMIN_PASSWORD)
    stored = {s.id for s in admin.snapshots()}
    kept = replay.protected_but_gone(admin.audit.honoured([]), stored, admin.clock.now())
    assert kept == {snap.id: snap.tree}
    errors = upgraded.verify()
    assert any("deleted behind the log" in e for e in errors), errors
    assert any("(forget of snapshot" in e and "not honoured" in e for e in errors), errors
