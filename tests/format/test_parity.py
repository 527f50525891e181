"""Reed–Solomon parity of packs (format/parity.py): round trips, damage it rebuilds, damage it
refuses, and hostile parity objects that can only fail, never inject bytes."""

from __future__ import annotations

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.errors import IntegrityError
from amber.format import parity

FAST = settings(max_examples=60, deadline=None)


def pack_of(data: bytes) -> bytes:
    return blake3.blake3(data).digest()


@FAST
@given(data=st.binary(min_size=1, max_size=200_000), percent=st.integers(1, 50), where=st.data())
def test_one_damaged_region_is_rebuilt(data, percent, where):
    pid = pack_of(data)
    obj = parity.encode(pid, data, percent)
    k, m, shard = parity.geometry(len(data), percent)
    assert parity.repair(pid, data, obj, "p") == (data, 0)
    first = where.draw(st.integers(0, k - 1), label="first damaged shard")
    count = where.draw(st.integers(1, m), label="damaged shards")
    damaged = bytearray(data)
    for i in range(first, min(k, first + count)):
        pos = min(len(data) - 1, i * shard + where.draw(st.integers(0, shard - 1)))
        damaged[pos] ^= 0x5A
    out, rebuilt = parity.repair(pid, bytes(damaged), obj, "p")
    assert out == data and rebuilt <= m


@FAST
@given(data=st.binary(min_size=1, max_size=100_000), percent=st.integers(1, 50), cut=st.data())
def test_a_truncated_pack_is_rebuilt_while_parity_suffices(data, percent, cut):
    pid = pack_of(data)
    obj = parity.encode(pid, data, percent)
    k, m, shard = parity.geometry(len(data), percent)
    keep = cut.draw(st.integers(max(0, (k - m) * shard), len(data)), label="bytes kept")
    assert parity.repair(pid, data[:keep], obj, "p")[0] == data


def test_too_much_damage_is_refused():
    data = bytes(range(256)) * 4000
    pid = pack_of(data)
    obj = parity.encode(pid, data, 2)
    k, m, shard = parity.geometry(len(data), 2)
    with pytest.raises(IntegrityError, match="parity rebuilds at most"):
        parity.repair(pid, data[: (k - m - 1) * shard], obj, "p")


@FAST
@given(junk=st.binary(max_size=2000), flip=st.integers(0, 10_000))
def test_hostile_parity_objects_only_fail(junk, flip):
    data = bytes(range(256)) * 40
    pid = pack_of(data)
    damaged = bytearray(data)
    damaged[100] ^= 1
    for obj in (junk, parity.MAGIC + junk):
        with pytest.raises(IntegrityError):
            parity.repair(pid, bytes(damaged), obj, "p")
    good = bytearray(parity.encode(pid, data, 10))
    good[parity.HEAD_LEN + flip % (len(good) - parity.HEAD_LEN)] ^= 0xFF  # a digest or parity byte
    try:
        out, _ = parity.repair(pid, bytes(damaged), bytes(good), "p")
    except IntegrityError:
        return
    assert out == data  # whatever it rebuilt, it is the pack or nothing


def test_the_parity_of_another_pack_is_refused():
    a, b = b"a" * 10_000, b"b" * 10_000
    with pytest.raises(IntegrityError, match="another pack"):
        parity.repair(pack_of(a), a, parity.encode(pack_of(b), b, 5), "p")


def test_golden_parity_object():
    data = bytes(i * 7 % 251 for i in range(50_000))
    obj = parity.encode(pack_of(data), data, 5)
    assert len(obj) == parity.HEAD_LEN + 13 * parity.DIGEST_LEN + 1 * 3847
    assert blake3.blake3(obj).hexdigest()[:16] == GOLDEN


GOLDEN = "e452c0031064a7a5"  # computed once (zfec 1.6): a change here is a format change
