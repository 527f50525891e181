"""Signed checkpoints: the exact note bytes, round trips, and refusal of anything malformed or
signed by another key. Pure functions of amber.audit.checkpoint; no repository."""

from __future__ import annotations

import base64
import hashlib
import multiprocessing

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import example, given, settings
from hypothesis import strategies as st

from amber.audit import checkpoint as cpfmt
from amber.audit import merkle, notes

# -- golden values -----------------------------------------------------------------------
# Computed once with nothing but hashlib, base64 and `cryptography`, following the format in
# docs/AUDIT-LOG.md; Ed25519 (RFC 8032) is deterministic, so the note bytes are fixed.

SEED = bytes(range(32))
ORIGIN = "amber/0123456789abcdef0123456789abcdef"
ROOT = hashlib.sha256(b"amber golden root").digest()
GOLDEN_NOTE = (
    b"amber/0123456789abcdef0123456789abcdef\n"
    b"7\n"
    b"TMk8mp0bAlD45D6TrAFJ7vigXZf3/lS4E2QM8IaHmZE=\n"
    b"\n"
    b"\xe2\x80\x94 amber/0123456789abcdef0123456789abcdef "
    b"ifUDaICVRlB/c0woV+jLb5mBuhoYEr/1t5G0ko5cCr3q+t5vBjAMP+j7q/65aJdtal6Kkkj+4eqOpB/RLNBlvWZTaQo=\n"
)
GOLDEN_VKEY = "amber/0123456789abcdef0123456789abcdef+89f50368+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"

# The reference vector of Go's golang.org/x/mod/sumdb/note (the C2SP signed-note format amber
# follows): the same key hash and verifier key construction must reproduce it.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="


def golden_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


def other_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def test_sign_produces_the_golden_note_bytes():
    note = cpfmt.sign(cpfmt.Checkpoint(ORIGIN, 7, ROOT), ORIGIN, golden_key())
    assert note == GOLDEN_NOTE


def test_golden_note_parses_and_verifies():
    pub = cpfmt.public_bytes(golden_key())
    cp, sigs, body = cpfmt.parse(GOLDEN_NOTE)
    assert cp == cpfmt.Checkpoint(ORIGIN, 7, ROOT)
    assert body == GOLDEN_NOTE.split(b"\n\n", 1)[0] + b"\n" == cp.body()
    assert len(sigs) == 1 and sigs[0][0] == ORIGIN and len(sigs[0][1]) == 68
    assert sigs[0][1][:4] == cpfmt.key_hash(ORIGIN, pub)
    Ed25519PublicKey.from_public_bytes(pub).verify(sigs[0][1][4:], body)  # a plain Ed25519 signature
    assert cpfmt.verify(GOLDEN_NOTE, ORIGIN, pub) == cp


def test_verifier_key_string_is_golden_and_round_trips():
    pub = cpfmt.public_bytes(golden_key())
    assert cpfmt.verifier_key(ORIGIN, pub) == GOLDEN_VKEY
    assert cpfmt.parse_verifier_key(GOLDEN_VKEY) == (ORIGIN, pub)
    assert cpfmt.parse_verifier_key("  " + GOLDEN_VKEY + "\n") == (ORIGIN, pub)
    name, khash, b64 = GOLDEN_VKEY.split("+", 2)
    assert khash == hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4].hex()
    assert base64.b64decode(b64) == b"\x01" + pub


def test_key_hash_and_verifier_key_match_the_go_sumdb_note_vector():
    raw = base64.b64decode(GO_SKEY_B64)
    assert raw[0] == cpfmt.ALG_ED25519
    key = Ed25519PrivateKey.from_private_bytes(raw[1:])
    pub = cpfmt.public_bytes(key)
    assert cpfmt.verifier_key("PeterNeumann", pub) == GO_VKEY
    assert cpfmt.parse_verifier_key(GO_VKEY) == ("PeterNeumann", pub)
    assert cpfmt.key_hash("PeterNeumann", pub).hex() == "c74f20a3"
    sig = base64.b64decode(GO_SIG)
    assert sig[:4] == cpfmt.key_hash("PeterNeumann", pub)
    assert sig[4:] == key.sign(GO_TEXT)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 2**63), leaf_count=st.integers(0, 5), data=st.binary(max_size=16))
def test_sign_parse_verify_round_trip(size, leaf_count, data):
    root = merkle.root([merkle.leaf_hash(data + bytes([i])) for i in range(leaf_count)])
    cp = cpfmt.Checkpoint(ORIGIN, size, root)
    note = cpfmt.sign(cp, ORIGIN, golden_key())
    parsed, sigs, body = cpfmt.parse(note)
    assert parsed == cp and body == cp.body()
    assert note.startswith(body + b"\n\xe2\x80\x94 " + ORIGIN.encode() + b" ") and note.endswith(b"\n")
    assert cpfmt.verify(note, ORIGIN, cpfmt.public_bytes(golden_key())) == cp


