"""Time-stamping authorities as witnesses of the audit log, through the commands a user runs.

The TSA is OpenSSL's (`openssl ts -reply`) behind HTTP on loopback (tests/tsaserver.py),
with a certificate made here under a test CA. Attacks write into the repository folder
the way an attacker with access to the storage would: a real token of other bytes from
the same TSA over the stored one, a genuine token of an older checkpoint moved, a token
of the right checkpoint from another TSA, junk under `log/timestamps/`."""

from __future__ import annotations

import shutil
import subprocess
import zipfile

import pytest

from s3.helpers import S3Amber
from tsaserver import OPENSSL, TsaServer, make_pki, token_for

from cli_helpers import Amber, with_one_backup, write
from s3server import S3_SERVERS

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command (quickstart.py test installs it)"),
]


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


@pytest.fixture
def other_pki(tmp_path):
    return make_pki(tmp_path / "other-pki", "another")


@pytest.fixture
def tsa(pki):
    server = TsaServer(pki)
    yield server
    server.stop()


@pytest.fixture
def user(tmp_path, amber_exe, in_subprocess) -> Amber:
    u = Amber(tmp_path / "amber", subprocess=in_subprocess)
    with_one_backup(u, tmp_path / "src")
    return u


@pytest.fixture
def stamped(user, tsa, pki) -> Amber:
    """A repository whose TSA witness `tsa1` has its certificate and CA pinned (`--tsa-cert`)."""
    user.run("audit", "witness", "add", "tsa1", "--tsa", tsa.url, "--tsa-cert", pki.chain)
    return user


def grow(u: Amber, n: int = 1) -> str:
    sid = ""
    for i in range(n):
        write(u.src / f"f{i}.txt", f"{u.src} {i}\n".encode())
        sid = u.backup(u.src)["snapshot_id"]
    return sid


def token_path(u: Amber, size: int, name: str = "tsa1"):
    return u.repo / "log" / "timestamps" / name / f"{size:012d}"


def tokens(u: Amber, name: str = "tsa1") -> dict:
    folder = u.repo / "log" / "timestamps" / name
    return {int(p.name): p for p in folder.iterdir()} if folder.is_dir() else {}


