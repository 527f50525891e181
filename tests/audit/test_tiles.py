"""The tiled audit log (docs/AUDIT-LOG.md §2.2, §7, §11): names, encodings, appends, proofs,
incremental verification, hostile tiles and bundles, and the upgrade of the layout before tiles.
Library level, real local storage; tests/cli/test_cli_tiles.py runs the commands."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.audit import merkle
from amber.audit import tiles as t
from amber.crypto.aead import KIND_LOG_BUNDLE, KIND_LOG_TILE
from amber.errors import IntegrityError, UsageError
from amber.format import layout
from amber.storage.base import StorageWrapper

from audit_helpers import backup, events, init_repo, open_repo, write

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "log_tiles.json").read_text())


def grow(repo, n: int) -> None:
    for i in range(n):
        repo.log_event("check", read_data=False, ok=True, errors=0, n=i)


def stored(repo_path) -> dict[str, bytes]:
    """Every object under log/ of a local repository, by key."""
    root = Path(repo_path)
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in (root / "log").rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def plant(repo_path, key: str, data: bytes) -> None:
    path = Path(repo_path, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class Counting(StorageWrapper):
    """Counts the requests made under log/ (gets, stats and listings)."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.reads: list[str] = []

    def get(self, key, offset=0, length=None):
        if key.startswith("log/"):
            self.reads.append(key)
        return self.inner.get(key, offset, length)

    def stat(self, key):
        if key.startswith("log/"):
            self.reads.append(key)
        return self.inner.stat(key)

    def list(self, prefix=""):
        if prefix.startswith("log/") or prefix == "":
            self.reads.append(prefix)
        return self.inner.list(prefix)


def counted(repo_path):
    repo = open_repo(repo_path)
    wrapped = Counting(repo.storage)
    repo.storage = repo.audit.storage = wrapped
    repo.records.storage = wrapped
    return repo, wrapped


# -- names and encodings ---------------------------------------------------------------------


def test_golden_paths_follow_c2sp_tlog_tiles():
    for case in VECTORS["paths"]:
        key = t.object_key(case["level"], case["index"], case["width"], case["alt"])
        assert key == case["key"]
        place = t.parse_key(key)
        assert (place.level, place.index, place.width, place.alt) == (
            case["level"],
            case["index"],
            case["width"],
            case["alt"],
        )
    assert t.object_key(0, 1234067, 256) == "log/tile/0/x001/x234/067"  # the spec's own example


def test_golden_frontiers_roots_and_blocks():
    entries = [e.encode() for e in VECTORS["entries"]]
    leaves = [merkle.leaf_hash(e) for e in entries]
    assert [x.hex() for x in leaves] == VECTORS["leaves"]
    fr: list[bytes] = []
    for i, leaf in enumerate(leaves):
        fr = t.extend(fr, i, leaf)
        assert [h.hex() for h in fr] == VECTORS["frontiers"][i]
        assert t.frontier_root(fr).hex() == VECTORS["roots"][i] == merkle.root(leaves[: i + 1]).hex()
    for name, decode in (("bundle_size5", t.decode_bundle), ("bundle_size4", t.decode_bundle)):
        level, index, start, width = VECTORS[name]["place"]
        place = t.Place(level, index, start, width)
        frontier, got = decode(bytes.fromhex(VECTORS[name]["plaintext"]), place, "x")
        assert got == entries[start:width] and t.frontier_root(frontier).hex() == VECTORS["roots"][width - 1]
    for name in ("tile_size5", "tile_size4"):
        level, index, start, width = VECTORS[name]["place"]
        got = t.decode_tile(bytes.fromhex(VECTORS[name]["plaintext"]), t.Place(level, index, start, width), "x")
        assert got == leaves[start:width]


@settings(max_examples=200, deadline=None)
@given(
    level=st.one_of(st.none(), st.integers(0, t.MAX_LEVEL)),
    index=st.integers(0, 10**15),
    width=st.integers(1, 256),
    alt=st.integers(0, t.ALTERNATES - 1),
)
def test_names_round_trip(level, index, width, alt):
    key = t.object_key(level, index, width, alt)
    place = t.parse_key(key)
    assert place is not None and place.key() == key
    assert (place.level, place.index, place.width, place.alt) == (level, index, width, alt)


@settings(max_examples=100, deadline=None)
@given(junk=st.text(alphabet="x0123456789./pentrisl", max_size=30))
def test_names_that_are_not_ours_parse_to_nothing_or_to_themselves(junk):
    key = t.TILE + junk
    place = t.parse_key(key)
    assert place is None or place.key() == key


