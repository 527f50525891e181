"""RFC 3161 tokens (audit/tsa.py) against OpenSSL's TSA on loopback, and the encodings
that carry them: the timestamp key names and the signed part of a cosigned note."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amber.audit import checkpoint as cpfmt
from amber.audit import timestamps, tsa
from amber.errors import IntegrityError, StorageError, UsageError
from amber.format import layout
from tsaserver import OPENSSL, TsaServer, make_pki, token_for

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command (quickstart.py test installs it)")
NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=40)


@given(NAMES, st.integers(min_value=1, max_value=10**layout.SEQ_DIGITS - 1))
def test_timestamp_keys_round_trip(name, size):
    key = layout.log_timestamp(name, size)
    assert key.startswith(layout.LOG_TIMESTAMPS)
    assert timestamps.parse_key(key) == (name, size)


@given(st.text(max_size=80))
def test_any_other_name_is_not_a_timestamp(text):
    key = layout.LOG_TIMESTAMPS + text
    got = timestamps.parse_key(key)
    if got is not None:
        assert layout.log_timestamp(*got) == key and got[1] > 0


@pytest.mark.parametrize(
    "key",
    [
        "log/timestamps/tsa1/000000000000",  # no checkpoint of size 0
        "log/timestamps/tsa1/12",
        "log/timestamps/000000000001",
        "log/timestamps//000000000001",
        "log/timestamps/tsa1/000000000001/x",
        "log/checkpoints/000000000001",
    ],
)
def test_malformed_timestamp_keys(key):
    assert timestamps.parse_key(key) is None


@settings(max_examples=50)
@given(
    st.integers(min_value=1, max_value=2**63),
    st.binary(min_size=32, max_size=32),
    st.lists(st.integers(min_value=0, max_value=2**40), max_size=3),
)
def test_the_signed_part_of_a_cosigned_note_is_the_note(size, root, times):
    """A bundle's checkpoint.txt is the log's note and witnesses' cosignature lines after it; the
    note the log's key signed (the bytes a TSA timestamped) comes back byte for byte."""
    origin = "amber/" + "ab" * 16
    cp = cpfmt.Checkpoint(origin, size, root)
    note = cpfmt.sign(cp, origin, Ed25519PrivateKey.generate())
    cosigned = note
    for t in times:
        key = Ed25519PrivateKey.generate()
        public = cpfmt.public_bytes(key)
        cosigned += cpfmt.cosignature_line(cp, cpfmt.server_witness_name(public), public, key.sign, t).encode()
    assert cpfmt.signed_by(cosigned, origin) == note
    assert cpfmt.signed_by(cosigned, "amber/another") is None


# -- tokens from a real TSA ------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    if OPENSSL is None:
        pytest.skip("needs the openssl command")
    base = tmp_path_factory.mktemp("tsa")
    pki = make_pki(base / "pki")
    other = make_pki(base / "other", "another")
    server = TsaServer(pki)
    yield server, tsa.load_chain(pki.chain.read_bytes(), "chain"), tsa.load_chain(other.chain.read_bytes(), "other")
    server.stop()


@pytest.fixture(scope="module")
def private_authority(tmp_path_factory):
    """A TSA whose certificate is its own root (it sends all there is to pin)."""
    if OPENSSL is None:
        pytest.skip("needs the openssl command")
    pki = make_pki(tmp_path_factory.mktemp("private") / "pki", "private", self_signed=True)
    server = TsaServer(pki)
    yield server, tsa.load_chain(pki.chain.read_bytes(), "chain")
    server.stop()


NOTE = b"amber/0123\n1\nAAAA\n\n\xe2\x80\x94 amber/0123 signature\n"


@needs_openssl
def test_a_self_signed_tsa_is_pinned_on_first_use(private_authority):
    server, chain = private_authority
    token, pinned = tsa.stamp(server.url, NOTE, None, None, "test")
    assert pinned == chain
    assert tsa.check(token, NOTE, pinned, "token").signer == "CN=private TSA"


@needs_openssl
def test_a_token_is_checked_against_the_chain_given(authority):
    server, chain, other = authority
    with pytest.raises(UsageError, match="--tsa-cert"):  # it sends its certificate, not its CA's
        tsa.stamp(server.url, NOTE, None, None, "test")
    token, pinned = tsa.stamp(server.url, NOTE, chain, None, "test")
    assert pinned == chain
    got = tsa.check(token, NOTE, chain, "token")
    assert got.signer == "CN=amber test TSA" and got.gen_time.endswith("Z")
    assert tsa.inspect(token, NOTE, "token") == got
    with pytest.raises(IntegrityError, match="other data"):
        tsa.check(token, NOTE + b"x", chain, "token")
    with pytest.raises(IntegrityError, match="not signed by the TSA certificate"):
        tsa.check(token, NOTE, other, "token")
    with pytest.raises(IntegrityError, match="not signed by the TSA certificate"):
        tsa.stamp(server.url, NOTE, other, None, "test")


def test_a_chain_without_its_root_is_a_usage_error(tmp_path):
    pki = make_pki(tmp_path / "pki")
    with pytest.raises(UsageError, match="no root certificate"):
        tsa.load_chain(pki.tsa.read_bytes(), "--tsa-cert")


@needs_openssl
def test_a_replayed_or_unreachable_tsa(authority):
    server, chain, _other = authority
    server.replay = token_for(server.url, NOTE)
    try:
        with pytest.raises(IntegrityError, match="nonce"):
            tsa.stamp(server.url, NOTE, chain, None, "test")
    finally:
        server.replay = None
    with pytest.raises(StorageError, match="cannot reach the TSA"):
        tsa.stamp("http://127.0.0.1:9/tsa", NOTE, chain, None, "test")


@needs_openssl
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.data())
def test_damaged_tokens_are_refused_cleanly(authority, data):
    """Every byte of a token changed or cut: an IntegrityError (junk or a bad token), never a crash."""
    server, chain, _other = authority
    token = _token(server)
    i = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    how = data.draw(st.sampled_from(["flip", "cut"]))
    bad = token[:i] + bytes([token[i] ^ 0xFF]) + token[i + 1 :] if how == "flip" else token[:i]
    try:
        tsa.check(bad, NOTE, chain, "token")
    except IntegrityError:
        return
    # a change the signature does not cover (an unsigned certificate copy) may still verify: it says the same
    assert tsa.check(bad, NOTE, chain, "token") == tsa.check(token, NOTE, chain, "token")


_TOKENS: dict = {}


def _token(server) -> bytes:
    if server.url not in _TOKENS:
        chain = tsa.load_chain(server.pki.chain.read_bytes(), "chain")
        _TOKENS[server.url] = tsa.stamp(server.url, NOTE, chain, None, "test")[0]
    return _TOKENS[server.url]


def test_certificates_that_are_not_pem_are_a_usage_error():
    with pytest.raises(UsageError, match="not PEM"):
        tsa.load_chain(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", "--tsa-cert")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    return tsa.load_chain(pki.chain.read_bytes(), "chain")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=3000), st.binary(max_size=40).map(lambda b: b"\x30\x82\x01\x00" + b)))
def test_any_bytes_are_a_token_or_an_integrity_error(chain, data):
    """Hostile bytes in a token's place: amber's IntegrityError (NotAToken for junk), nothing else."""
    for check in (lambda: tsa.inspect(data, NOTE, "x"), lambda: tsa.check(data, NOTE, chain, "x")):
        try:
            check()
        except IntegrityError:
            continue
