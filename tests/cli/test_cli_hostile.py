"""Every byte is hostile: objects sealed with the repository's real keys (what anyone with the
password can write) and hostile files, met by the commands a user runs.

Each attack is planted through the real sealing code straight into storage; the commands must
report it by name with a documented exit code, keep serving what is good, and never show a
traceback (`Amber.run` asserts that on every run)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amber.audit import checkpoint as cpfmt
from amber.crypto import keys as keyfile
from amber.crypto.aead import KIND_LOG
from amber.crypto.keys import MasterKeys
from amber.format import layout
from amber.format.canonical import utf8_json
from amber.repo import records as rec

from cli_helpers import environment, write
from sources import open_repo


def library(amber):
    """The user's repository opened through the library, in the user's environment."""
    with environment(amber.env()):
        return open_repo(amber.url, password=amber.password)


def plant_snapshot(amber, doc: dict) -> str:
    r = library(amber)
    name, raw = r.records.seal(rec.SNAPSHOT, doc)
    r.storage.put(layout.snapshot(name), raw)
    return name


def overwrite(path: Path, data: bytes) -> None:
    """Replace a stored file's bytes as an attacker with access to the storage would."""
    if path.exists():
        os.chmod(path, 0o644)
        path.unlink()
    path.write_bytes(data)


@pytest.fixture
def backed_up(repo, tmp_path):
    """A repository with one good snapshot of a small tree."""
    src = tmp_path / "data"
    write(src / "a.txt", b"hello\n")
    write(src / "sub" / "b.bin", os.urandom(5000))
    sid = repo.backup(str(src))["snapshot_id"]
    return repo, src, sid


def good_doc(amber, sid: str) -> dict:
    return dict(library(amber).load_snapshot(sid).doc)


# -- 1. malformed snapshot documents ---------------------------------------------------------------

MUTATIONS = {
    "time-int": {"time": 5},
    "time-junk": {"time": "yesterday"},
    "time-overflow": {"time": "9999-12-31T23:59:59-23:59"},
    "paths-string": {"paths": "/etc"},
    "paths-ints": {"paths": [1, 2]},
    "paths-relative": {"paths": ["etc"]},
    "tags-ints": {"tags": [1]},
    "tags-dict": {"tags": {"a": 1}},
    "tree-short": {"tree": "abc"},
    "tree-upper": {"tree": "A" * 64},
    "content-root-int": {"content_root": 7},
    "retention-string": {"retention": "forever"},
    "retention-mode": {"retention": {"mode": "eternal", "until": "2040-01-01T00:00:00Z"}},
    "retention-until": {"retention": {"mode": "governance", "until": 12}},
    "summary-list": {"summary": [1, 2]},
    "summary-negative": {"summary": {"files_total": -1}},
    "summary-huge": {"summary": {"bytes_total": 1 << 80}},
    "summary-bool": {"summary": {"files_total": True}},
    "hostname-int": {"hostname": 42},
    "hostname-huge": {"hostname": "h" * 100_000},
    "username-list": {"username": ["root"]},
    "uid-negative": {"uid": -1},
    "v-true": {"v": True},
    "parent-junk": {"parent": "zz"},
}


@pytest.mark.parametrize("mutation", list(MUTATIONS), ids=list(MUTATIONS))
def test_a_malformed_snapshot_is_skipped_by_readers_and_reported_by_check(backed_up, tmp_path, mutation):
    amber, src, sid = backed_up
    bad = plant_snapshot(amber, {**good_doc(amber, sid), **MUTATIONS[mutation]})

    r = amber.run("snapshots", "--json")
    assert [s["id"] for s in r.json()] == [sid]
    assert bad[:8] in r.stderr or layout.snapshot(bad) in r.stderr, r

    amber.run("restore", sid[:8], "--target", tmp_path / "out", "--verify")
    amber.run("restore", "latest", "--target", tmp_path / "out2")
    amber.run("ls", sid[:8])
    amber.run("find", "a.txt")

    for cmd in (("check",), ("audit", "verify")):
        r = amber.run(*cmd, expect=20)
        assert layout.snapshot(bad) in r.stderr + r.out, r

    r = amber.run("restore", bad, "--target", tmp_path / "out3", expect=20)
    assert bad[:8] in r.stderr


