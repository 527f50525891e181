"""Ransomware on the backup client: it has the password and a backup token, and moves its own
clock. Every way it has of destroying a locked snapshot through the server is refused — through
amber's own commands and through raw HTTP requests with the stolen token — and the snapshot still
restores, byte for byte."""

from __future__ import annotations

import os
import ssl
import subprocess

import blake3
import httpx
import pytest
from rest_helpers import RestAmber

from fakeclock import LIBFAKETIME, NO_FAKETIME, moved_clock

from cli_helpers import Result, make_source, sha256_file

pytestmark = pytest.mark.subprocess
needs_faketime = pytest.mark.skipif(LIBFAKETIME is None, reason=NO_FAKETIME)


def at(user, offset: str, *args, expect: int | None = 0) -> Result:
    """`amber ARGS` with the client's clock moved by OFFSET (faketime)."""
    p = subprocess.run(
        user.cmd(*args), env=moved_clock(user.env(), offset), stdin=subprocess.DEVNULL, capture_output=True, timeout=300
    )
    r = Result(args, p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in r.stderr, r
    if expect is not None:
        assert r.rc == expect, f"expected exit {expect} under faketime {offset}:\n{r!r}"
    return r


@pytest.fixture
def victim(tmp_path, serve):
    """A repository with one snapshot locked in compliance mode for 7 days and one in governance
    mode, one of them held; the backup client's token and the admin's."""
    admin_token = serve.token("office", "admin")["token"]
    backup_token = serve.token("office", "backup")["token"]
    admin = RestAmber(tmp_path / "admin", serve, "office", admin_token, subprocess=True)
    admin.run("init")
    client = RestAmber(tmp_path / "client", serve, "office", backup_token, subprocess=True)
    src = make_source(tmp_path / "src", {"ledger.csv": os.urandom(300_000), "notes/plan.txt": b"plan\n" * 500})
    locked = client.backup(src, args=("--retain", "7d", "--retention-mode", "compliance"))["snapshot_id"]
    governed = client.backup(src, args=("--retain", "7d", "--retention-mode", "governance"))["snapshot_id"]
    client.run("hold", governed, "--reason", "audit")
    return {"admin": admin, "client": client, "src": src, "locked": locked, "governed": governed}


def _stored(serve) -> dict[str, str]:
    """SHA-256 of every file under the repository's folder, as the operator sees them."""
    top = serve.root / "office"
    out = {}
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            p = os.path.join(folder, f)
            out[os.path.relpath(p, top)] = sha256_file(p)
    return out


def _http(serve, token) -> httpx.Client:
    return httpx.Client(
        base_url=f"{serve.base}/office",
        verify=ssl.create_default_context(cafile=str(serve.certs["ca"])),
        headers={"Authorization": f"Bearer {token}"},
    )


def _assert_restores(victim, tmp_path, sid, name):
    target = tmp_path / name
    victim["admin"].run("restore", sid, "--target", target, "--verify")
    src = victim["src"]
    for rel in ("ledger.csv", "notes/plan.txt"):
        assert sha256_file(target / src.lstrip("/") / rel) == sha256_file(f"{src}/{rel}")


def test_amber_commands_with_a_backup_token_are_refused(victim, serve, tmp_path):
    client, locked, governed = victim["client"], victim["locked"], victim["governed"]
    before = _stored(serve)
    for args in (("forget", locked), ("forget", governed, "--bypass-governance"), ("release", governed)):
        r = client.run(*args, expect=None)
        assert r.rc in (13, 30), r
        assert "not allowed" in r.stderr or "under" in r.stderr or "refused" in r.stderr, r
    r = client.run("forget", "--keep-within", "1s", "--prune", expect=None)  # keeps what is locked
    assert r.rc in (0, 13, 30), r
    r = client.run("release", governed, expect=13)
    assert "backup role, which may not release" in r.stderr
    r = client.run("forget", locked, expect=30)  # refused by the client already; raw requests below
    assert locked[:8] in r.stderr
    assert _stored(serve) == before
    _assert_restores(victim, tmp_path, locked, "out1")


def test_raw_requests_with_a_stolen_backup_token_are_refused(victim, serve, tmp_path):
    token = victim["client"].token
    locked = victim["locked"]
    key = f"snapshots/{locked}"
    before = _stored(serve)
    with _http(serve, token) as h:
        r = h.delete(f"/objects/{key}")
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")
        r = h.delete(f"/objects/{key}", params={"bypass-governance": "1"})
        assert r.status_code == 403
        body = b"encrypted by ransomware"
        r = h.put(f"/objects/{key}", content=body, headers={"X-Amber-BLAKE3": blake3.blake3(body).hexdigest()})
        assert (r.status_code, r.json()["error"]) == (409, "exists")
        info = h.head(f"/objects/{key}").headers
        until = info["x-amber-retention-until"]
        shorter = "2000-01-01T00:00:00Z"
        r = h.put(f"/retention/{key}", json={"mode": "compliance", "until": shorter})
        assert (r.status_code, r.json()["error"]) == (423, "locked")  # shorten
        r = h.put(f"/retention/{key}", json={"mode": "governance", "until": until})
        assert (r.status_code, r.json()["error"]) == (423, "locked")  # downgrade
        r = h.put(f"/retention/{key}", json={"mode": "compliance", "until": shorter, "bypass_governance": True})
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")  # bypass
        r = h.put(f"/hold/snapshots/{victim['governed']}", json={"on": False})
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")  # release
        r = h.post(serve.base + "/office")
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")  # create
        for admin_written in ("keys/" + "cd" * 32, "settings/00000009", "revoked/" + "ef" * 32, "config"):
            junk = b"planted"
            r = h.put(
                f"/objects/{admin_written}", content=junk, headers={"X-Amber-BLAKE3": blake3.blake3(junk).hexdigest()}
            )
            assert (r.status_code, r.json()["error"]) == (403, "forbidden"), admin_written
            assert "key file, the config, a setting or a revocation" in r.json()["message"]
        # planting new objects is what a backup token may do: they change nothing stored
        junk = os.urandom(4096)
        planted = "snapshots/" + "ab" * 32
        r = h.put(f"/objects/{planted}", content=junk, headers={"X-Amber-BLAKE3": blake3.blake3(junk).hexdigest()})
        assert r.status_code == 201
    after = _stored(serve)
    assert {k: v for k, v in after.items() if k != planted} == before
    _assert_restores(victim, tmp_path, locked, "out2")


def test_admin_token_still_cannot_delete_a_locked_or_held_object(victim, serve):
    token = victim["admin"].token
    before = _stored(serve)
    with _http(serve, token) as h:
        for key in (f"snapshots/{victim['locked']}", f"snapshots/{victim['governed']}"):
            for params in ({}, {"bypass-governance": "1"}):
                r = h.delete(f"/objects/{key}", params=params)
                assert (r.status_code, r.json()["error"]) == (423, "locked"), r.text
    r = victim["admin"].run("forget", victim["locked"], expect=30)
    assert victim["locked"][:8] in r.stderr
    assert _stored(serve) == before


@needs_faketime
def test_moving_the_clients_clock_changes_nothing_on_the_server(victim, serve, tmp_path):
    """`faketime +8d amber forget` past a 7-day lock: the client's own clock guard is overridden
    (--trust-clock), and the server, judging by its own clock, still refuses."""
    locked = victim["locked"]
    before = _stored(serve)
    r = at(victim["admin"], "+8d", "forget", locked, "--trust-clock", expect=30)
    assert f"snapshots/{locked}" in r.stderr and "compliance retention" in r.stderr, r
    r = at(victim["client"], "+8d", "forget", locked, "--trust-clock", expect=13)
    assert _stored(serve) == before
    # a lock that would end before the server's now is refused: a clock moved back cannot make one
    src = make_source(tmp_path / "more", {"new.bin": os.urandom(50_000)})
    r = at(victim["client"], "-30d", "backup", src, "--retain", "7d", expect=30)
    assert "ends before the server's time" in r.stderr, r
    _assert_restores(victim, tmp_path, locked, "out3")