@settings(max_examples=100, deadline=None)
@given(width=st.integers(1, 256), index=st.integers(0, 2**40), data=st.data())
def test_tile_and_bundle_blocks_round_trip(width, index, data):
    start = t.block_start(width) if width < t.WIDTH else 0
    hashes = [data.draw(st.binary(min_size=32, max_size=32)) for _ in range(width - start)]
    place = t.Place(0, index, start, width)
    assert t.decode_tile(t.encode_tile(place, hashes), place, "k") == hashes
    entries = [data.draw(st.binary(max_size=40)) for _ in range(width - start)]
    frontier = data.draw(st.lists(st.binary(min_size=32, max_size=32), max_size=5))
    bplace = t.Place(None, index, start, width)
    assert t.decode_bundle(t.encode_bundle(bplace, frontier, entries), bplace, "k") == (frontier, entries)
    with pytest.raises(IntegrityError):  # a block is bound to its own place
        t.decode_tile(t.encode_tile(place, hashes), t.Place(0, index + 1, start, width), "k")


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 3000))
def test_blocks_cover_every_width_and_frontier_root_is_mth(n):
    width = n % 256 or 256
    covered = [p for s, e in t.blocks(width) for p in range(s, e)]
    assert covered == list(range(width)) and len(t.blocks(width)) == bin(width).count("1")
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    fr: list[bytes] = []
    for i, leaf in enumerate(leaves):
        fr = t.extend(fr, i, leaf)
    assert t.frontier_root(fr) == merkle.root(leaves)


# -- appends, proofs, verification -----------------------------------------------------------


def test_a_new_repository_writes_tiles_and_proofs_come_from_them(repo, repo_path):
    grow(repo, 700)
    objects = stored(repo_path)
    assert not any(k.startswith(layout.LOG_ENTRIES) for k in objects)
    assert "log/tile/entries/000" in objects and "log/tile/entries/001" in objects
    assert "log/tile/0/000" in objects and "log/tile/entries/002.p/189" in objects
    entries = repo.audit.entries()
    assert [ev["seq"] for ev, _raw in entries] == list(range(701))
    leaves = repo.audit.leaves(entries)
    store = repo.audit.store()
    head = store.head()
    assert head.size == 701 and head.root == merkle.root(leaves)
    for i in (0, 1, 255, 256, 600, 700):
        merkle.verify_inclusion(leaves[i], i, 701, store.inclusion(i, 701), head.root)
    for m in (1, 2, 255, 256, 257, 512, 699, 700):
        proof = store.consistency(m, 701)
        assert proof == merkle.consistency_proof(leaves, m)
    assert store.reads < 40, "proofs read a few tiles, not the log"
    assert repo.audit.verify(full=True).ok and repo.audit.verify().ok


def test_an_append_reads_a_bounded_number_of_objects(repo, repo_path):
    grow(repo, 300)
    small, counter = counted(repo_path)
    small.log_event("check", read_data=False, ok=True)
    few = len(counter.reads)
    grow(repo, 1000)
    big, counter = counted(repo_path)
    big.log_event("check", read_data=False, ok=True)
    assert few <= 20 and len(counter.reads) <= 20, counter.reads


def test_verify_from_the_remembered_checkpoint_reads_only_new_entries(repo, repo_path):
    grow(repo, 600)
    assert repo.audit.verify(full=True).ok  # remembers 601
    other = open_repo(repo_path)
    other.audit.remembered = lambda: None  # another client, with its own memory
    other.audit.remember = lambda note: None
    grow(other, 10)
    reader, counter = counted(repo_path)
    rep = reader.audit.verify()
    assert rep.ok and rep.size == 611 and rep.remembered == 601, rep.errors
    bundles = [k for k in counter.reads if k.startswith(t.ENTRIES)]
    assert "log/tile/entries/000" not in bundles and len(counter.reads) < 40, counter.reads


