"""`amber drill`: restore a snapshot or a sample of it into a scratch folder, verify every byte,
time it, extrapolate the full restore's time, and record it — tried as an auditor would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli_helpers import Amber, make_source


@pytest.fixture
def user(tmp_path) -> Amber:
    u = Amber(tmp_path / "user")
    u.create()
    files = {f"docs/{i:03}.txt": f"document {i}\n".encode() * (i + 1) for i in range(60)}
    u.src = Path(make_source(tmp_path / "src", files | {"big.bin": os.urandom(400_000)}))
    u.sid = u.backup(u.src)["snapshot_id"]
    return u


def restored_files(target: Path) -> set[str]:
    return {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}


def test_a_whole_drill_verifies_every_file_and_is_recorded(user, tmp_path):
    out = user.json("drill")
    assert out["ok"] and out["files"] == out["verified"] == out["total_files"] == 61, out
    assert out["bytes"] == out["total_bytes"] and out["rto_seconds"] >= 0 and out["seconds"] > 0
    assert not os.path.exists(out["target"]) and out["kept"] is False  # the scratch folder is gone
    ev = [e for e in user.json("audit", "log") if e["type"] == "drill"][-1]
    assert ev["snapshot"] == user.sid and ev["details"]["ok"] is True and ev["details"]["verified"] == 61
    assert ev["author"], "the drill event is signed by the key that ran it"


def test_a_sample_is_the_same_every_time_and_extrapolates(user, tmp_path):
    a = user.json("drill", "--sample", "5", "--target", tmp_path / "a")
    b = user.json("drill", user.sid, "--sample", "5", "--target", tmp_path / "b")
    assert a["files"] == b["files"] == 5 and a["kept"] and a["total_files"] == 61
    assert restored_files(tmp_path / "a") == restored_files(tmp_path / "b")
    assert a["rto_seconds"] >= a["seconds"] - 0.1  # the whole snapshot at the sample's throughput
    half = user.json("drill", "--sample", "50%")
    assert half["files"] == 31 and half["ok"]


def test_bad_input_is_refused(user, tmp_path):
    for bad in ("0", "0%", "101%", "ten", "-3"):
        assert "--sample" in user.run("drill", "--sample", bad, expect=2).stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    assert "empty" in user.run("drill", "--target", tmp_path / "full", expect=2).stderr
    assert (tmp_path / "full" / "x").read_text() == "mine"


def test_a_drill_over_damaged_data_fails_and_names_it(user, tmp_path):
    big = max((p for p in (user.repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    os.chmod(big, 0o644)
    data = bytearray(big.read_bytes())
    data[len(data) // 3] ^= 1
    big.write_bytes(bytes(data))
    r = user.run("drill", "--json", expect=20)
    doc = r.json()
    assert doc["ok"] is False and any("big.bin" in e for e in doc["errors"]), doc
    ev = [e for e in user.json("audit", "log") if e["type"] == "drill"][-1]
    assert ev["details"]["ok"] is False and ev["details"]["errors"] >= 1


def test_a_write_only_key_cannot_drill(user, tmp_path):
    user.run("key", "add", "--role", "backup", env=user.env(AMBER_NEW_PASSWORD="backup host"))
    host = Amber(tmp_path / "host", password="backup host")
    host.repo, host.url = user.repo, user.url
    assert "write-only" in host.run("drill", expect=13).stderr