def plant(path, data: bytes) -> None:
    """Write an object into the repository folder as an attacker would (over a read-only file too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.chmod(0o644)
    path.write_bytes(data)


def head(u: Amber) -> int:
    return u.json("audit", "verify")["size"]


def checkpoint_note(u: Amber, size: int) -> bytes:
    return (u.repo / "log" / "checkpoints" / f"{size:012d}").read_bytes()


def offline(u: Amber, tmp_path) -> dict:
    where = tmp_path / "elsewhere"
    where.mkdir(exist_ok=True)
    return {"env": u.env(AMBER_PASSWORD=None, AMBER_REPOSITORY=None, HOME=where), "cwd": where}


def test_every_change_is_timestamped_and_verify_checks_it(stamped, pki):
    u = stamped
    grow(u, 2)
    size = head(u)
    added = next(ev for ev in u.json("audit", "log") if ev["type"] == "witness")
    assert set(tokens(u)) == set(range(added["seq"] + 1, size + 1))  # from the witness event's own checkpoint on
    listed = u.json("audit", "witness", "list")
    assert listed[0]["url"].startswith("tsa:http://127.0.0.1:") and "BEGIN CERTIFICATE" in listed[0]["tsa_cert"]
    doc = u.json("audit", "verify")
    assert doc["ok"], doc
    newest = [t for t in doc["timestamps"] if t["size"] == size]
    assert newest and newest[0]["ok"] is True and newest[0]["tsa"] == "tsa1" and newest[0]["gen_time"].endswith("Z")
    full = u.json("audit", "verify", "--full")
    assert full["ok"] and {t["size"] for t in full["timestamps"]} == set(tokens(u))
    assert all(t["ok"] for t in full["timestamps"])
    assert "timestamp tsa1: checkpoint of" in u.run("audit", "verify").out
    # the stored token is a standard one: OpenSSL verifies it against the note and the CA alone
    note = u.repo / "log" / "checkpoints" / f"{size:012d}"
    p = subprocess.run(
        [OPENSSL, "ts", "-verify", "-in", token_path(u, size), "-data", note, "-CAfile", pki.ca], capture_output=True
    )
    assert p.returncode == 0 and b"Verification: OK" in p.stdout, p


def test_a_self_signed_tsa_is_pinned_on_first_use(user, tmp_path):
    """A TSA that sends all there is to pin (its certificate is its own root): no --tsa-cert needed."""
    u = user
    private = TsaServer(make_pki(tmp_path / "private", "private", self_signed=True))
    try:
        u.run("audit", "witness", "add", "tsa1", "--tsa", private.url)
        grow(u)
        size = head(u)
        assert size in tokens(u)
        pinned = u.json("audit", "witness", "list")[0]["tsa_cert"]
        assert pinned.encode() == private.pki.chain.read_bytes()
        doc = u.json("audit", "verify", "--full")
        assert doc["ok"] and all(t["ok"] for t in doc["timestamps"])
    finally:
        private.stop()


def test_a_tsa_that_does_not_send_its_issuers_needs_tsa_cert(user, tsa):
    r = user.run("audit", "witness", "add", "tsa1", "--tsa", tsa.url, expect=2)
    assert "--tsa-cert" in r.stderr and "CN=amber test TSA" in r.stderr
    assert user.json("audit", "witness", "list") == []


def test_evidence_carries_the_token_and_verifies_offline(stamped, tsa, pki, other_pki, tmp_path):
    u = stamped
    sid = grow(u)
    bundle = tmp_path / "evidence.zip"
    u.run("evidence", "export", sid, u.src / "f0.txt", "-o", bundle)
    with zipfile.ZipFile(bundle) as z:
        assert "timestamps/tsa1.tsr" in z.namelist()
    vkey = u.run("audit", "checkpoint", "--public-key").out.strip()
    tsa.stop()  # offline from here on
    where = offline(u, tmp_path)
    r = u.run("evidence", "verify", bundle, "--public-key", vkey, "--tsa-cert", pki.chain, **where)
    assert "timestamps/tsa1.tsr" in r.out and "signed by a TSA certificate given" in r.out
    assert r.out.rstrip().endswith("evidence verified")
    doc = u.json("evidence", "verify", bundle, "--public-key", vkey, "--tsa-cert", pki.chain, **where)
    assert doc["timestamps"][0]["verified"] is True and doc["timestamps"][0]["gen_time"].endswith("Z")
    # without a certificate the tokens are shown, and the output says they were not checked
    r = u.run("evidence", "verify", bundle, "--public-key", vkey, **where)
    assert "not checked against a trusted TSA certificate" in r.stderr and "NOT checked" in r.out
    # another TSA's certificate: exit 20 naming the token
    r = u.run("evidence", "verify", bundle, "--public-key", vkey, "--tsa-cert", other_pki.chain, expect=20, **where)
    assert "timestamps/tsa1.tsr" in r.stderr and "not signed by the TSA certificate" in r.stderr


def test_a_bundle_whose_token_is_for_other_data_is_refused(stamped, tsa, pki, tmp_path):
    u = stamped
    sid = grow(u)
    bundle = tmp_path / "evidence.zip"
    u.run("evidence", "export", sid, u.src / "f0.txt", "-o", bundle)
    vkey = u.run("audit", "checkpoint", "--public-key").out.strip()
    forged = token_for(tsa.url, b"some other document\n")  # a genuine token, of other bytes
    with zipfile.ZipFile(bundle) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in members:
            z.writestr(name, forged if name == "timestamps/tsa1.tsr" else data)
    for args in ((), ("--tsa-cert", pki.chain)):
        r = u.run("evidence", "verify", bad, "--public-key", vkey, *args, expect=20, **offline(u, tmp_path))
        assert "timestamps/tsa1.tsr" in r.stderr and "other data" in r.stderr, r
    # with --tsa-cert, a bundle that carries no token does not verify either
    stripped = tmp_path / "stripped.zip"
    with zipfile.ZipFile(stripped, "w") as z:
        for name, data in members:
            if name != "timestamps/tsa1.tsr":
                z.writestr(name, data)
    r = u.run(
        "evidence", "verify", stripped, "--public-key", vkey, "--tsa-cert", pki.chain, expect=20, **offline(u, tmp_path)
    )
    assert "carries none" in r.stderr


def test_a_stored_token_for_other_data_is_named(stamped, tsa):
    u = stamped
    grow(u, 2)
    size = head(u)
    older = token_path(u, size - 1)
    plant(older, token_for(tsa.url, b"not a checkpoint of this log\n"))
    r = u.run("audit", "verify", "--full", expect=20)
    assert str(older.relative_to(u.repo)) in r.stderr and "other data" in r.stderr, r
    u.run("check", expect=20)  # which records a `check` event, timestamped too
    size = head(u)
    # the newest token replaced by a genuine token of an older checkpoint: the plain verify names it
    newest = token_path(u, size)
    plant(newest, token_path(u, size - 2).read_bytes())
    r = u.run("audit", "verify", expect=20)
    assert str(newest.relative_to(u.repo)) in r.stderr and "other data" in r.stderr, r
    doc = u.json("audit", "verify", expect=20, quiet=False)
    assert any(t["size"] == size and t["ok"] is False for t in doc["timestamps"])


def test_a_token_of_the_right_checkpoint_from_another_tsa_is_named(stamped, other_pki):
    u = stamped
    grow(u)
    size = head(u)
    other = TsaServer(other_pki)
    try:
        forged = token_for(other.url, checkpoint_note(u, size))
    finally:
        other.stop()
    plant(token_path(u, size), forged)
    r = u.run("audit", "verify", expect=20)
    assert f"log/timestamps/tsa1/{size:012d}" in r.stderr and "not signed by the TSA certificate" in r.stderr, r


def test_an_unreachable_tsa_is_a_warning_never_a_failed_backup(stamped, tsa):
    u = stamped
    tsa.stop()
    write(u.src / "b.txt", b"beta\n")
    r = u.run("backup", u.src)
    assert "tsa1" in r.stderr and "not published" in r.stderr, r
    size = head(u)
    assert size not in tokens(u)
    r = u.run("audit", "verify")
    assert "no timestamp from TSA witness tsa1" in r.stderr, r
    assert u.json("audit", "verify", "--full", quiet=False)["ok"]


def test_a_replayed_token_is_refused(stamped, tsa):
    """The TSA (or someone between) answers with an old genuine token: its nonce is not the request's."""
    u = stamped
    size = head(u)
    tsa.replay = token_path(u, size).read_bytes()
    write(u.src / "b.txt", b"beta\n")
    r = u.run("backup", u.src)
    assert "tsa1" in r.stderr and "nonce" in r.stderr, r
    assert head(u) not in tokens(u)