def test_backup_and_forget_keep_working_beside_a_malformed_snapshot(backed_up):
    amber, src, sid = backed_up
    plant_snapshot(amber, {**good_doc(amber, sid), "time": 5})
    new = amber.backup(str(src), quiet=False)["snapshot_id"]
    assert [s["id"] for s in amber.json("snapshots", quiet=False)] == [sid, new]
    amber.run("forget", "--keep-last", "1")
    assert [s["id"] for s in amber.json("snapshots", quiet=False)] == [new]


# -- 7. a snapshot swapped for another ---------------------------------------------------------------


def test_a_snapshot_swapped_for_another_is_tampering_not_missing(backed_up, tmp_path):
    amber, src, first = backed_up
    write(src / "a.txt", b"changed\n")
    second = amber.backup(str(src))["snapshot_id"]
    path = amber.repo / "snapshots"
    a = next(p for p in path.rglob(first))
    b = next(p for p in path.rglob(second))
    overwrite(b, a.read_bytes())

    for ref in (second, second[:10]):
        r = amber.run("restore", ref, "--target", tmp_path / "out", "--verify", expect=20)
        assert second[:8] in r.stderr and "does not match its name" in r.stderr, r
    r = amber.run("snapshots", "--json")
    assert [s["id"] for s in r.json()] == [first]
    amber.run("check", expect=20)


# -- 8. a forgotten snapshot put back ----------------------------------------------------------------


def test_a_forgotten_snapshot_put_back_is_reported(backed_up):
    amber, src, first = backed_up
    write(src / "a.txt", b"changed\n")
    amber.backup(str(src))
    path = next(p for p in (amber.repo / "snapshots").rglob(first))
    kept = path.read_bytes()
    amber.run("forget", first)
    amber.run("audit", "verify")
    overwrite(path, kept)
    for cmd in (("audit", "verify"), ("check",)):
        r = amber.run(*cmd, expect=20)
        assert f"snapshot {first[:8]} was forgotten" in r.stderr + r.out, r


# -- 2. config values ----------------------------------------------------------------------------------

CONFIG_MUTATIONS = {
    "min-zero": {"chunker": {"algorithm": "fastcdc2020", "min": 0, "avg": 524288, "max": 8388608}},
    "min-above-max": {"chunker": {"algorithm": "fastcdc2020", "min": 1 << 20, "avg": 1 << 19, "max": 1 << 19}},
    "sizes-strings": {"chunker": {"algorithm": "fastcdc2020", "min": "1", "avg": "2", "max": "3"}},
    "chunker-missing": {"chunker": None},
    "max-huge": {"chunker": {"algorithm": "fastcdc2020", "min": 1 << 19, "avg": 1 << 19, "max": 1 << 40}},
    "pack-huge": {"pack_size": 1 << 40},
    "pack-zero": {"pack_size": 0},
    "pack-float": {"pack_size": 1e7},
    "compression": {"compression": "lz4"},
    "retention-string": {"default_retention": "30d"},
    "retention-mode": {"default_retention": {"mode": "forever", "duration": "30d"}},
    "retention-zero": {"default_retention": {"mode": "governance", "duration": "0d"}},
    "retention-junk": {"default_retention": {"mode": "governance", "duration": "soon"}},
    "id-int": {"id": 5},
    "v-2": {"v": 2},
}


@pytest.mark.parametrize("mutation", list(CONFIG_MUTATIONS), ids=list(CONFIG_MUTATIONS))
def test_a_config_out_of_the_formats_limits_is_refused_at_open(backed_up, mutation):
    amber, src, _sid = backed_up
    r = library(amber)
    config = {k: v for k, v in {**r.config, **CONFIG_MUTATIONS[mutation]}.items() if v is not None}
    _name, raw = r.records.seal(rec.CONFIG, config)
    overwrite(amber.repo / "config", raw)
    for cmd in (("backup", str(src)), ("check",)):
        res = amber.run(*cmd, expect=20)
        assert "config" in res.stderr, res
    res = amber.run("snapshots")  # readers use the config the init event pins
    assert "config: does not match the config pinned" in res.stderr, res


