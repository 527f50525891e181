"""The witness cosignature (C2SP tlog-cosignature, cosignature/v1) pinned by a golden vector:
key ID, time and signature bytes, and what its verifier refuses."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from amber.audit import checkpoint as c
from amber.errors import CheckpointError

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = c.public_bytes(KEY)
CP = c.Checkpoint("amber/" + "00" * 16, 5, bytes(range(32)))
NAME = "amber-serve-56475aa75463474c"
LINE = (
    "\u2014 amber-serve-56475aa75463474c aTGFlgAAAABlU/EAlrxfSthPOGKz7ayzVd+1wbpkHVMhKNobpnp/Mu77I9FMLTDH3u"
    "ZGW04dBJT7b5cAiXTlbTI2E5TmQqjcheQWBA==\n"
)


def test_golden_vector():
    assert c.server_witness_name(PUBLIC) == NAME
    assert c.cosignature_line(CP, NAME, PUBLIC, KEY.sign, 1700000000) == LINE
    raw = base64.b64decode(LINE.split(" ")[2])
    assert raw[:4] == c.cosignature_key_hash(NAME, PUBLIC) and int.from_bytes(raw[4:12], "big") == 1700000000
    assert c.cosigned_message(CP, 1700000000) == b"cosignature/v1\ntime 1700000000\n" + CP.body()


def test_a_cosigned_note_verifies_for_both_signers():
    log_key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    note = c.sign(CP, CP.origin, log_key) + LINE.encode()
    assert c.verify(note, CP.origin, c.public_bytes(log_key)) == CP
    assert c.verify_cosignature(note, NAME, PUBLIC) == (CP, 1700000000)


def test_refusals():
    log_key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    note = c.sign(CP, CP.origin, log_key)
    with pytest.raises(CheckpointError, match="not cosigned"):
        c.verify_cosignature(note, NAME, PUBLIC)
    raw = bytearray(base64.b64decode(LINE.split(" ")[2]))
    raw[11] ^= 1  # another time than the one signed
    forged = note + f"\u2014 {NAME} {base64.b64encode(bytes(raw)).decode()}\n".encode()
    with pytest.raises(CheckpointError, match="does not verify"):
        c.verify_cosignature(forged, NAME, PUBLIC)
    other = c.public_bytes(Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32))
    with pytest.raises(CheckpointError):
        c.verify_cosignature(note + LINE.encode(), NAME, other)
    moved = c.Checkpoint(CP.origin, 6, CP.root)
    with pytest.raises(CheckpointError):
        c.verify_cosignature(c.sign(moved, CP.origin, log_key) + LINE.encode(), NAME, PUBLIC)