def test_junk_under_timestamps_is_foreign(stamped):
    u = stamped
    grow(u)
    junk = {
        "log/timestamps/tsa1/notes.txt": b"hello",
        "log/timestamps/tsa1/000000000001": b"not a token",
        "log/timestamps/nobody/000000000002": b"x" * 100,
        f"log/timestamps/tsa1/{head(u) + 5:012d}": b"beyond",
    }
    for key, data in junk.items():
        plant(u.repo / key, data)
    r = u.run("audit", "verify", "--full", expect=20)
    for key in junk:
        assert key in r.stderr, (key, r)
    assert "foreign" in r.stderr
    found = {f["key"] for f in u.json("audit", "foreign")}
    assert set(junk) <= found
    u.run("audit", "foreign", "--all", "--reason", "examined: planted in a test")
    assert u.json("audit", "verify", "--full", quiet=False)["ok"]


def test_adding_a_tsa_checks_what_is_given(user, tsa, pki, other_pki, tmp_path):
    u = user
    r = u.run("audit", "witness", "add", "t1", "--tsa", tsa.url, "--tsa-cert", other_pki.chain, expect=20)
    assert "not signed by the TSA certificate" in r.stderr
    assert u.json("audit", "witness", "list") == []
    u.run("audit", "witness", "add", "t1", "--tsa", "ftp://127.0.0.1/tsa", expect=2)
    u.run("audit", "witness", "add", "t1", "--tsa", tsa.url, "--dir", tmp_path / "w", expect=2)
    u.run("audit", "witness", "add", "t1", "--dir", tmp_path / "w", "--tsa-cert", pki.chain, expect=2)
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a certificate\n")
    u.run("audit", "witness", "add", "t1", "--tsa", tsa.url, "--tsa-cert", junk, expect=2)
    r = u.run("audit", "witness", "add", "t1", "--tsa", tsa.url, "--tsa-cert", pki.tsa, expect=2)
    assert "no root certificate" in r.stderr
    u.run("audit", "witness", "add", "t1", "--tsa", tsa.url, "--tsa-cert", pki.chain)
    assert [w["name"] for w in u.json("audit", "witness", "list")] == ["t1"]


