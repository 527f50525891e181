"""The server journal: every change signed and chained; `amber serve journal` verifies it and
names the first bad record (exit 20); an auditor reads it remotely and checks the signatures."""

from __future__ import annotations

import base64
import datetime as dt
import json

import blake3
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from amber.server.journal import record_hash
from amber.storage.base import Retention
from amber.storage.rest import RestStorage


@pytest.fixture
def busy(serve):
    """A repository with a put, a lock, a hold, a release and a delete in the journal."""
    admin = serve.token("office", "admin")
    storage = RestStorage(f"{serve.base}/office", token=admin["token"], cacert=str(serve.certs["ca"]), create=True)
    storage.put("config", b"c")
    storage.put("data/00/a", b"a")
    storage.set_retention("data/00/a", Retention("governance", dt.datetime.now(dt.UTC) + dt.timedelta(days=1)))
    storage.set_legal_hold("config", True)
    storage.set_legal_hold("config", False)
    storage.delete("config")
    yield storage, admin
    storage.close()


def _journal(serve, *args, expect=0):
    return serve.amber("serve", "journal", "--root", serve.root, *args, expect=expect)


def test_every_change_is_journaled_with_who_and_where(serve, busy):
    _, admin = busy
    doc = json.loads(_journal(serve, "--json").stdout)
    ops = [(r["op"], r.get("key", "")) for r in doc["records"]]
    assert ops == [
        ("token-add", ""),
        ("create-repository", ""),
        ("put", "config"),
        ("put", "data/00/a"),
        ("retention", "data/00/a"),
        ("hold", "config"),
        ("release", "config"),
        ("delete", "config"),
    ]
    put = doc["records"][2]
    assert put["token"] == admin["id"] and put["role"] == "admin" and put["remote"] == "127.0.0.1"
    assert put["details"]["blake3"] == blake3.blake3(b"c").hexdigest() and put["details"]["size"] == 1
    assert doc["records"][0]["details"]["token_id"] == admin["id"]
    assert doc["server_key"] == (serve.root / ".amber-server" / "key.pub").read_text().strip()
    text = _journal(serve).stdout
    assert "retention" in text and "data/00/a" in text


def test_token_revocation_is_journaled(serve, busy):
    _, admin = busy
    serve.amber("serve", "token", "revoke", "--root", serve.root, admin["id"])
    last = json.loads(_journal(serve, "--json").stdout)["records"][-1]
    assert last["op"] == "token-revoke" and last["details"]["token_id"] == admin["id"]


def _lines(serve):
    path = serve.root / ".amber-server" / "journal.jsonl"
    return path, path.read_text().splitlines()


def test_an_edited_record_is_named(serve, busy):
    path, lines = _lines(serve)
    rec = json.loads(lines[3])
    rec["key"] = "data/00/b"
    lines[3] = json.dumps(rec, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    r = _journal(serve, expect=20)
    assert "line 4" in r.stderr and "record 3" in r.stderr and "edited" in r.stderr


def test_a_removed_record_is_named(serve, busy):
    path, lines = _lines(serve)
    del lines[5]
    path.write_text("\n".join(lines) + "\n")
    r = _journal(serve, expect=20)
    assert "line 6" in r.stderr and "removed or reordered" in r.stderr


def test_a_record_signed_by_another_key_is_named(serve, busy):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path, lines = _lines(serve)
    rec = json.loads(lines[-1])
    rec["key"] = "data/00/other"
    rec["hash"] = record_hash(rec)
    rec["sig"] = base64.b64encode(Ed25519PrivateKey.generate().sign(bytes.fromhex(rec["hash"]))).decode()
    lines[-1] = json.dumps(rec, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    r = _journal(serve, expect=20)
    assert f"line {len(lines)}" in r.stderr and "signature does not verify" in r.stderr


def test_an_auditor_reads_the_journal_remotely(serve, busy):
    auditor = serve.token("office", "auditor")["token"]
    storage = RestStorage(f"{serve.base}/office", token=auditor, cacert=str(serve.certs["ca"]))
    records = storage.journal()
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(storage.server_key().removeprefix("ed25519:")))
    assert [r["op"] for r in records][:3] == ["token-add", "create-repository", "put"]
    for r in records:
        assert r["hash"] == record_hash(r)
        key.verify(base64.b64decode(r["sig"]), bytes.fromhex(r["hash"]))
    serve.token("branch", "admin")  # another repository's records are not shown
    assert all(r["repo"] == "office" for r in storage.journal())


def test_the_journal_of_one_repository(serve, busy):
    other = serve.token("branch", "admin")
    RestStorage(f"{serve.base}/branch", token=other["token"], cacert=str(serve.certs["ca"]), create=True).put("x", b"x")
    doc = json.loads(_journal(serve, "--repo", "branch", "--json").stdout)
    assert [r["op"] for r in doc["records"]] == ["token-add", "create-repository", "put"]
    assert {r["repo"] for r in json.loads(_journal(serve, "--json").stdout)["records"]} == {"office", "branch"}
    r = _journal(serve, "--repo", "branch")
    assert "journal verified" in r.stderr and r.stdout.count("\n") == 3
