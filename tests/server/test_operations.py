"""The server in operation: its own clock and the immutable attribute, metrics, a kill and
restart in the middle of a backup, and many clients backing up into one repository at once."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import ssl
import subprocess
import sys
import time

import httpx
import pytest
from rest_helpers import RestAmber
from serverproc import LIBFAKETIME, ServeProcess, release_immutable

from amber.errors import Locked, TokenRefused
from amber.server.immutable import is_immutable, set_immutable
from amber.storage.base import Retention
from amber.storage.rest import RestStorage

from cli_helpers import make_source, sha256_file


@pytest.fixture
def timed(tmp_path, certs):
    """A server whose clock the test moves (libfaketime)."""
    if LIBFAKETIME is None:
        pytest.skip("libfaketime is not installed")
    server = ServeProcess(tmp_path / "root", certs, fake_clock=True).start()
    yield server
    server.stop()
    release_immutable(server.root)


def _storage(server, role="admin", name="office", create=True) -> RestStorage:
    token = server.token(name, role)["token"]
    return RestStorage(f"{server.base}/{name}", token=token, cacert=str(server.certs["ca"]), create=create)


def _immutable_here(tmp_path) -> bool:
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    ok = set_immutable(str(probe), True)
    set_immutable(str(probe), False)
    return ok


def test_locks_are_judged_by_the_servers_clock_and_files_made_immutable(timed, tmp_path):
    admin = _storage(timed)
    now = dt.datetime.now(dt.UTC)
    admin.put("snapshots/s1", b"snapshot", retention=Retention("compliance", now + dt.timedelta(days=1)))
    path = timed.root / "office" / "snapshots" / "s1"
    if os.geteuid() == 0 and _immutable_here(tmp_path):
        assert is_immutable(str(path))
        with pytest.raises(PermissionError):
            os.unlink(path)  # not even root, until the server clears it
    with pytest.raises(Locked):
        admin.delete("snapshots/s1")
    timed.move_clock(2 * 86400)  # the server's clock, not the client's, says the lock is over
    with pytest.raises(Locked) as e:
        admin.put("snapshots/s2", b"x", retention=Retention("governance", now + dt.timedelta(days=1)))
    assert "ends before the server's time" in str(e.value)
    admin.delete("snapshots/s1")
    assert not path.exists()
    journal = [json.loads(line) for line in (timed.root / ".amber-server" / "journal.jsonl").read_text().splitlines()]
    put = next(r for r in journal if r["op"] == "put")
    assert put["key"] == "snapshots/s1" and abs(dt.datetime.fromisoformat(put["time"]) - now) < dt.timedelta(hours=1)


def test_metrics_count_requests_bytes_refusals_and_locks(serve):
    admin = _storage(serve)
    backup = _storage(serve, "backup", create=False)
    admin.put(
        "data/00/a", b"a" * 1000, retention=Retention("governance", dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    )
    admin.set_legal_hold("data/00/a", True)
    try:
        backup.delete("data/00/a")
    except Exception:
        pass
    trust = ssl.create_default_context(cafile=str(serve.certs["ca"]))
    text = httpx.get(f"{serve.base}/metrics", verify=trust).text
    assert 'amber_requests_total{method="PUT",operation="put",status="201"} 1.0' in text
    assert "amber_received_bytes_total 1000.0" in text
    assert 'amber_refusals_total{reason="forbidden"} 1.0' in text
    assert 'amber_lock_changes_total{kind="retention"} 1.0' in text
    assert 'amber_lock_changes_total{kind="hold"} 1.0' in text
    health = httpx.get(f"{serve.base}/healthz", verify=trust).json()
    assert health["status"] == "ok"


def test_plain_http_only_on_loopback(tmp_path):
    r = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "amber"),
            "serve",
            "--root",
            str(tmp_path / "r"),
            "--listen",
            "0.0.0.0:0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "not a loopback address" in r.stderr and "--tls-cert" in r.stderr


@pytest.mark.subprocess
def test_a_server_killed_and_restarted_mid_backup(serve, tmp_path):
    admin = RestAmber(tmp_path / "admin", serve, "office", serve.token("office", "admin")["token"], subprocess=True)
    admin.run("init")
    user = RestAmber(tmp_path / "user", serve, "office", serve.token("office", "backup")["token"], subprocess=True)
    src = make_source(tmp_path / "src", {f"f{i}.bin": os.urandom(8 << 20) for i in range(8)})
    journal = serve.root / ".amber-server" / "journal.jsonl"
    before = len(journal.read_text().splitlines())
    proc = subprocess.Popen(
        user.cmd("backup", src, "--retain", "1d", "--json"),
        env=user.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while len(journal.read_text().splitlines()) < before + 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the backup ended before the server could be killed"
    serve.kill()
    time.sleep(1)
    serve.start()  # same root, same port
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    sid = json.loads(out)["snapshot_id"]
    admin.run("restore", sid, "--target", tmp_path / "out", "--verify")
    for i in range(8):
        assert sha256_file(tmp_path / "out" / src.lstrip("/") / f"f{i}.bin") == sha256_file(f"{src}/f{i}.bin")
    admin.run("check")
    assert os.listdir(serve.root / "office" / ".incoming") == []


@pytest.mark.subprocess
def test_eight_clients_back_up_into_one_repository_at_once(serve, tmp_path):
    admin = RestAmber(tmp_path / "admin", serve, "office", serve.token("office", "admin")["token"], subprocess=True)
    admin.run("init")
    token = serve.token("office", "backup")["token"]
    users, procs = [], []
    for i in range(8):
        user = RestAmber(tmp_path / f"user{i}", serve, "office", token, subprocess=True)
        src = make_source(tmp_path / f"src{i}", {"own.bin": os.urandom(1 << 20), "shared.txt": b"same\n" * 20000})
        users.append((user, src))
        procs.append(
            subprocess.Popen(
                user.cmd("backup", src, "--retain", "1d", "--json"),
                env=user.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err.decode()
    ids = {json.loads(out)["snapshot_id"] for out, _ in results}
    assert len(ids) == 8
    assert {s["id"] for s in admin.snapshots()} == ids
    admin.run("check", "--read-data")


def test_an_expired_token_is_refused_by_the_servers_clock(timed):
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    token = timed.token("office", "admin", "--expires", until)
    storage = RestStorage(f"{timed.base}/office", token=token["token"], cacert=str(timed.certs["ca"]), create=True)
    storage.put("config", b"c")
    timed.move_clock(2 * 86400)
    with pytest.raises(TokenRefused):
        storage.get("config")
    r = timed.amber(
        "serve",
        "token",
        "add",
        "--root",
        timed.root,
        "--repo",
        "office",
        "--role",
        "backup",
        "--expires",
        "2001-01-01",
        expect=2,
    )
    assert "not in the future" in r.stderr


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_the_servers_memory_does_not_grow_with_object_size(serve):
    admin = _storage(serve)
    admin.put("warmup", os.urandom(4 << 20))
    admin.get("warmup")
    before = _peak_rss_mib(serve.proc.pid)
    big = os.urandom(160 << 20)
    admin.put("data/00/big", big)
    assert admin.get("data/00/big") == big
    assert admin.get("data/00/big", 100 << 20, 50 << 20) == big[100 << 20 : 150 << 20]
    grown = _peak_rss_mib(serve.proc.pid) - before
    assert grown < 40, f"the server's peak memory grew by {grown:.0f} MiB for a 160 MiB object"


def test_plain_http_on_loopback(tmp_path, certs):
    server = ServeProcess(tmp_path / "root", certs, tls=False).start()
    try:
        token = server.token("office", "admin")["token"]
        storage = RestStorage(f"{server.base}/office", token=token, create=True)
        storage.put("config", b"c")
        assert storage.get("config") == b"c"
    finally:
        server.stop()


@pytest.mark.subprocess
def test_a_server_without_the_immutable_capability_is_reported(tmp_path, certs):
    """`amber init` and `check` say so when the server cannot set the immutable attribute (here:
    started without CAP_LINUX_IMMUTABLE in its bounding set)."""
    if not shutil.which("setpriv") or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to start a server without the capability")
    server = ServeProcess(tmp_path / "root", certs, prefix=["setpriv", "--bounding-set", "-linux_immutable"]).start()
    try:
        token = server.token("office", "admin")["token"]
        admin = RestAmber(tmp_path / "admin", server, "office", token, subprocess=True)
        r = admin.run("init")
        assert "does not set the immutable attribute" in r.stderr and "CAP_LINUX_IMMUTABLE" in r.stderr
        r = admin.run("check")
        assert "does not set the immutable attribute" in r.stderr
    finally:
        server.stop()


def test_a_server_with_the_capability_reports_nothing(serve, tmp_path):
    if os.geteuid() != 0 or not _immutable_here(tmp_path):
        pytest.skip("the immutable attribute cannot be set here")
    storage = _storage(serve)
    assert storage.lock_posture(0, None) == []
    storage.put("k", b"x", retention=Retention("governance", dt.datetime.now(dt.UTC) + dt.timedelta(days=1)))
    trust = ssl.create_default_context(cafile=str(serve.certs["ca"]))
    status = httpx.get(
        f"{serve.base}/office/status", verify=trust, headers={"Authorization": f"Bearer {storage.token}"}
    )
    assert status.json()["immutable"] == "on"
