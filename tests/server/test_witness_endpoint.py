"""The cosign endpoint of `amber serve` spoken to directly, as a hostile client would: a
malformed body, a checkpoint of another log or with a bad signature, a wrong `old` size, a
rollback, a fork with a forged proof, a reset with a backup token. Each gets its HTTP error and
a journal record; the last cosigned checkpoint stays."""

from __future__ import annotations

import base64
import ssl

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from amber.audit import checkpoint as cpfmt
from amber.audit import merkle

ORIGIN = "amber/" + "ab" * 16


class Log:
    """A log of leaves and the key that signs its checkpoints."""

    def __init__(self, origin: str = ORIGIN) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.origin = origin
        self.leaves = [merkle.leaf_hash(b"event %d" % i) for i in range(40)]
        self.vkey = cpfmt.verifier_key(origin, cpfmt.public_bytes(self.key))

    def note(self, n: int, leaves=None) -> bytes:
        leaves = self.leaves if leaves is None else leaves
        return cpfmt.sign(cpfmt.Checkpoint(self.origin, n, merkle.root(leaves[:n])), self.origin, self.key)

    def body(self, old: int, n: int, leaves=None, proof=None) -> bytes:
        leaves = self.leaves if leaves is None else leaves
        if proof is None:
            proof = merkle.consistency_proof(leaves[:n], old) if 0 < old < n else []
        lines = [f"old {old}"] + [base64.b64encode(p).decode() for p in proof]
        return ("\n".join(lines) + "\n\n").encode() + self.note(n, leaves)


@pytest.fixture
def client(serve):
    tokens = {role: serve.token("w", role)["token"] for role in ("backup", "admin")}
    with httpx.Client(base_url=serve.base, verify=ssl.create_default_context(cafile=str(serve.certs["ca"]))) as c:
        c.tokens = tokens
        yield c


def post(client, body: bytes, log: Log, role: str = "backup", what: str = "add-checkpoint"):
    headers = {"Authorization": f"Bearer {client.tokens[role]}", "X-Amber-Log-Key": log.vkey}
    return client.post(f"/w/witness/{what}", content=body, headers=headers)


def newest(client) -> bytes:
    r = client.get("/w/witness/checkpoint", headers={"Authorization": f"Bearer {client.tokens['backup']}"})
    assert r.status_code == 200
    return r.content


def test_cosign_then_refusals(client, serve):
    log = Log()
    public = base64.b64decode(client.get("/server-key").json()["public_key"].split(":", 1)[1])
    name = cpfmt.server_witness_name(public)
    r = post(client, log.body(0, 5), log)
    assert r.status_code == 200
    cp, _t = cpfmt.verify_cosignature(log.note(5) + r.content, name, public)
    assert cp.size == 5
    r = post(client, log.body(5, 9), log)
    assert r.status_code == 200
    # a client that lost its state asks from 0: told the server's size, then it proves from it
    r = post(client, log.body(0, 12), log)
    assert r.status_code == 409 and r.headers["x-amber-witness-size"] == "9"
    assert post(client, log.body(9, 12), log).status_code == 200
    # rollback
    r = post(client, log.body(12, 7), log)
    assert r.status_code == 409 and r.headers["x-amber-error"] == "rollback"
    # fork: another history of 14 leaves, with the honest-looking proof of that history
    forked = log.leaves[:10] + [merkle.leaf_hash(b"forged %d" % i) for i in range(30)]
    r = post(client, log.body(12, 14, forked), log)
    assert r.status_code == 409 and r.headers["x-amber-error"] == "fork"
    # the same size with another root
    r = post(client, log.body(12, 12, forked), log)
    assert r.status_code == 409 and r.headers["x-amber-error"] == "fork"
    # another log, and a bad signature
    stranger = Log()
    r = post(client, stranger.body(12, 14), stranger)
    assert r.status_code == 409 and r.headers["x-amber-error"] == "another-log"
    note = log.note(14)
    bad = note[:-8] + (b"AAAAAAA\n" if not note.endswith(b"AAAAAAA\n") else b"BBBBBBB\n")
    body = log.body(12, 14).replace(note, bad)
    assert post(client, body, log).status_code == 409
    # malformed bodies
    for junk in (b"", b"old x\n\n" + note, b"old 12\n!!!\n\n" + note, b"new 12\n\n" + note, b"\x00" * 70000):
        assert post(client, junk, log).status_code in (400, 413)
    assert cpfmt.parse(newest(client))[0].size == 12
    # a backup token cannot reset; an admin's can
    assert post(client, log.note(3), log, what="reset").status_code == 403
    r = post(client, log.note(3), log, role="admin", what="reset")
    assert r.status_code == 200 and cpfmt.parse(newest(client))[0].size == 3