def test_concurrent_appenders_each_land_once(repo, repo_path):
    class Racing(StorageWrapper):
        """Another client appends right before this one claims its place."""

        def __init__(self, inner, other) -> None:
            super().__init__(inner)
            self.other, self.armed = other, True

        def put(self, key, data, *, retention=None):
            if key.startswith(t.ENTRIES) and self.armed:
                self.armed = False
                self.other.log_event("check", read_data=False, ok=True, writer=1)
            return self.inner.put(key, data, retention=retention)

    mine = open_repo(repo_path)
    mine.audit.storage = Racing(mine.storage, open_repo(repo_path))
    mine.log_event("check", read_data=False, ok=True, writer=0)
    got = [(ev["seq"], ev["details"].get("writer")) for ev in events(open_repo(repo_path))]
    assert got == [(0, None), (1, 1), (2, 0)]
    assert open_repo(repo_path).audit.verify(full=True).ok


# -- hostile tiles and bundles ---------------------------------------------------------------


def test_a_planted_bundle_at_the_next_width_is_passed_over_and_reported(repo, repo_path):
    grow(repo, 4)  # size 5
    junk_key = t.bundle_of(6).key()
    plant(repo_path, junk_key, b"junk at the next width\n")
    before = stored(repo_path)
    grow(repo, 3)
    after = stored(repo_path)
    assert after[junk_key] == before[junk_key] and all(after[k] == v for k, v in before.items())
    assert junk_key + ".1" in after  # the append took the next name
    assert [ev["seq"] for ev in events(open_repo(repo_path))] == list(range(8))
    rep = open_repo(repo_path).audit.verify(full=True)
    assert not rep.ok and any(junk_key in e and "foreign" in e for e in rep.errors), rep.errors
    open_repo(repo_path).audit.mark_foreign([junk_key], "planted in a test")
    assert open_repo(repo_path).audit.verify(full=True).ok


def test_an_authentic_tile_whose_hashes_do_not_match_its_entries_is_an_error(repo, repo_path):
    grow(repo, 300)
    place = t.Place(0, 0, 0, t.WIDTH)
    os.unlink(Path(repo_path, place.key()))
    wrong = [merkle.leaf_hash(b"not an entry")] * t.WIDTH
    plant(repo_path, place.key(), repo.audit.sealer.seal(KIND_LOG_TILE, t.encode_tile(place, wrong)))
    rep = open_repo(repo_path).audit.verify(full=True)
    assert any(place.key() in e and "do not match its entries" in e for e in rep.errors), rep.errors


def test_a_missing_tile_is_an_error_and_appends_go_on(repo, repo_path):
    grow(repo, 300)
    key = t.Place(0, 0, 0, t.WIDTH).key()
    os.unlink(Path(repo_path, key))
    rep = open_repo(repo_path).audit.verify(full=True)
    assert any(key in e and "missing" in e for e in rep.errors), rep.errors
    grow(open_repo(repo_path), 2)
    assert len(events(open_repo(repo_path))) == 303


def test_a_partial_tile_longer_than_the_tree_is_foreign(repo, repo_path):
    grow(repo, 9)  # size 10: level 0 holds 10 hashes
    place = t.Place(0, 0, 8, 12)  # width 12 > 10
    hashes = [merkle.leaf_hash(b"x")] * 4
    plant(repo_path, place.key(), repo.audit.sealer.seal(KIND_LOG_TILE, t.encode_tile(place, hashes)))
    rep = open_repo(repo_path).audit.verify(full=True)
    assert any(place.key() in e and "beyond the log" in e for e in rep.errors), rep.errors
    grow(open_repo(repo_path), 3)  # the honest append of width 11 and 12 is not fooled
    store = open_repo(repo_path).audit.store()
    head = store.head()
    leaves = open_repo(repo_path).audit.leaves(events_raw(repo_path))
    assert head.size == 13 and head.root == merkle.root(leaves)
    assert store.hashes(0, 13, 0, 13) == leaves


def events_raw(repo_path):
    return open_repo(repo_path).audit.entries()


def test_junk_at_the_next_tile_width_never_stops_appends(repo, repo_path):
    grow(repo, 4)  # size 5; the next append writes level 0's block of width 6
    key = t.tile_block(0, 6).key()
    plant(repo_path, key, b"junk tile\n")
    grow(repo, 5)
    reader = open_repo(repo_path)
    leaves = reader.audit.leaves(reader.audit.entries())
    store = reader.audit.store()
    assert store.hashes(0, 10, 0, 10) == leaves  # rebuilt from its bundle
    assert Path(repo_path, key).read_bytes() == b"junk tile\n"
    rep = reader.audit.verify(full=True)
    assert any(key in e for e in rep.errors), rep.errors


