"""The compact index behaves as the dict it replaces: lookups, replacement, deletion, iteration."""

from __future__ import annotations

import hashlib
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.repo.blobindex import BlobIndex, IndexEntry


@pytest.fixture(scope="module", autouse=True, params=["memory", "spilled"])
def where(request, tmp_path_factory):
    """Every test twice: records in memory, and records moved to a mapped file on disk (a
    memory budget of 0)."""
    saved = {k: os.environ.get(k) for k in ("AMBER_INDEX_MEMORY", "XDG_CACHE_HOME")}
    if request.param == "spilled":
        os.environ["AMBER_INDEX_MEMORY"] = "0"
        os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield request.param
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_where_the_records_are(where):
    index = BlobIndex()
    index[bid(1)] = entry(1)
    assert index.spilled == (where == "spilled")
    for n in range(2, 20000):  # grows the mapping several times
        index[bid(n)] = entry(n)
    assert all(index[bid(n)] == entry(n) for n in range(1, 20000))


def bid(n: int) -> bytes:
    return hashlib.sha256(str(n).encode()).digest()


def entry(n: int, pack: int = 0) -> IndexEntry:
    return IndexEntry(bid(10**6 + pack), n % 2, n % 3, n * 7, n + 1, 2**32 - 1 - n)


def test_lookups_after_many_additions_and_growth():
    index = BlobIndex()
    for n in range(5000):
        index[bid(n)] = entry(n, n // 100)
    assert len(index) == 5000
    for n in range(5000):
        assert index[bid(n)] == entry(n, n // 100)
        assert bid(n) in index
        assert index.pack_of(bid(n)) == bid(10**6 + n // 100)
    assert bid(5000) not in index
    assert index.get(bid(5000)) is None
    assert index.pack_of(bid(5000)) is None
    with pytest.raises(KeyError):
        index[bid(5000)]


def test_replace_keeps_one_entry():
    index = BlobIndex()
    index[bid(1)] = entry(1, 0)
    index[bid(1)] = entry(1, 9)
    assert len(index) == 1
    assert index[bid(1)].pack == bid(10**6 + 9)
    assert list(index.items()) == [(bid(1), entry(1, 9))]


def test_delete_then_add_again():
    index = BlobIndex()
    for n in range(100):
        index[bid(n)] = entry(n)
    for n in range(0, 100, 2):
        del index[bid(n)]
    assert len(index) == 50
    assert all(bid(n) not in index for n in range(0, 100, 2))
    assert all(index[bid(n)] == entry(n) for n in range(1, 100, 2))  # probing goes past deleted slots
    assert sorted(index) == sorted(bid(n) for n in range(1, 100, 2))
    with pytest.raises(KeyError):
        del index[bid(0)]
    index[bid(0)] = entry(0, 3)
    assert index[bid(0)] == entry(0, 3)
    for n in range(100, 300):  # growth rebuilds the table from the live records only
        index[bid(n)] = entry(n)
    assert len(index) == 251 == len(list(index.values()))


def test_reserve_and_wrong_ids():
    index = BlobIndex()
    index.reserve(10_000)
    index[bid(1)] = entry(1)
    assert index[bid(1)] == entry(1)
    assert "not bytes" not in index
    with pytest.raises(ValueError):
        index[b"short"] = entry(1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.booleans(), st.integers(0, 3)), max_size=200))
def test_matches_a_dict(ops):
    index, model = BlobIndex(), {}
    for n, delete, pack in ops:
        if delete:
            if bid(n) in model:
                del model[bid(n)]
                del index[bid(n)]
        else:
            model[bid(n)] = index_entry = entry(n, pack)
            index[bid(n)] = index_entry
    assert len(index) == len(model)
    assert dict(index.items()) == model
    assert all(index.get(k) == v for k, v in model.items())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.lists(st.integers(0, 80), max_size=40), st.booleans()), max_size=12))
def test_a_whole_pack_at_once_matches_a_dict(ops):
    """put_pack is put for each entry: replacing, adding after deletions, growing the table."""
    from amber.format.pack import PackEntry

    index, model = BlobIndex(), {}
    for pack, ns, delete_first in ops:
        if delete_first and model:
            victim = next(iter(model))
            del model[victim]
            del index[victim]
        pack_id = bid(10**6 + pack)
        entries = [PackEntry(n % 2, n % 3, n * 7, n + 1, n + 5, bid(n)) for n in ns]
        index.put_pack(pack_id, entries)
        for e in entries:
            model[e.id] = IndexEntry(pack_id, e.type, e.comp, e.offset, e.length, e.raw_length)
    assert len(index) == len(model)
    assert dict(index.items()) == model
    with pytest.raises(ValueError):
        index.put_pack(bid(1), [PackEntry(0, 0, 0, 1, 1, b"short")])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.lists(st.integers(0, 30), max_size=20)), max_size=10),
    st.sets(st.integers(0, 4), max_size=3),
)
def test_records_as_an_index_file_stores_them_are_put_pack(files, doomed_packs):
    """put_records (loading an index file, its entries as stored) indexes what put_pack does."""
    from amber.format.pack import PackEntry

    doomed = frozenset(bid(10**6 + p) for p in doomed_packs)
    by_entries, by_records = BlobIndex(), BlobIndex()
    for pack, ns in files:
        pack_id = bid(10**6 + pack)
        entries = [PackEntry(n % 2, n % 3, n * 7 + pack, n + 1, n + 5, bid(n)) for n in ns]
        by_entries.put_pack(pack_id, entries, doomed=doomed)
        stored = b"".join(
            struct.pack("<32sBBIII", e.id, e.type, e.comp, e.offset, e.length, e.raw_length) for e in entries
        )
        by_records.put_records(pack_id, stored, len(entries), doomed=doomed)
    assert list(by_records.items()) == list(by_entries.items())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.lists(st.integers(0, 30), max_size=20)), max_size=10),
    st.sets(st.integers(0, 4), max_size=3),
)
def test_loading_index_files_keeps_the_copy_no_prune_will_delete(files, doomed_packs):
    """put_pack with `doomed` is what loading did blob by blob: a blob already indexed keeps
    its entry unless that entry's pack is doomed and the new one is not."""
    from amber.format.pack import PackEntry

    doomed = frozenset(bid(10**6 + p) for p in doomed_packs)
    index, model = BlobIndex(), {}
    for pack, ns in files:
        pack_id = bid(10**6 + pack)
        entries = [PackEntry(n % 2, n % 3, n * 7 + pack, n + 1, n + 5, bid(n)) for n in ns]
        index.put_pack(pack_id, entries, doomed=doomed)
        for e in entries:
            known = model.get(e.id)
            if known is None or (known.pack in doomed and pack_id not in doomed):
                model[e.id] = IndexEntry(pack_id, e.type, e.comp, e.offset, e.length, e.raw_length)
    assert dict(index.items()) == model


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(0, 60), max_size=40), st.lists(st.integers(0, 80), max_size=6), st.sets(st.integers(0, 60)))
def test_has_all_hex_is_every_id_in_the_index(present, asked, deleted):
    index = BlobIndex()
    for n in present:
        index[bid(n)] = entry(n)
    for n in deleted & present:
        del index[bid(n)]
    live = present - deleted
    assert index.has_all_hex([bid(n).hex() for n in asked]) == all(n in live for n in asked)
    assert not index.has_all_hex(["ab"])  # not a blob id
    with pytest.raises(ValueError):
        index.has_all_hex(["not hex"])
