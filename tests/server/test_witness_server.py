"""`amber serve` as a witness of a repository's audit log: a client with a local repository
pins the server's key on first use, every change is cosigned (C2SP cosignature/v1), the server
refuses a rollback or a fork (409, journaled), and `audit verify` reports a rolled-back or
forked log and a change that lacks a cosignature, even after the client's state is deleted."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest
from rest_helpers import RestAmber
from serverproc import AMBER, clean_env

from amber.audit import checkpoint as cpfmt

from cli_helpers import Amber, write

pytestmark = pytest.mark.subprocess


class WitnessedAmber(Amber):
    """A user whose repository is local and whose witness is an `amber serve`."""

    def __init__(self, base, serve, token: str) -> None:
        super().__init__(base, subprocess=True)
        self.serve = serve
        self.token = token

    def env(self, **overrides) -> dict:
        extra = {"AMBER_TOKEN": self.token, "AMBER_CACERT": str(self.serve.certs["ca"])}
        extra.update(overrides)
        return super().env(**extra)


def forget_client(u: Amber) -> None:
    for d in (u.state, u.cache):
        shutil.rmtree(d)
        d.mkdir()


def grow(u: Amber, n: int = 1) -> None:
    for i in range(n):
        write(u.src / f"f{i}.txt", f"{u.src} {i} {id(u)}\n".encode())
        u.backup(u.src)


def journal(serve) -> list[dict]:
    out = subprocess.run(
        [AMBER, "serve", "journal", "--root", serve.root, "--json"], env=clean_env(), capture_output=True, check=True
    ).stdout
    doc = json.loads(out)
    return doc["records"] if isinstance(doc, dict) else doc


@pytest.fixture
def user(tmp_path, serve):
    u = WitnessedAmber(tmp_path / "amber", serve, serve.token("wit", "backup")["token"])
    u.admin = serve.token("wit", "admin")["token"]
    u.create()
    u.src = tmp_path / "src"
    write(u.src / "a.txt", b"alpha\n")
    u.backup(u.src)
    u.run("audit", "witness", "add", "srv", "--url", serve.url("wit"))
    return u


def test_cosigned_on_every_change_and_key_pinned(user, serve):
    u = user
    (listed,) = u.json("audit", "witness", "list")
    assert listed["server_key"] == (serve.root / ".amber-server" / "key.pub").read_text().strip()
    grow(u, 2)
    doc = u.json("audit", "verify")
    assert doc["ok"] and doc["witnesses"][0]["size"] == doc["size"]
    kept = next(u.state.rglob("witness/srv/cosigned")).read_bytes()
    server_public = base64.b64decode(listed["server_key"].split(":", 1)[1])
    cp, _time = cpfmt.verify_cosignature(kept, cpfmt.server_witness_name(server_public), server_public)
    assert cp.size == doc["size"]
    assert [r for r in journal(serve) if r.get("op") == "cosign"]


def test_rollback_refused_by_the_server_and_reported(user, serve, tmp_path):
    u = user
    old = tmp_path / "old-copy"
    shutil.copytree(u.repo, old)
    grow(u, 2)
    shutil.rmtree(u.repo)
    shutil.copytree(old, u.repo)
    forget_client(u)
    r = u.run("audit", "verify", expect=20)
    assert "witness srv" in r.stderr and "rolled back" in r.stderr
    write(u.src / "z.txt", b"after the rollback\n")
    r = u.run("backup", u.src)  # the change is stored; the witness refuses it: a warning
    assert "witness srv" in r.stderr and ("rollback" in r.stderr or "does not extend" in r.stderr)
    assert any(rec.get("op") == "cosign-refused" for rec in journal(serve))
    u.run("audit", "verify", expect=20)
    # a backup token may not make the server forget: the reset needs an admin's
    r = u.run("audit", "trust", "--reset", "--reason", "restored from tape")
    assert "could not" in r.stderr or "not allowed" in r.stderr
    u.run("audit", "trust", "--reset", "--reason", "restored from tape", env=u.env(AMBER_TOKEN=u.admin))
    assert u.json("audit", "verify")["ok"]
    grow(u, 1)
    assert u.json("audit", "verify")["ok"]
    assert any(rec.get("op") == "witness-reset" for rec in journal(serve))


def test_fork_refused(user, serve, tmp_path):
    u = user
    other = WitnessedAmber(tmp_path / "other", serve, u.token)
    shutil.copytree(u.repo, other.repo)
    shutil.copytree(u.state, other.state, dirs_exist_ok=True)
    other.src = tmp_path / "src-other"
    write(other.src / "b.txt", b"beta\n")
    grow(u, 1)
    r = other.run("backup", other.src)
    assert "witness srv" in r.stderr
    r = other.run("audit", "verify", expect=20)
    assert "witness srv" in r.stderr


def test_change_without_cosignature_is_reported(user):
    u = user
    write(u.src / "n.txt", b"no token for the witness\n")
    r = u.run("backup", u.src, env=u.env(AMBER_TOKEN="wrong-token"))
    assert "witness srv" in r.stderr
    r = u.run("audit", "verify", expect=20)
    assert "lacks a cosignature" in r.stderr
    grow(u, 1)  # the next change is cosigned with a proof from the server's last
    assert u.json("audit", "verify")["ok"]


def test_evidence_bundle_carries_the_cosignature(user, serve, tmp_path):
    u = user
    write(u.src / "e.txt", b"evidence\n")
    sid = u.backup(u.src)["snapshot_id"]
    out = tmp_path / "evidence.zip"
    u.run("evidence", "export", sid[:8], str(u.src / "e.txt"), "-o", out)
    server_key = (serve.root / ".amber-server" / "key.pub").read_text().strip()
    log_key = u.run("audit", "checkpoint", "--public-key").out.strip()
    doc = u.json("evidence", "verify", out, "--public-key", log_key, "--witness-key", server_key)
    assert doc["ok"], doc
    other = "ed25519:" + base64.b64encode(b"\x01" * 32).decode()
    r = u.run("evidence", "verify", out, "--public-key", log_key, "--witness-key", other, expect=20)
    assert "cosigned by the witness key" in r.out + r.stderr


def test_a_repository_on_the_server_is_cosigned_by_it(tmp_path, serve):
    admin = RestAmber(tmp_path / "user", serve, "office", serve.token("office", "admin")["token"], subprocess=True)
    admin.run("init")
    backup = RestAmber(tmp_path / "user", serve, "office", serve.token("office", "backup")["token"], subprocess=True)
    src = tmp_path / "src"
    write(src / "a.txt", b"alpha\n")
    backup.backup(src)
    auditor = RestAmber(tmp_path / "user", serve, "office", serve.token("office", "auditor")["token"], subprocess=True)
    doc = auditor.json("audit", "verify")
    (w,) = doc["witnesses"]
    assert doc["ok"] and w["name"] == "serving-server" and w["size"] == doc["size"]
    assert any(rec.get("op") == "cosign" and rec.get("repo") == "office" for rec in journal(serve))