def _superseded(repo, change: str) -> tuple[str, bytes]:
    """(key, sealed bytes) of a block no longer part of the log's current tiles (the bundle or
    level-0 block of width 6 in a log of 9 events), made authentic but `change`d."""
    store = repo.audit.store()
    raws = [raw for _ev, raw in repo.audit.entries()]
    frontier = store.frontier(6)
    if change.startswith("tile"):
        place = t.tile_block(0, 6)
        hashes = merkle.leaf_hashes(raws[4:6])
        plain = t.encode_tile(place, hashes[::-1] if change == "tile hashes" else hashes)
        return place.key(), repo.audit.sealer.seal(KIND_LOG_TILE, plain + (b"x" if change == "tile length" else b""))
    place = t.bundle_of(6)
    entries = raws[4:6]
    if change == "entries":
        entries = [raws[4], raws[4]]
    elif change == "frontier":
        frontier = store.frontier(5)
    plain = t.encode_bundle(place, frontier, entries) + (b"junk" if change == "trailing bytes" else b"")
    return place.key(), repo.audit.sealer.seal(KIND_LOG_BUNDLE, plain)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("entries", "its entries are not the log's"),
        ("frontier", "its frontier is not the log's"),
        ("trailing bytes", "foreign object"),
        ("tile hashes", "do not match its entries"),
        ("tile length", "foreign object"),
        ("none", None),
    ],
)
def test_every_superseded_block_is_compared_with_the_log(repo, repo_path, change, said):
    """A full verify reads the blocks the current tiles no longer use as well: an authentic one
    that says something else than the log is an error, one that does not decode is foreign."""
    grow(repo, 8)  # size 9: the blocks of width 6 are superseded by those of width 8
    key, sealed = _superseded(repo, change)
    os.unlink(Path(repo_path, key))
    plant(repo_path, key, sealed)
    rep = open_repo(repo_path).audit.verify(full=True)
    if said is None:
        assert rep.ok, rep.errors
    else:
        assert any(key in e and said in e for e in rep.errors), rep.errors


def test_a_bundle_sealed_for_another_place_is_foreign(repo, repo_path):
    grow(repo, 2)  # size 3
    first = t.bundle_of(1)
    data = Path(repo_path, first.key()).read_bytes()
    plain = repo.audit.sealer.open(KIND_LOG_BUNDLE, data)
    key = t.bundle_of(4).key()
    plant(repo_path, key, repo.audit.sealer.seal(KIND_LOG_BUNDLE, plain))  # a copy under the next name
    grow(repo, 1)
    assert len(events(open_repo(repo_path))) == 4
    rep = open_repo(repo_path).audit.verify(full=True)
    assert any(key in e and "not this name" in e for e in rep.errors), rep.errors


# -- history -----------------------------------------------------------------------------------


def test_a_rolled_back_or_forked_tiled_log_is_refused(repo, repo_path, tmp_path):
    grow(repo, 5)
    old = tmp_path / "old"
    shutil.copytree(repo_path, old, symlinks=True)
    grow(repo, 3)
    shutil.rmtree(repo_path)
    shutil.copytree(old, repo_path, symlinks=True)
    with pytest.raises(IntegrityError, match="rolled back"):
        open_repo(repo_path).audit.check_history()
    assert not open_repo(repo_path).audit.verify().ok
    fork = open_repo(repo_path)
    fork.audit.remembered = lambda: None
    fork.audit.remember = lambda note: None
    grow(fork, 4)  # another history of the same length and longer
    with pytest.raises(IntegrityError, match="rewritten or forked"):
        open_repo(repo_path).audit.check_history()


# -- the layout before tiles -----------------------------------------------------------------


def test_a_log_in_the_layout_before_tiles_is_upgraded_by_adding_objects(repo_path, monkeypatch, tmp_path):
    monkeypatch.setenv("AMBER_LOG_LAYOUT", "entries")
    repo = init_repo(repo_path)
    grow(repo, 260)
    before = stored(repo_path)
    assert all(k.startswith((layout.LOG_ENTRIES, layout.LOG_CHECKPOINTS)) for k in before)
    old_events = events(open_repo(repo_path))
    monkeypatch.delenv("AMBER_LOG_LAYOUT")
    grow(open_repo(repo_path), 2)
    after = stored(repo_path)
    assert all(after[k] == v for k, v in before.items()), "nothing stored was rewritten"
    assert "log/tile/entries/000" in after and "log/tile/0/000" in after
    assert not any(k.startswith(layout.LOG_ENTRIES) for k in set(after) - set(before))
    reader = open_repo(repo_path)
    assert reader.audit.tiled()
    evs = events(reader)
    assert evs[:261] == old_events and [ev["seq"] for ev in evs] == list(range(263))
    assert reader.audit.verify(full=True).ok


