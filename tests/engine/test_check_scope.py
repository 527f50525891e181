"""check --read-data-subset and --since: which packs a check reads, and verification records."""

from __future__ import annotations

import datetime as dt
import os
import random

import pytest

from amber.clock import FakeClock, to_iso
from amber.errors import UsageError
from amber.format import layout
from amber.format import verified as verifiedfmt
from amber.repo import damage as damagerec
from amber.repo import verified as verifiedrec

from .helpers import init_repo, open_repo, small_tree, with_storage, write

ONE_BLOB_PACKS = 1  # every blob closes its pack: many packs from a few files


@pytest.fixture
def fake_clock():
    return FakeClock(dt.datetime.now(dt.UTC).replace(microsecond=0))


@pytest.fixture
def many_packs(repo_path, tmp_path, fake_clock):
    """A repository of about 20 packs, opened by a client on the fake clock."""
    repo = init_repo(repo_path, fake_clock)
    src = small_tree(tmp_path / "src")
    rnd = random.Random(7)
    for i in range(14):
        write(os.path.join(src, "many", f"r{i}.bin"), rnd.randbytes(40_000 + i))
    with_storage(repo, repo.storage, pack_size=ONE_BLOB_PACKS).backup([src])
    return open_repo(repo_path, fake_clock)


def _stored(repo) -> dict[bytes, int]:
    return {layout.pack_id(i.key): i.size for i in repo.storage.list(layout.DATA)}


def test_slices_cover_every_pack_exactly_once(many_packs):
    stored = _stored(many_packs)
    assert len(stored) >= 16
    for m in (1, 2, 3, 5):
        seen: list[bytes] = []
        for n in range(1, m + 1):
            rep = many_packs.check(read_data_subset=f"{n}/{m}", record=False)
            assert rep.ok, rep.errors
            assert rep.read_subset == f"{n}/{m}" and rep.packs_read == len(rep.clean_packs)
            assert all(p[0] % m == n - 1 for p in rep.clean_packs)  # restic's buckets: first byte mod M
            seen.extend(rep.clean_packs)
        assert sorted(seen) == sorted(stored), f"slices of {m} do not cover every pack exactly once"


def test_a_percentage_reads_that_share_of_packs_at_random(many_packs):
    total = len(_stored(many_packs))
    rep = many_packs.check(read_data_subset="50%", record=False, rng=random.Random(1))
    assert rep.ok and rep.packs_read == total // 2
    other = many_packs.check(read_data_subset="50%", record=False, rng=random.Random(2))
    assert set(other.clean_packs) != set(rep.clean_packs)
    assert many_packs.check(read_data_subset="0.1%", record=False).packs_read == 1  # never none
    assert many_packs.check(read_data_subset="100%", record=False).packs_read == total


def test_a_size_reads_random_packs_up_to_that_many_bytes(many_packs):
    stored = _stored(many_packs)
    budget = sum(sorted(stored.values())[:3])
    rep = many_packs.check(read_data_subset=str(budget), record=False)
    assert rep.packs_read >= 1 and rep.bytes_read <= budget
    assert many_packs.check(read_data_subset="1", record=False).packs_read == 1  # at least one pack
    assert many_packs.check(read_data_subset="2G", record=False).packs_read == len(stored)


@pytest.mark.parametrize("bad", ["0/3", "4/3", "1/257", "1/0", "0%", "101%", "-1", "0", "abc", "1/2/3", "5Q", ""])
def test_malformed_subsets_are_usage_errors(bad):
    with pytest.raises(UsageError) as e:
        verifiedrec.parse_subset(bad)
    assert e.value.exit_code == 2 and "--read-data-subset" in str(e.value)


def test_sizes_use_binary_units():
    assert verifiedrec.parse_subset("500M").size == 500 << 20
    assert verifiedrec.parse_subset("2g").size == 2 << 30
    assert verifiedrec.parse_subset("1.5KiB").size == 1536
    assert verifiedrec.parse_subset("3/7").m == 7


