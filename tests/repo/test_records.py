"""The record layer: every kind round-trips, and any tampering is an IntegrityError, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.crypto import keys as keyfile
from amber.crypto.aead import Sealer
from amber.crypto.keys import MasterKeys
from amber.errors import IntegrityError, NotFound
from amber.format import layout
from amber.format.pack import BLOB_DATA, PackEntry
from amber.repo import records as rec
from amber.storage.memory import MemoryStorage

KEY = bytes(range(32))


def records():
    return rec.Records(MemoryStorage(), Sealer(KEY))


docs = st.dictionaries(st.text(min_size=1, max_size=8), st.integers() | st.text(max_size=8), max_size=6)


@settings(max_examples=50)
@given(docs)
def test_json_records_round_trip(doc):
    r = records()
    for rtype, key_for in (
        (rec.EVENT, lambda n: layout.event("a" * 64, n)),
        (rec.PRUNE, layout.prune_plan),
        (rec.PRUNE, layout.run_marker),
    ):
        name = r.put(rtype, doc, key_for)
        try:  # a record is validated when read: it decodes to what was put, or is refused by name
            assert r.get(rtype, key_for(name)) == doc
        except IntegrityError as e:
            assert key_for(name) in str(e)


def test_snapshots_index_files_and_config_round_trip():
    r = records()
    snap = {
        "v": 1,
        "time": "2030-01-01T00:00:00Z",
        "hostname": "h",
        "paths": ["/x"],
        "tree": "a" * 64,
        "content_root": "c" * 64,
    }
    sid = r.put(rec.SNAPSHOT, snap, layout.snapshot)
    assert r.get(rec.SNAPSHOT, layout.snapshot(sid)) == snap
    packs = [(bytes([7]) * 32, [PackEntry(BLOB_DATA, 1, 0, 40, 12, bytes([9]) * 32)])]
    name = r.put(rec.INDEX, packs, layout.index_file)
    assert [(p.pack, p.entries) for p in r.get(rec.INDEX, layout.index_file(name))] == packs
    config = {
        "v": 1,
        "id": "0" * 32,
        "chunker": {"algorithm": "fastcdc2020", "min": 1 << 19, "avg": 1 << 19, "max": 1 << 23},
        "pack_size": 1 << 24,
    }
    r.put_at(rec.CONFIG, config, layout.CONFIG)
    assert r.get(rec.CONFIG, layout.CONFIG, named=False) == config


def test_key_files_are_records_that_protect_themselves():
    r = rec.Records(MemoryStorage(), None)  # no data key: a repository being opened
    raw = keyfile.wrap(MasterKeys.generate(), "pw", n=2**10)
    kid = r.put(rec.KEY_FILE, raw, layout.key_file)
    assert r.get(rec.KEY_FILE, layout.key_file(kid)) == raw
    with pytest.raises(IntegrityError):
        r.get(rec.EVENT, layout.key_file(kid))  # anything sealed needs the data key


def test_a_record_under_another_name_is_refused():
    r = records()
    name = r.put(rec.EVENT, {"v": 1}, layout.run_marker)
    raw = r.storage.get(layout.run_marker(name))
    r.storage.put(layout.run_marker("0" * 64), raw)
    with pytest.raises(IntegrityError, match="does not match its name"):
        r.get(rec.EVENT, layout.run_marker("0" * 64))


def test_a_record_of_another_kind_is_refused():
    r = records()
    name = r.put(rec.PRUNE, {"v": 1}, layout.run_marker)
    r.storage.put(layout.event("b" * 64, name), r.storage.get(layout.run_marker(name)))
    with pytest.raises(IntegrityError, match=r"holds a prune record"):
        r.get(rec.EVENT, layout.event("b" * 64, name))


@pytest.mark.parametrize("plain", [b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 100_000, b"7"])
def test_sealed_garbage_is_an_integrity_error(plain):
    r = records()
    raw = r.sealer.seal(rec.EVENT.envelope, plain)
    name = __import__("blake3").blake3(raw).hexdigest()
    r.storage.put(layout.event("c" * 64, name), raw)
    with pytest.raises(IntegrityError):
        r.get(rec.EVENT, layout.event("c" * 64, name))


@settings(max_examples=50)
@given(st.binary(max_size=200))
def test_arbitrary_stored_bytes_never_crash_a_reader(raw):
    r = records()
    name = __import__("blake3").blake3(raw).hexdigest()
    for rtype, key in (
        (rec.EVENT, layout.event("d" * 64, name)),
        (rec.SNAPSHOT, layout.snapshot(name)),
        (rec.INDEX, layout.index_file(name)),
        (rec.KEY_FILE, layout.key_file(name)),
    ):
        r.storage.put(key, raw)
        with pytest.raises(IntegrityError):
            r.get(rtype, key)


def test_scan_reports_bad_records_and_yields_good_ones():
    r = records()
    good = r.put(rec.PRUNE, {"v": 1, "time": "2030-01-01T00:00:00Z", "packs": []}, layout.prune_tomb)
    r.storage.put(layout.prune_plan("e" * 64), b"garbage")
    errors: list[str] = []
    found = [(info.key, doc) for info, doc in r.scan(rec.PRUNE, layout.PRUNE, errors)]
    assert found == [(layout.prune_tomb(good), {"v": 1, "time": "2030-01-01T00:00:00Z", "packs": []})]
    assert len(errors) == 1 and errors[0].startswith(layout.prune_plan("e" * 64))
    with pytest.raises(NotFound):
        r.get(rec.PRUNE, layout.prune_plan("f" * 64))