# -- 3. key files ------------------------------------------------------------------------------------


def _hostile_key_file(amber, **changes) -> str:
    r = library(amber)
    doc = json.loads(keyfile.wrap(MasterKeys.generate(), "whatever", n=1 << 10))
    doc.update(changes)
    raw = json.dumps(doc).encode()
    kid = r.records.put(rec.KEY_FILE, raw, layout.key_file) if not changes else None
    if kid is None:  # the record layer refuses to write it; an attacker writes the bytes
        import blake3

        kid = blake3.blake3(raw).hexdigest()
        r.storage.put(layout.key_file(kid), raw)
    return kid


def test_an_invalid_key_file_is_named_and_the_right_password_still_opens(backed_up):
    amber, _src, sid = backed_up
    bad = _hostile_key_file(amber, n=1 << 22, r=8)
    r = amber.run("snapshots", "--json")
    assert [s["id"] for s in r.json()] == [sid]
    assert layout.key_file(bad) in r.stderr and "invalid key file" in r.stderr, r
    r = amber.run("snapshots", env=amber.env(AMBER_PASSWORD="wrong"), expect=12)


def test_only_invalid_key_files_is_an_integrity_error_naming_them(backed_up):
    amber, _src, _sid = backed_up
    real = [p for p in (amber.repo / "keys").rglob("*") if p.is_file() and not p.name.startswith(".")]
    bad = _hostile_key_file(amber, n=1 << 20, r=8)
    for p in real:
        os.chmod(p, 0o644)
        p.unlink()
    r = amber.run("snapshots", expect=20)
    assert layout.key_file(bad) in r.stderr and "scrypt" in r.stderr, r


def test_key_file_cost_is_capped_at_a_margin_over_what_amber_writes():
    ok = json.loads(keyfile.wrap(MasterKeys.generate(), "pw", n=1 << 10))
    for n, r, p, fine in ((1 << 15, 8, 1, True), (1 << 17, 8, 1, True), (1 << 18, 8, 1, False), (1 << 15, 8, 8, False)):
        doc = {**ok, "n": n, "r": r, "p": p}
        if fine:
            keyfile.key_file_info(json.dumps(doc).encode())
        else:
            with pytest.raises(Exception, match="scrypt"):
                keyfile.key_file_info(json.dumps(doc).encode())


# -- 4. passwords -----------------------------------------------------------------------------------


def test_an_empty_password_is_refused_at_init_and_key_add(amber, repo):
    r = amber.run("init", env=amber.env(AMBER_REPOSITORY=amber.base / "other", AMBER_PASSWORD=""), expect=2)
    assert "empty password" in r.stderr
    assert not (amber.base / "other" / "config").exists()
    r = repo.run("key", "add", env=repo.env(AMBER_NEW_PASSWORD=""), expect=2)
    assert "empty password" in r.stderr
    empty = amber.base / "empty"
    empty.write_bytes(b"\n")
    repo.run("key", "add", "--new-password-file", empty, expect=2)
    assert len(repo.json("key", "list")) == 1


def test_password_files_are_bounded_and_must_be_utf8(repo):
    r = repo.run("snapshots", env=repo.env(AMBER_PASSWORD=None, AMBER_PASSWORD_FILE="/dev/zero"), expect=2)
    assert "4096" in r.stderr
    latin = repo.base / "latin1"
    latin.write_bytes(b"caf\xe9\n")
    r = repo.run("snapshots", env=repo.env(AMBER_PASSWORD=None, AMBER_PASSWORD_FILE=latin), expect=2)
    assert "UTF-8" in r.stderr
    r = repo.run("key", "add", "--new-password-file", latin, expect=2)
    assert "UTF-8" in r.stderr
    good = repo.base / "pw"
    good.write_text(repo.password + "\n", encoding="utf-8")
    repo.run("snapshots", env=repo.env(AMBER_PASSWORD=None, AMBER_PASSWORD_FILE=good))


