"""Damage records and healing at library level: the record's encoding, the index's choice of
copy, and the worker processes of check and restore reporting what they found damaged."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amber.crypto.aead import Sealer
from amber.errors import IntegrityError, RestoreFailed
from amber.format import damage as damagefmt
from amber.format import layout
from amber.format.pack import BLOB_DATA, PackEntry
from amber.repo import damage, packcheck
from amber.repo.blobindex import BlobIndex
from amber.repo.records import Records
from amber.restore import restorer
from amber.storage.memory import MemoryStorage

from .helpers import open_repo, small_tree

HEX = st.binary(min_size=32, max_size=32).map(bytes.hex)
TEXT = st.text(max_size=300)
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    time=st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(lambda t: t.isoformat()),
    found_by=TEXT,
    host=TEXT,
    pairs=st.lists(st.tuples(HEX, HEX, st.text(max_size=2000)), min_size=1, max_size=20),
)
def test_a_damage_record_round_trips(time, found_by, host, pairs):
    doc = damagefmt.document(time, found_by, host, pairs)
    back = damagefmt.validate(json.loads(json.dumps(doc, sort_keys=True)), "damage/x")
    assert back == doc
    assert damagefmt.pairs(back) == [(bytes.fromhex(b), bytes.fromhex(p)) for b, p, _w in pairs]
    assert all(len(e["problem"]) <= damagefmt.MAX_PROBLEM for e in back["damaged"])


@FAST
@given(
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=8), c),
        max_leaves=15,
    )
)
def test_a_junk_damage_record_is_an_integrity_error(value):
    doc = {"v": 1, "time": "2026-01-01T00:00:00Z", "found_by": "x", "damaged": value}
    try:
        damagefmt.validate(doc, "damage/x")
    except IntegrityError as e:
        assert "damage/x" in str(e)


@FAST
@given(found_by=TEXT, pairs=st.lists(st.tuples(HEX, HEX, TEXT), min_size=1, max_size=5))
def test_a_sealed_damage_record_round_trips_and_is_found_by_its_name(found_by, pairs):
    records = Records(MemoryStorage(), Sealer(b"k" * 32))
    doc = damagefmt.document("2026-12-02T00:00:00Z", found_by, "host", pairs)
    name = records.put(damage.DAMAGE, doc, layout.damage_record)
    assert records.get(damage.DAMAGE, layout.damage_record(name)) == doc
    loaded = damage.load(records)
    assert loaded.problems == []
    assert set(loaded.notes) == {(bytes.fromhex(b), bytes.fromhex(p)) for b, p, _w in pairs}


def test_a_sealed_record_round_trips_through_storage(repo):
    doc = damagefmt.document("2026-01-01T00:00:00Z", "check", "host", [("ab" * 32, "cd" * 32, "why")])
    name = repo.records.put(damage.DAMAGE, doc, layout.damage_record)
    assert repo.records.get(damage.DAMAGE, layout.damage_record(name)) == doc
    loaded = damage.load(repo.records)
    assert loaded.problems == []
    assert list(loaded.notes) == [(bytes.fromhex("ab" * 32), bytes.fromhex("cd" * 32))]


def _entry(bid: bytes, offset: int = 0) -> PackEntry:
    return PackEntry(BLOB_DATA, 0, offset, 40, 9, bid)


@pytest.mark.parametrize("order", ["damaged first", "good first"])
def test_the_index_keeps_the_copy_not_recorded_damaged(order):
    bid, bad, good = b"b" * 32, b"B" * 32, b"G" * 32
    index = BlobIndex()
    packs = [bad, good] if order == "damaged first" else [good, bad]
    for p in packs:
        index.put_pack(p, [_entry(bid)], doomed=frozenset(), damaged={bid: frozenset({bad})})
    assert index.pack_of(bid) == good
    # a writer storing a new copy replaces the entry whatever it was
    index.put_pack(b"N" * 32, [_entry(bid)])
    assert index.pack_of(bid) == b"N" * 32


@pytest.fixture
def backed_up(repo, repo_path, tmp_path):
    src = small_tree(tmp_path / "src")
    result = repo.backup([src])
    r = open_repo(repo_path)
    snap = r.find_snapshot(result.snapshot_id)
    r.load_index()
    bid = bytes.fromhex(r.node_at(snap, os.path.join(src, "unique.bin"))["content"][0])
    return r, snap, src, bid, r.blobs.lookup(bid)


def _flip(repo_path, pack_id: bytes, offset: int) -> None:
    path = os.path.join(repo_path, *layout.pack(pack_id).split("/"))
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x10]))


@pytest.mark.parametrize("checkers", ["threads", "processes"])
def test_check_records_damage_and_reports_it_healed(backed_up, repo_path, monkeypatch, checkers):
    monkeypatch.setattr(packcheck, "PROCESS_AFTER_BYTES", 0 if checkers == "processes" else 1 << 60)
    r, snap, src, bid, entry = backed_up
    _flip(repo_path, entry.pack, entry.offset + entry.length // 2)
    rep = r.check(read_data=True)
    assert not rep.ok and rep.damage_recorded >= 1
    assert {d["blob"] for d in rep.damage_unhealed} == {bid.hex()}

    healer = open_repo(repo_path)
    healer.load_index()
    assert not healer.blobs.has(bid), "a blob whose only copy is damaged counts as absent"
    assert healer.backup([src]).bytes_added > 0
    rep = open_repo(repo_path).check(read_data=True)
    assert rep.ok, rep.errors
    assert [(h["blob"], h["pack"]) for h in rep.damage_healed] == [(bid.hex(), entry.pack.hex())]
    reader = open_repo(repo_path)
    reader.load_index()
    assert reader.blobs.lookup(bid).pack != entry.pack, "readers take the good copy"


def test_restore_worker_processes_report_damage(backed_up, repo_path, tmp_path, monkeypatch):
    monkeypatch.setattr(restorer, "PROCESS_AFTER_FILES", 1)
    r, snap, src, bid, entry = backed_up
    _flip(repo_path, entry.pack, entry.offset + 40)
    with pytest.raises(RestoreFailed):
        r.restore(snap, str(tmp_path / "out"), processes=True)
    assert (bid, entry.pack) in damage.load(r.records).notes
    healer = open_repo(repo_path)
    assert healer.backup([src]).bytes_added > 0
    fresh = open_repo(repo_path)
    fresh.restore(fresh.find_snapshot(snap.id), str(tmp_path / "again"), verify=True)
    with open(os.path.join(tmp_path / "again", src.lstrip("/"), "unique.bin"), "rb") as f:
        assert f.read() == open(os.path.join(src, "unique.bin"), "rb").read()


def _index_of(**where: bytes) -> tuple[BlobIndex, dict[str, bytes]]:
    """An index placing each named blob (a 32-byte id made from its name) in the given pack."""
    index, ids = BlobIndex(), {}
    for name, pack in where.items():
        ids[name] = name.encode().ljust(32, b".")
        index.put_pack(pack, [_entry(ids[name])])
    return index, ids


def test_check_sorts_damage_into_healed_unhealed_and_refuted():
    bad_pack, good_pack, other = b"A" * 32, b"B" * 32, b"C" * 32
    index, ids = _index_of(healed=good_pack, lost=bad_pack, fine=other)
    recorded = {(ids["healed"], bad_pack): "rot", (ids["lost"], bad_pack): "rot", (ids["fine"], other): "made up"}
    found = damage.Found()
    found.pack(bad_pack, "pack A: content does not match its name")
    # this check read `lost` in its pack and found it damaged (again); `fine` it read correctly
    again = {(ids["lost"], bad_pack): "tag mismatch"}
    out = damage.report(index, recorded, again, found, read={bad_pack, good_pack, other})
    assert [(d["blob"], d["pack"]) for d in out.unhealed] == [(ids["lost"].hex(), bad_pack.hex())]
    assert [(d["blob"], d["copy"]) for d in out.healed] == [(ids["healed"].hex(), good_pack.hex())]
    assert out.damaged_packs == [bad_pack.hex()] and out.unhealed_blobs == {ids["lost"]}
    assert any("reads correctly" in w for w in out.warnings)  # the record naming a good copy
    assert any("content does not match" in e for e in out.errors)


def test_a_pack_whose_damage_is_all_healed_passes_unless_it_could_not_be_read():
    bad_pack, good_pack = b"A" * 32, b"B" * 32
    index, ids = _index_of(blob=good_pack)
    recorded = {(ids["blob"], bad_pack): "rot"}
    found = damage.Found()
    found.pack(bad_pack, "content does not match its name")
    out = damage.report(index, recorded, {}, found, read={bad_pack, good_pack})
    assert out.errors == [] and out.healed and out.damaged_packs == []
    found = damage.Found()
    found.pack(bad_pack, "cannot read: connection reset", read=False)
    out = damage.report(index, recorded, {}, found, read={bad_pack, good_pack})
    assert out.errors == ["cannot read: connection reset"] and out.damaged_packs == [bad_pack.hex()]


def test_without_read_data_a_recorded_copy_is_never_refuted():
    pack = b"A" * 32
    index, ids = _index_of(blob=pack)
    out = damage.report(index, {(ids["blob"], pack): "rot"}, {}, damage.Found(), read=None)
    assert out.unhealed and out.errors and not out.warnings