def test_a_note_signed_by_another_key_is_refused():
    note = cpfmt.sign(cpfmt.Checkpoint(ORIGIN, 7, ROOT), ORIGIN, other_key())
    with pytest.raises(cpfmt.CheckpointError, match="not signed by"):
        cpfmt.verify(note, ORIGIN, cpfmt.public_bytes(golden_key()))


def test_a_note_signed_under_another_name_is_refused():
    note = cpfmt.sign(cpfmt.Checkpoint(ORIGIN, 7, ROOT), "amber/someone-else", golden_key())
    with pytest.raises(cpfmt.CheckpointError, match="not signed by"):
        cpfmt.verify(note, ORIGIN, cpfmt.public_bytes(golden_key()))


def test_a_signature_by_another_key_under_the_right_key_hash_is_refused():
    """The key hash is only a hint: the Ed25519 signature itself must verify."""
    body = cpfmt.Checkpoint(ORIGIN, 7, ROOT).body()
    forged = cpfmt.key_hash(ORIGIN, cpfmt.public_bytes(golden_key())) + other_key().sign(body)
    note = body + b"\n" + "\u2014 ".encode() + ORIGIN.encode() + b" " + base64.b64encode(forged) + b"\n"
    with pytest.raises(cpfmt.CheckpointError, match="does not verify"):
        cpfmt.verify(note, ORIGIN, cpfmt.public_bytes(golden_key()))


def test_a_changed_body_is_refused():
    for old, new in ((b"\n7\n", b"\n8\n"), (b"TMk8", b"TMk9"), (b"amber/0123", b"amber/1123")):
        note = GOLDEN_NOTE.replace(old, new, 1)
        with pytest.raises(cpfmt.CheckpointError):
            cpfmt.verify(note, ORIGIN, cpfmt.public_bytes(golden_key()))


def test_every_single_byte_change_of_the_golden_note_is_refused():
    """Except in the last base64 character of the signature, whose two lowest bits are
    padding: decoders ignore them (Go's note package too), so the signature is unchanged."""
    pub = cpfmt.public_bytes(golden_key())
    padding_char = len(GOLDEN_NOTE) - 3  # "...X=\n"
    for pos in range(len(GOLDEN_NOTE)):
        for mask in (0x01, 0x02, 0x10, 0x80):
            note = GOLDEN_NOTE[:pos] + bytes([GOLDEN_NOTE[pos] ^ mask]) + GOLDEN_NOTE[pos + 1 :]
            try:
                cp = cpfmt.verify(note, ORIGIN, pub)
            except cpfmt.CheckpointError:
                continue
            assert pos == padding_char, f"byte {pos} ^ {mask:#x} changed and the note still verifies"
            assert cpfmt.parse(note)[1] == cpfmt.parse(GOLDEN_NOTE)[1] and cp.size == 7


@pytest.mark.parametrize(
    "note, why",
    [
        (b"", "no signature block"),
        (b"\n\n", "needs origin, size and root"),
        (GOLDEN_NOTE.replace(b"\n\n", b"\n"), "signature block"),
        (GOLDEN_NOTE[:-1], "end with a newline"),
        (GOLDEN_NOTE.replace(b"\n7\n", b"\n07\n"), "size"),
        (GOLDEN_NOTE.replace(b"\n7\n", b"\n-7\n"), "size"),
        (GOLDEN_NOTE.replace(b"\n7\n", b"\n\n"), "needs origin, size and root"),
        (GOLDEN_NOTE.replace(b"TMk8", b"TM!8"), "base64"),
        (GOLDEN_NOTE.replace(b"TMk8mp0b", b""), "32 bytes"),
        (GOLDEN_NOTE.replace("\u2014".encode(), b"-"), "malformed signature line"),
        (GOLDEN_NOTE.replace(b"ifUD", b"ifU!"), "base64"),
        (GOLDEN_NOTE.replace(b"ifUDaICV", b""), "wrong length"),
        (b"\xff" + GOLDEN_NOTE, "UTF-8"),
        (GOLDEN_NOTE + b"x" * cpfmt.MAX_NOTE, "too large"),
    ],
)
def test_malformed_notes_are_refused(note, why):
    with pytest.raises(cpfmt.CheckpointError, match=why):
        cpfmt.parse(note)


VALID_ROOT_LINE = base64.b64encode(ROOT).decode()
VALID_SIG_LINE = GOLDEN_NOTE.decode().split("\n\n", 1)[1]

_line = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", "0", "7", "07", "\u00b2", "\u0663", VALID_ROOT_LINE, ORIGIN, "\u2014", "\u2014 a b"]),
)