# -- 5. flags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--retain", ""),
        ("--retain-until", ""),
        ("--retain", "0d"),
        ("--retain", "  "),
        ("--retain", "", "--retention-mode", "compliance"),
    ],
)
def test_empty_or_zero_retention_flags_are_usage_errors(backed_up, args):
    amber, src, sid = backed_up
    amber.run("backup", str(src), *args, expect=2)
    assert [s["id"] for s in amber.snapshots()] == [sid]


@pytest.mark.parametrize("args", [("--for", ""), ("--until", ""), ("--for", "0d"), ("--for", "")])
def test_empty_or_zero_lock_flags_are_usage_errors(backed_up, args):
    amber, _src, sid = backed_up
    amber.run("lock", sid[:8], *args, expect=2)
    assert amber.snapshots()[0]["retention"] is None


@pytest.mark.parametrize("value", ["", "0d", " "])
def test_empty_or_zero_default_retention_is_a_usage_error(amber, value):
    amber.run("init", "--default-retention", value, expect=2)
    assert not (amber.repo / "config").exists()


def test_an_empty_keep_within_is_a_usage_error(backed_up):
    amber, _src, sid = backed_up
    amber.run("forget", "--keep-last", "1", "--keep-within", "", expect=2)
    amber.run("forget", "--keep-within", "", expect=2)
    assert [s["id"] for s in amber.snapshots()] == [sid]


# -- 9. junk at the next checkpoint slot ----------------------------------------------------------------


@pytest.mark.parametrize("junk", ["bytes", "foreign"])
def test_junk_at_the_next_checkpoint_slot_is_never_remembered(legacy_log, backed_up, tmp_path, junk):
    amber, src, _sid = backed_up
    r = library(amber)
    size = len(r.audit.entries())
    if junk == "bytes":
        note = b"junk\n"
    else:  # a well-formed checkpoint signed by another repository's key
        other = MasterKeys.generate().signing_key()
        note = cpfmt.sign(cpfmt.Checkpoint(r.audit.origin, size + 1, b"\0" * 32), r.audit.origin, other)
    r.storage.put(layout.log_checkpoint(size + 1), note)
    for _ in range(2):
        write(src / "a.txt", os.urandom(20))
        amber.backup(str(src))
    remembered = list(Path(amber.state).rglob("checkpoint"))
    assert remembered and all(p.read_bytes() != note for p in remembered)
    for cmd in (("audit", "verify"), ("check",)):
        res = amber.run(*cmd, expect=20)
        assert layout.log_checkpoint(size + 1) in res.stderr + res.out, res
    amber.run("snapshots")


# -- 10. malformed log entries, lock events and prune records ---------------------------------------


def test_a_malformed_log_entry_is_reported_by_name_and_writes_go_on(legacy_log, backed_up):
    """An authentic but malformed entry is no event: it is a foreign object, named by verify,
    skipped by `audit log` and by the next append, which takes the next slot."""
    amber, src, _sid = backed_up
    r = library(amber)
    seq = len(r.audit.entries())
    ev = {"v": 1, "seq": seq, "time": 5, "type": "snapshot", "actor": [], "details": [1], "snapshot": "x"}
    r.storage.put(layout.log_entry(seq), r.audit.sealer.seal(KIND_LOG, utf8_json(ev)))
    assert len(amber.json("audit", "log")) == seq
    amber.run("audit", "log")
    res = amber.run("audit", "verify", expect=20)
    assert layout.log_entry(seq) in res.stderr + res.out and "malformed" in res.stderr, res
    write(src / "a.txt", b"more\n")
    amber.backup(str(src))
    events = amber.json("audit", "log")
    assert [e["seq"] for e in events] == list(range(seq + 1)) and events[seq]["type"] == "snapshot"
    assert (amber.repo / layout.log_entry(seq + 1)).is_file()