def test_since_skips_packs_verified_within_the_duration_and_reads_them_after(many_packs, fake_clock):
    total = len(_stored(many_packs))
    first = many_packs.check(read_data=True)
    assert first.ok and first.packs_read == total and first.packs_verified_recorded == total
    assert many_packs.storage.list(layout.VERIFIED)
    again = many_packs.check(since="7d")
    assert again.ok and again.packs_read == 0 and again.packs_skipped_verified == total
    assert again.to_json()["packs_skipped_verified"] == total
    fake_clock.advance(8 * 86400)
    later = many_packs.check(since="7d")
    assert later.packs_read == total and later.packs_skipped_verified == 0


def test_slices_spread_over_days_are_skipped_when_recent(many_packs, fake_clock):
    total = len(_stored(many_packs))
    read = 0
    for n in range(1, 5):  # a full read spread over four days
        read += many_packs.check(read_data_subset=f"{n}/4", since="30d").packs_read
        fake_clock.advance(86400)
    assert read == total
    assert many_packs.check(since="30d").packs_read == 0


def _flip_a_byte(repo_path, pid: bytes) -> None:
    path = os.path.join(repo_path, *layout.pack(pid).split("/"))
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 1]))


def _a_data_pack(repo) -> tuple[bytes, bytes]:
    """(blob, pack) of a data blob."""
    repo.load_index()
    for bid, e in repo.blobs.index.items():
        if e.type == 0:
            return bid, e.pack
    raise AssertionError("no data blob")


def test_a_damage_record_wins_over_a_verification_record(many_packs, repo_path, fake_clock):
    assert many_packs.check(read_data=True).ok
    blob, pack = _a_data_pack(many_packs)
    _flip_a_byte(repo_path, pack)
    # within the window the flipped pack is not read: the trade-off --since makes
    assert many_packs.check(since="7d").packs_read == 0
    # a reader meets the damage and records it: from then on the pack is read whatever the records say
    r = open_repo(repo_path, fake_clock)
    damagerec.record(r.records, {(blob, pack): "found by a restore"}, "restore", to_iso(fake_clock.now()), "h", print)
    rep = open_repo(repo_path, fake_clock).check(since="7d")
    assert not rep.ok and rep.packs_read >= 1 and pack.hex() in rep.damaged_packs
    assert rep.packs_verified_recorded == 0 or pack not in rep.clean_packs


def test_a_fresh_read_finds_damage_in_a_pack_verified_earlier(many_packs, repo_path, fake_clock):
    assert many_packs.check(read_data=True).ok
    _blob, pack = _a_data_pack(many_packs)
    _flip_a_byte(repo_path, pack)
    fake_clock.advance(2 * 86400)
    rep = open_repo(repo_path, fake_clock).check(since="1d")
    assert not rep.ok and pack.hex() in rep.damaged_packs
    # and it is never recorded verified again: the next check --since reads it again
    again = open_repo(repo_path, fake_clock).check(since="1d")
    assert not again.ok and pack.hex() in again.damaged_packs


def test_a_truncated_pack_is_read_even_if_recorded_verified(many_packs, repo_path):
    assert many_packs.check(read_data=True).ok
    _blob, pack = _a_data_pack(many_packs)
    path = os.path.join(repo_path, *layout.pack(pack).split("/"))
    os.chmod(path, 0o644)
    os.truncate(path, os.path.getsize(path) - 10)
    rep = many_packs.check(since="7d")
    assert not rep.ok and pack.hex() in rep.damaged_packs and rep.packs_read >= 1


def test_garbage_under_verified_is_reported_and_ignored(many_packs, repo_path):
    total = len(_stored(many_packs))
    junk = b"not a verification record"
    import blake3

    write(os.path.join(repo_path, "verified", blake3.blake3(junk).hexdigest()), junk, mode=0o444)
    write(os.path.join(repo_path, "verified", "0" * 64), b"\x00" * 80, mode=0o444)
    rep = many_packs.check(since="7d")
    assert rep.ok, rep.errors
    assert rep.packs_read == total  # nothing skipped on the word of garbage
    assert sum("verification record ignored" in w for w in rep.warnings) == 2