@st.composite
def near_notes(draw) -> bytes:
    """Notes put together from plausible and implausible lines, so parsing gets deep."""
    origin = draw(_line)
    size = draw(_line)
    root = draw(st.one_of(st.just(VALID_ROOT_LINE), _line))
    extra = draw(st.lists(_line, max_size=2))
    sig = draw(
        st.one_of(st.just(VALID_SIG_LINE), st.builds(lambda name, b64: f"\u2014 {name} {b64}\n", _line, _line), _line)
    )
    text = "\n".join([origin, size, root, *extra]) + "\n\n" + sig
    return text.encode("utf-8", "surrogatepass")


def _only_checkpoint_errors(note: bytes) -> None:
    for call in (lambda: cpfmt.parse(note), lambda: cpfmt.verify(note, ORIGIN, cpfmt.public_bytes(golden_key()))):
        try:
            call()
        except cpfmt.CheckpointError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
@example(GOLDEN_NOTE)
@example(b"o\n1\n" + b"A" * 43 + b"=\n\n")
def test_arbitrary_bytes_raise_nothing_but_checkpoint_error(note):
    _only_checkpoint_errors(note)


@settings(max_examples=300, deadline=None)
@given(near_notes())
# a Unicode digit that str.isdigit() accepts but int() does not
@example(f"{ORIGIN}\n\u00b2\n{VALID_ROOT_LINE}\n\n{VALID_SIG_LINE}".encode())
# non-ASCII text where base64 is expected: base64.b64decode raises a plain ValueError
@example(f"{ORIGIN}\n7\n\u00e9{VALID_ROOT_LINE[1:]}\n\n{VALID_SIG_LINE}".encode())
@example(f"{ORIGIN}\n7\n{VALID_ROOT_LINE}\n\n\u2014 {ORIGIN} \u00e9\n".encode())
def test_near_miss_notes_raise_nothing_but_checkpoint_error(note):
    _only_checkpoint_errors(note)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=120),
        st.builds(
            lambda a, b, c: f"{a}+{b}+{c}",
            st.text(max_size=20),
            st.sampled_from(["89f50368", "zz", ""]),
            st.sampled_from([GOLDEN_VKEY.split("+", 2)[2], "é", ""]),
        ),
        st.text(st.characters(codec=None, categories=["Cs", "L"]), max_size=20).map(
            lambda s: s + "+89f50368+" + GOLDEN_VKEY.split("+", 2)[2]
        ),
    )
)
@example(GOLDEN_VKEY.replace("amber/", "amber\udce9/"))  # a name from a command line that is not UTF-8
def test_malformed_verifier_keys_raise_nothing_but_checkpoint_error(text):
    try:
        name, public = cpfmt.parse_verifier_key(text)
    except cpfmt.CheckpointError:
        return
    assert cpfmt.verifier_key(name, public) == text.strip()


def test_every_changed_byte_of_a_verifier_key_is_refused():
    raw = GOLDEN_VKEY.encode()
    for pos in range(len(raw)):
        mangled = (raw[:pos] + bytes([raw[pos] ^ 0x01]) + raw[pos + 1 :]).decode("utf-8", "replace")
        with pytest.raises(cpfmt.CheckpointError):
            cpfmt.parse_verifier_key(mangled)
    for cut in range(1, len(GOLDEN_VKEY)):
        with pytest.raises(cpfmt.CheckpointError):
            cpfmt.parse_verifier_key(GOLDEN_VKEY[:cut])


def _wanted(count: int) -> list[cpfmt.Checkpoint]:
    return [cpfmt.Checkpoint("amber/notes", n, hashlib.sha256(b"%d" % n).digest()) for n in range(1, count + 1)]


@pytest.mark.parametrize("after", [0, 10**9], ids=["on a worker process", "here"])
def test_notes_signed_ahead_are_the_notes_signed_one_by_one(after):
    """A full verify compares every stored checkpoint with the note signed for its size and
    root; signed ahead on a worker (more than one batch) or here, they are the same bytes."""
    key = Ed25519PrivateKey.generate()
    signer = cpfmt.Signer("amber/notes", key)
    wanted = _wanted(notes.BATCH + 5)
    got = list(notes.ahead(signer, key, wanted, after=after))
    assert got == [cpfmt.sign(cp, "amber/notes", key) for cp in wanted]
    assert not multiprocessing.active_children()  # the worker ended with the last note
    assert cpfmt.verify(got[-1], "amber/notes", cpfmt.public_bytes(key)).size == len(wanted)


@pytest.mark.parametrize("taken", [0, 1])
def test_notes_signed_ahead_can_be_left_early(taken):
    """Closed after `taken` notes (none: a verify that failed before its checkpoints), the
    worker is ended, not left behind."""
    key = Ed25519PrivateKey.generate()
    signer = cpfmt.Signer("amber/notes", key)
    wanted = _wanted(3 * notes.BATCH)
    made = notes.ahead(signer, key, wanted, after=0)
    assert multiprocessing.active_children()
    assert [next(made) for _ in range(taken)] == [cpfmt.sign(cp, "amber/notes", key) for cp in wanted[:taken]]
    made.close()
    assert not multiprocessing.active_children()