def test_malformed_lock_events_and_prune_records_are_reported_by_name(backed_up):
    amber, _src, sid = backed_up
    r = library(amber)
    base = {"v": 1, "type": "lock", "snapshot": sid, "time": "2030-01-01T00:00:00Z", "mode": "governance"}
    bad_event = r.records.put(rec.EVENT, {**base, "until": 5}, lambda n: layout.event(sid, n))
    bad_plan = r.records.put(rec.PRUNE, {"v": 1, "time": "2030-01-01T00:00:00Z", "packs": ["zz"]}, layout.prune_plan)
    bad_run = r.records.put(rec.PRUNE, {"v": 1, "time": [], "pid": "x"}, layout.run_marker)
    assert amber.snapshots()[0]["retention"] is None
    amber.run("lock", sid[:8], "--for", "1d")
    res = amber.run("check", expect=20)
    for key in (layout.event(sid, bad_event), layout.prune_plan(bad_plan), layout.run_marker(bad_run)):
        assert key in res.stderr + res.out, res
    amber.run("prune")


# -- properties: generated hostile objects met by the real commands ---------------------------------

hostile_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.text(max_size=6)
    | st.sampled_from(["a" * 64, "2030-01-01T00:00:00Z", "governance", "0d", "/x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
PROPERTY = settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@PROPERTY
@given(
    snapshot_changes=st.dictionaries(
        st.sampled_from(["time", "hostname", "paths", "tags", "tree", "content_root", "retention", "summary", "v"]),
        hostile_values,
        min_size=1,
        max_size=3,
    ),
    config_changes=st.dictionaries(
        st.sampled_from(["chunker", "pack_size", "compression", "default_retention", "id"]), hostile_values, max_size=2
    ),
    key_changes=st.dictionaries(st.sampled_from(["n", "r", "p", "salt", "version"]), hostile_values, max_size=2),
)
def test_commands_meet_generated_hostile_objects_with_documented_codes(
    backed_up, tmp_path, snapshot_changes, config_changes, key_changes
):
    amber, src, sid = backed_up
    r = library(amber)
    name, raw = r.records.seal(rec.SNAPSHOT, {**good_doc(amber, sid), **snapshot_changes})
    r.storage.put(layout.snapshot(name), raw)
    hostile_key = None
    if key_changes:
        doc = {**json.loads(keyfile.wrap(MasterKeys.generate(), "whatever", n=1 << 4)), **key_changes}
        hostile_key = r.storage.put(layout.key_file("f" * 64), json.dumps(doc).encode())
    try:
        assert amber.run("snapshots", "--json").rc == 0
        amber.run("restore", sid, "--target", tmp_path / "out", "--verify")
        assert amber.run("check", expect=None).rc in (0, 20)
        assert amber.run("audit", "verify", expect=None).rc in (0, 20)
        assert amber.run("restore", name, "--target", tmp_path / "out2", expect=None).rc in (0, 20)
        if config_changes:
            config_path = amber.repo / "config"
            kept = config_path.read_bytes()
            overwrite(config_path, r.records.seal(rec.CONFIG, {**r.config, **config_changes})[1])
            try:
                assert amber.run("backup", str(src), expect=None).rc in (0, 20)
                assert amber.run("snapshots", expect=None).rc in (0, 20)
            finally:
                overwrite(config_path, kept)
    finally:
        for key in (
            layout.snapshot(name),
            layout.key_file("f" * 64) if hostile_key is not None or key_changes else None,
        ):
            if key is not None:
                p = amber.repo / key
                if p.exists():
                    p.unlink()


def test_audit_checkpoint_and_evidence_pass_over_junk_at_a_later_slot(backed_up, tmp_path):
    amber, src, sid = backed_up
    r = library(amber)
    size = len(r.audit.entries())
    r.storage.put(layout.log_checkpoint(size + 5), b"junk\n")
    note = amber.run("audit", "checkpoint").stdout
    assert f"\n{size}\n".encode() in note
    amber.run("evidence", "export", sid[:8], str(src / "a.txt"), "-o", tmp_path / "e.zip")


def test_a_password_that_is_not_utf8_is_a_usage_error(repo):
    not_utf8 = os.fsdecode(b"caf\xe9")
    r = repo.run("snapshots", env=repo.env(AMBER_PASSWORD=not_utf8), expect=2)
    assert "UTF-8" in r.stderr
    repo.run("key", "add", env=repo.env(AMBER_NEW_PASSWORD=not_utf8), expect=2)
