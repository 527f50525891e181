"""Property tests: hostile snapshot documents, configs, key files, lock events, prune records and
log entries, sealed through the real record layer, either decode into values every reader can
use or raise IntegrityError naming the object; nothing else ever escapes."""

from __future__ import annotations

import json

import pyfastcdc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amber.audit.entry import validate_entry
from amber.clock import to_iso
from amber.crypto import keys as keyfile
from amber.crypto.aead import Sealer
from amber.crypto.keys import MasterKeys
from amber.errors import IntegrityError, WrongPassword
from amber.format import layout
from amber.format import records as recordfmt
from amber.format import snapshot as snapfmt
from amber.repo import records as rec
from amber.repo.selection import select_snapshots
from amber.repo.snapshots import Snapshot
from amber.retention.state import derive
from amber.storage.memory import MemoryStorage

KEY = bytes(range(32))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["a" * 64, "A" * 64, "2030-01-01T00:00:00Z", "governance", "compliance", "30d", "0d", "/x"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

GOOD_SNAPSHOT = {
    "v": 1,
    "time": "2030-01-01T00:00:00Z",
    "hostname": "h",
    "username": "u",
    "uid": 1000,
    "gid": 1000,
    "paths": ["/home/u"],
    "tags": ["t"],
    "excludes": [],
    "tree": "a" * 64,
    "content_root": "b" * 64,
    "parent": None,
    "program": "amber 0.1.0",
    "run": "c" * 64,
    "retention": {"mode": "governance", "until": "2031-01-01T00:00:00Z"},
    "summary": {"files_total": 3, "bytes_total": 10, "duration_s": 0.5},
}

GOOD_CONFIG = {
    "v": 1,
    "id": "0" * 32,
    "created": "2030-01-01T00:00:00Z",
    "chunker": {"algorithm": "fastcdc2020", "min": 524288, "avg": 524288, "max": 8388608, "normalization": 1},
    "pack_size": 16 << 20,
    "compression": "zstd",
    "default_retention": {"mode": "governance", "duration": "30d"},
    "program": "amber 0.1.0",
}


def records() -> rec.Records:
    return rec.Records(MemoryStorage(), Sealer(KEY))


def mutated(good: dict, fields: list[str]):
    """`good` with some fields replaced by arbitrary JSON, some removed, some nested ones changed."""
    changes = st.dictionaries(st.sampled_from(fields), json_values | st.just("<remove>"), max_size=4)
    return changes.map(lambda c: {k: v for k, v in {**good, **c}.items() if v != "<remove>"})


@SETTINGS
@given(mutated(GOOD_SNAPSHOT, [*GOOD_SNAPSHOT, "extra"]))
def test_hostile_snapshot_documents_decode_or_are_refused_by_name(doc):
    r = records()
    name = r.put(rec.SNAPSHOT, doc, layout.snapshot)
    key = layout.snapshot(name)
    try:
        got = r.get(rec.SNAPSHOT, key)
        snap = Snapshot.from_doc(name, got, key)
    except IntegrityError as e:
        assert key in str(e)
        return
    snapfmt.validate(got, key)
    json.dumps(snap.to_json())  # what `snapshots --json` prints
    to_iso(snap.time)
    assert all(isinstance(p, str) for p in snap.paths) and all(isinstance(t, str) for t in snap.tags)
    assert select_snapshots([snap], tags=["t"], hosts=["h"]) in ([], [snap])
    derive(snap.retention, [])


@SETTINGS
@given(
    mutated(GOOD_CONFIG, [*GOOD_CONFIG])
    | st.builds(
        lambda ch: {**GOOD_CONFIG, "chunker": {**GOOD_CONFIG["chunker"], **ch}},
        st.dictionaries(
            st.sampled_from(["min", "avg", "max", "algorithm", "normalization"]),
            json_values | st.integers(min_value=0, max_value=1 << 26),
            max_size=3,
        ),
    )
)
def test_hostile_configs_are_refused_or_usable_by_the_chunker(config):
    r = records()
    r.put_at(rec.CONFIG, config, layout.CONFIG)
    try:
        got = r.get(rec.CONFIG, layout.CONFIG, named=False)
    except IntegrityError as e:
        assert str(e).startswith("config")
        return
    ch = got["chunker"]
    pyfastcdc.FastCDC(ch["avg"], min_size=ch["min"], max_size=ch["max"], seed=1)  # the chunker accepts it
    assert recordfmt.PACK_SIZE_RANGE[0] <= got["pack_size"] <= recordfmt.PACK_SIZE_RANGE[1]


_KEY_DOC = json.loads(keyfile.wrap(MasterKeys.generate(), "pw", n=1 << 4))


@SETTINGS
@given(
    mutated(_KEY_DOC, [*_KEY_DOC])
    | st.builds(
        lambda n, r, p: {**_KEY_DOC, "n": n, "r": r, "p": p},
        st.integers(min_value=-2, max_value=1 << 30),
        st.integers(min_value=-1, max_value=1 << 10),
        st.integers(min_value=-1, max_value=1 << 10),
    )
)
def test_hostile_key_files_are_refused_or_cost_at_most_the_cap(doc):
    raw = json.dumps(doc).encode()
    try:
        info = keyfile.key_file_info(raw)
    except IntegrityError:
        return
    assert info["kdf"] == "scrypt"
    assert info["n"] * info["r"] * info["p"] <= keyfile.MAX_SCRYPT_COST
    assert 128 * info["n"] * info["r"] * info["p"] <= keyfile.MAX_SCRYPT_MEMORY
    if info["n"] * info["r"] * info["p"] <= 1 << 12:  # cheap enough to run here
        try:
            keyfile.unwrap(raw, "pw")
        except (IntegrityError, WrongPassword):
            pass


_ARGON2_DOC = json.loads(keyfile.wrap(MasterKeys.generate(), "pw", argon2=(64, 1, 1)))


@SETTINGS
@given(
    mutated(_ARGON2_DOC, [*_ARGON2_DOC])
    | st.builds(
        lambda m, t, p: {**_ARGON2_DOC, "memory": m, "iterations": t, "lanes": p},
        st.integers(min_value=-2, max_value=1 << 41) | st.sampled_from([1 << 40, 1 << 18, (1 << 18) + 1]),
        st.integers(min_value=-1, max_value=1 << 32),
        st.integers(min_value=-1, max_value=1 << 24),
    )
)
def test_hostile_argon2id_key_files_are_refused_or_cost_at_most_the_cap(doc):
    """memory=2^40 KiB and the like are refused before Argon2id runs: never an out-of-memory."""
    raw = json.dumps(doc).encode()
    try:
        info = keyfile.key_file_info(raw)
    except IntegrityError:
        return
    assert info["kdf"] == "argon2id"
    assert 8 * info["lanes"] <= info["memory"] <= keyfile.MAX_ARGON2_MEMORY
    assert info["memory"] * info["iterations"] <= keyfile.MAX_ARGON2_COST
    assert info["lanes"] <= keyfile.MAX_ARGON2_LANES
    if info["memory"] * info["iterations"] <= 1 << 12:  # cheap enough to run here
        try:
            keyfile.unwrap(raw, "pw")
        except (IntegrityError, WrongPassword):
            pass


def test_an_argon2id_key_file_asking_for_a_terabyte_is_refused_by_name():
    raw = json.dumps({**_ARGON2_DOC, "memory": 1 << 40}).encode()
    with pytest.raises(IntegrityError, match="Argon2id memory=1099511627776 KiB"):
        keyfile.unwrap(raw, "pw")


SID = "d" * 64
GOOD_EVENT = {
    "v": 1,
    "type": "lock",
    "snapshot": SID,
    "time": "2030-01-01T00:00:00Z",
    "host": "h",
    "user": "u",
    "key": "0" * 16,
    "mode": "compliance",
    "until": "2031-01-01T00:00:00Z",
    "bypass_governance": False,
    "reason": "r",
    "run": None,
    "paths": ["/x"],
}


@SETTINGS
@given(mutated(GOOD_EVENT, [*GOOD_EVENT]))
def test_hostile_lock_events_are_refused_or_fold_cleanly(ev):
    r = records()
    name = r.put(rec.EVENT, ev, lambda n: layout.event(SID, n))
    key = layout.event(SID, name)
    try:
        got = r.get(rec.EVENT, key)
    except IntegrityError as e:
        assert key in str(e)
        return
    got["id"] = name
    derive(None, [got])


@SETTINGS
@given(
    mutated({"v": 1, "time": "2030-01-01T00:00:00Z", "packs": ["e" * 64], "pid": 5}, ["v", "time", "packs", "pid"]),
    st.sampled_from([layout.prune_plan, layout.prune_tomb, layout.run_marker]),
)
def test_hostile_prune_records_are_refused_or_usable(doc, key_for):
    r = records()
    name = r.put(rec.PRUNE, doc, key_for)
    try:
        got = r.get(rec.PRUNE, key_for(name))
    except IntegrityError as e:
        assert key_for(name) in str(e)
        return
    if not key_for(name).startswith(layout.RUNNING):
        assert all(bytes.fromhex(p) for p in got["packs"])


GOOD_ENTRY = {
    "v": 1,
    "seq": 3,
    "time": "2030-01-01T00:00:00Z",
    "type": "snapshot",
    "snapshot": SID,
    "actor": {"host": "h", "user": "u", "key": "k"},
    "details": {"tree": "a" * 64, "content_root": "b" * 64},
}


@SETTINGS
@given(mutated(GOOD_ENTRY, [*GOOD_ENTRY]))
def test_hostile_log_entries_are_refused_or_readable(ev):
    try:
        validate_entry(ev, layout.log_entry(3))
    except IntegrityError as e:
        assert layout.log_entry(3) in str(e)
        return
    assert isinstance(ev.get("details", {}), dict) and isinstance(ev.get("actor", {}), dict)