def _plant(repo, time: str, packs: list[tuple[str, int]], logged: bool = True) -> str:
    """A verification record written beside any check, and (`logged`) a check event naming it."""
    name = repo.records.put(verifiedrec.VERIFIED, verifiedfmt.document(time, "attacker", packs), layout.verified_record)
    if logged:
        repo.log_event("check", read_data=True, ok=True, verified_records=[name])
    return name


def test_a_record_no_check_event_names_skips_nothing(many_packs, fake_clock):
    stored = _stored(many_packs)
    name = _plant(many_packs, to_iso(fake_clock.now()), [(p.hex(), n) for p, n in stored.items()], logged=False)
    rep = many_packs.check(since="7d")
    assert rep.ok and rep.packs_read == len(stored) and rep.packs_skipped_verified == 0
    assert any(name in w and "no check event" in w for w in rep.warnings)


def test_a_check_names_the_records_it_wrote(many_packs):
    many_packs.check(read_data=True)
    ev = [ev for ev, _raw in many_packs.audit.entries() if ev["type"] == "check"][-1]
    names = ev["details"]["verified_records"]
    assert len(names) == 1 and many_packs.storage.exists(layout.verified_record(names[0]))


def test_a_record_from_the_future_is_not_believed(many_packs, fake_clock):
    stored = _stored(many_packs)
    future = to_iso(fake_clock.now() + dt.timedelta(days=365))
    _plant(many_packs, future, [(p.hex(), n) for p, n in stored.items()])
    rep = many_packs.check(since="400d")
    assert rep.packs_read == len(stored) and rep.packs_skipped_verified == 0
    assert any("in the future" in w for w in rep.warnings)


def test_a_record_naming_another_size_is_not_believed(many_packs, fake_clock):
    stored = _stored(many_packs)
    _plant(many_packs, to_iso(fake_clock.now()), [(p.hex(), n + 1) for p, n in stored.items()])
    assert many_packs.check(since="1d").packs_read == len(stored)


@pytest.mark.parametrize(
    "doc",
    [
        {"v": 2, "time": "2030-01-01T00:00:00Z", "verified": [{"pack": "a" * 64, "size": 1}]},
        {"v": 1, "time": "yesterday", "verified": [{"pack": "a" * 64, "size": 1}]},
        {"v": 1, "time": "2030-01-01T00:00:00Z", "verified": []},
        {"v": 1, "time": "2030-01-01T00:00:00Z", "verified": [{"pack": "A" * 64, "size": 1}]},
        {"v": 1, "time": "2030-01-01T00:00:00Z", "verified": [{"pack": "a" * 64, "size": -1}]},
        {"v": 1, "time": "2030-01-01T00:00:00Z", "verified": [{"pack": "a" * 64, "size": True}]},
        {"v": 1, "time": "2030-01-01T00:00:00Z", "host": "x" * 300, "verified": [{"pack": "a" * 64, "size": 1}]},
        {"v": 1, "time": "2030-01-01T00:00:00Z", "damaged": [{"blob": "a" * 64, "pack": "a" * 64}]},
    ],
)
def test_malformed_verification_records_are_refused(doc):
    from amber.errors import IntegrityError

    with pytest.raises(IntegrityError):
        verifiedfmt.validate(doc, "verified/x")


def test_a_random_share_with_since_prefers_packs_not_verified_recently(many_packs):
    stored = _stored(many_packs)
    first = many_packs.check(read_data_subset="1/2")
    assert first.ok and first.packs_verified_recorded == first.packs_read > 0
    rep = many_packs.check(read_data_subset="50%", since="7d")
    assert not set(rep.clean_packs) & set(first.clean_packs), "a recently verified pack was read again"
    assert rep.packs_read == min(len(stored) // 2, len(stored) - first.packs_read)
    assert rep.packs_skipped_verified == first.packs_read