def test_a_backup_reads_the_log_only_for_its_checks_and_append(repo, repo_path, tmp_path):
    src = tmp_path / "src"
    write(src / "a.txt", b"hello\n")
    backup(repo, src)
    grow(repo, 600)
    backup(open_repo(repo_path), src)  # the summary is kept from here
    grow(repo, 300)
    reader, counter = counted(repo_path)
    backup(reader, src)
    bundles = [k for k in counter.reads if k.startswith(t.ENTRIES)]
    assert len(counter.reads) < 60 and "log/tile/entries/000" not in bundles, counter.reads


def test_proofs_a_witness_asks_for(repo):
    grow(repo, 299)
    leaves = repo.audit.leaves(repo.audit.entries())
    for m, n in ((1, 300), (100, 257), (256, 300), (300, 300)):
        proof = repo.audit.consistency_proof(m, n)
        merkle.verify_consistency(m, n, merkle.root(leaves[:m]), merkle.root(leaves[:n]), proof)
    for i, n in ((0, 1), (5, 256), (299, 300)):
        merkle.verify_inclusion(leaves[i], i, n, repo.audit.inclusion_proof(i, n), merkle.root(leaves[:n]))
    with pytest.raises(UsageError):
        repo.audit.consistency_proof(10, 301)


def test_a_bundle_replaced_by_junk_is_named_and_nothing_is_built_on_it(repo, repo_path):
    grow(repo, 299)
    key = t.Place(None, 0, 0, t.WIDTH).key()
    path = Path(repo_path, key)
    os.chmod(path, 0o644)
    path.write_bytes(b"junk in place of a bundle\n")
    reader = open_repo(repo_path)
    with pytest.raises(IntegrityError, match=key):
        reader.audit.entries()
    rep = reader.audit.verify(full=True)
    assert any(key in e for e in rep.errors), rep.errors


class Meanwhile(StorageWrapper):
    """Runs `then` once, at the first listing of the whole log: another client's work landing
    after the head a verify read, just before (`before`) or just after that listing."""

    def __init__(self, inner, then, before: bool) -> None:
        super().__init__(inner)
        self.then, self.before = then, before

    def list(self, prefix=""):
        then = self.then if prefix == layout.LOG else None
        if then is not None:
            self.then = None
        if then is not None and self.before:
            then()
        out = list(self.inner.list(prefix))
        if then is not None and not self.before:
            then()
        return out


def verify_meanwhile(repo_path, then, before: bool):
    repo = open_repo(repo_path)
    repo.audit.storage = Meanwhile(repo.audit.storage, then, before)
    return repo.audit.verify(full=True)


def test_a_full_verify_met_by_an_append_in_flight_settles(repo, repo_path):
    grow(repo, 20)
    rep = verify_meanwhile(repo_path, lambda: grow(open_repo(repo_path), 3), before=True)
    assert rep.ok, rep.errors
    assert rep.size >= 21  # its head, read again once the listing showed more than the one it had


def test_a_full_verify_waits_for_tiles_an_appender_writes_after_its_bundle(repo, repo_path):
    grow(repo, 20)  # the log holds 21 entries: its level-0 tile is block [16, 21) of tile 0
    key = t.Place(0, 0, 16, 21).key()
    path = Path(repo_path, key)
    data = path.read_bytes()
    os.chmod(path, 0o644)
    path.unlink()  # the appender has claimed its bundle block, its tile is not written yet
    rep = verify_meanwhile(repo_path, lambda: plant(repo_path, key, data), before=False)
    assert rep.ok, rep.errors
    # the writer that stopped there: the tile stays missing, and the verify says so
    os.unlink(path)
    rep = verify_meanwhile(repo_path, lambda: None, before=False)
    assert any(key in e and "missing" in e for e in rep.errors), rep.errors


def test_a_planted_object_beyond_the_head_is_still_named_after_a_second_look(repo, repo_path):
    grow(repo, 9)
    place = t.Place(None, 0, 8, 12)
    rep = verify_meanwhile(repo_path, lambda: plant(repo_path, place.key(), b"junk beyond the head"), before=True)
    assert any(place.key() in e for e in rep.errors), rep.errors