def test_the_checkpoint_after_a_trust_reset_is_timestamped(stamped, tmp_path):
    u = stamped
    old = tmp_path / "old-copy"
    shutil.copytree(u.repo, old)
    grow(u, 2)
    shutil.rmtree(u.repo)
    shutil.copytree(old, u.repo)  # restored from an older copy, on purpose
    for d in (u.state, u.cache):
        shutil.rmtree(d)
        d.mkdir()
    u.run("audit", "trust", "--reset", "--reason", "restored from the tape")
    size = head(u)
    assert size in tokens(u)
    doc = u.json("audit", "verify", "--full", quiet=False)
    assert doc["ok"] and all(t["ok"] for t in doc["timestamps"]), doc


def test_a_tsa_over_https_with_a_private_ca(user, pki, tmp_path):
    """HTTPS to the TSA trusts the system's authorities, or the one given with AMBER_CACERT / --cacert."""
    u = user
    server = TsaServer(pki, tls=True)
    try:
        r = u.run("audit", "witness", "add", "tsa1", "--tsa", server.url, "--tsa-cert", pki.chain, expect=None)
        assert r.rc != 0 and "--cacert" in r.stderr, r
        env = u.env(AMBER_CACERT=pki.ca)
        u.run("--cacert", pki.ca, "audit", "witness", "add", "tsa1", "--tsa", server.url, "--tsa-cert", pki.chain)
        write(u.src / "b.txt", b"beta\n")
        r = u.run("backup", u.src, env=env)
        assert "tsa1" not in r.stderr, r
        size = u.json("audit", "verify", env=env)["size"]
        assert size in tokens(u)
    finally:
        server.stop()


@pytest.mark.parametrize("server_name", S3_SERVERS)
def test_tokens_in_an_s3_repository(request, tmp_path, amber_exe, server_name, pki, tsa):
    """On S3 the tokens are objects beside the checkpoints; what an attacker puts there with
    boto3 (junk, a genuine token of other data under a free name) is named."""
    server = request.getfixturevalue(f"{server_name}_server")
    u = S3Amber(tmp_path / "amber", server, server.new_bucket(object_lock=True), subprocess=True)
    with_one_backup(u, tmp_path / "src")
    u.run("audit", "witness", "add", "tsa1", "--tsa", tsa.url, "--tsa-cert", pki.chain)
    grow(u)
    size = head(u)
    u.s3.head_object(Bucket=u.bucket, Key=u.key(f"log/timestamps/tsa1/{size:012d}"))
    doc = u.json("audit", "verify", "--full")
    assert doc["ok"] and any(t["size"] == size and t["ok"] for t in doc["timestamps"]), doc
    junk = u.key("log/timestamps/tsa1/junk")
    other = u.key("log/timestamps/tsa1/000000000001")  # no token there: the TSA came later
    u.s3.put_object(Bucket=u.bucket, Key=junk, Body=b"junk")
    u.s3.put_object(Bucket=u.bucket, Key=other, Body=token_for(tsa.url, b"another document\n"))
    r = u.run("audit", "verify", "--full", expect=20)
    assert "log/timestamps/tsa1/junk" in r.stderr and "foreign" in r.stderr, r
    assert "log/timestamps/tsa1/000000000001" in r.stderr and "other data" in r.stderr, r
