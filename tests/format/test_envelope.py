"""The sealed envelope around every encrypted object."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.crypto import aead
from amber.crypto.aead import OVERHEAD, Sealer
from amber.errors import IntegrityError

KINDS = [
    aead.KIND_DATA,
    aead.KIND_TREE,
    aead.KIND_PACK_HEADER,
    aead.KIND_INDEX,
    aead.KIND_SNAPSHOT,
    aead.KIND_CONFIG,
    aead.KIND_KEY,
]
KEY = bytes(range(32))
SEALER = Sealer(KEY)
FAST = settings(max_examples=80, deadline=None)

kinds = st.sampled_from(KINDS)
plaintexts = st.binary(max_size=2048)


@FAST
@given(kind=kinds, plain=plaintexts)
def test_seal_then_open_round_trips(kind, plain):
    env = SEALER.seal(kind, plain)
    assert len(env) == len(plain) + OVERHEAD
    assert env[0] == aead.VERSION
    assert env[1] == aead.ALG_AES256GCM
    assert env[2] == kind
    assert SEALER.open(kind, env) == plain


@FAST
@given(kind=kinds, plain=plaintexts)
def test_sealing_twice_uses_fresh_nonces(kind, plain):
    a, b = SEALER.seal(kind, plain), SEALER.seal(kind, plain)
    assert a[3:15] != b[3:15]
    assert a != b


@FAST
@given(kind=kinds, plain=plaintexts, data=st.data())
def test_any_flipped_bit_is_detected(kind, plain, data):
    env = bytearray(SEALER.seal(kind, plain))
    pos = data.draw(st.integers(0, len(env) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    env[pos] ^= 1 << bit
    with pytest.raises(IntegrityError):
        SEALER.open(kind, bytes(env))


@FAST
@given(kind=kinds, plain=plaintexts, data=st.data())
def test_truncation_is_detected(kind, plain, data):
    env = SEALER.seal(kind, plain)
    cut = data.draw(st.integers(0, len(env) - 1), label="length")
    with pytest.raises(IntegrityError):
        SEALER.open(kind, env[:cut])


@FAST
@given(kind=kinds, plain=plaintexts, extra=st.binary(min_size=1, max_size=32))
def test_appended_bytes_are_detected(kind, plain, extra):
    with pytest.raises(IntegrityError):
        SEALER.open(kind, SEALER.seal(kind, plain) + extra)


@FAST
@given(sealed_as=kinds, opened_as=kinds, plain=plaintexts)
def test_opening_as_another_kind_is_refused(sealed_as, opened_as, plain):
    env = SEALER.seal(sealed_as, plain)
    if sealed_as == opened_as:
        assert SEALER.open(opened_as, env) == plain
    else:
        with pytest.raises(IntegrityError):
            SEALER.open(opened_as, env)


@FAST
@given(kind=kinds, plain=plaintexts, other=st.integers(1, 255))
def test_relabelled_kind_fails_authentication(kind, plain, other):
    """Rewriting the kind byte to pass the kind check still fails: the header is authenticated."""
    env = bytearray(SEALER.seal(kind, plain))
    new_kind = (kind + other) % 256
    env[2] = new_kind
    with pytest.raises(IntegrityError):
        SEALER.open(new_kind, bytes(env))


@FAST
@given(kind=kinds, plain=plaintexts, key=st.binary(min_size=32, max_size=32))
def test_another_key_cannot_open(kind, plain, key):
    if key == KEY:
        return
    with pytest.raises(IntegrityError):
        Sealer(key).open(kind, SEALER.seal(kind, plain))


@FAST
@given(garbage=st.binary(max_size=200), kind=kinds)
def test_garbage_is_an_integrity_error(garbage, kind):
    with pytest.raises(IntegrityError):
        SEALER.open(kind, garbage)


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_keys_must_be_32_bytes(length):
    with pytest.raises(ValueError):
        Sealer(bytes(length))


def test_error_names_the_object():
    env = bytearray(SEALER.seal(aead.KIND_INDEX, b"x" * 10))
    env[-1] ^= 1
    with pytest.raises(IntegrityError, match="index/abc"):
        SEALER.open(aead.KIND_INDEX, bytes(env), "index/abc")
