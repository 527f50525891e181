"""A moved clock against an S3 repository: amber's clock guard refuses first, and the bucket,
which judges retention by its own clock, refuses even an administrator's --trust-clock."""

from __future__ import annotations

from test_cli_clock_attacks import at, rnd, snapshot_ids
from test_cli_clock_attacks import pytestmark as pytestmark  # real processes; skipped without faketime

from cli_helpers import make_source


def refused_by_a_signing_server(user, shift: str, sid: str) -> bool:
    """A server that checks the signature's time (AWS, Ceph RGW; not moto) refuses every request
    of a client whose clock was moved: nothing is deleted, and the message says why."""
    if user.server.kind == "moto":
        return False
    r = at(user, shift, "forget", sid, expect=1)
    assert "clock is" in r.stderr and "ahead of the server's" in r.stderr, r
    assert snapshot_ids(user) == [sid]
    return True


def test_forget_with_the_clock_moved_past_a_7_day_lock_is_refused_on_s3(s3repo, tmp_path):
    src = make_source(tmp_path / "src", {"a.bin": rnd(60_000, "a")})
    sid = s3repo.backup(src, args=("--retain", "7d"))["snapshot_id"]
    if refused_by_a_signing_server(s3repo, "+8d", sid):
        return
    r = at(s3repo, "+8d", "forget", sid, expect=30)
    assert sid[:8] in r.stderr and "clock jump of 8 days" in r.stderr, r
    assert snapshot_ids(s3repo, "+8d") == [sid]
    # the bucket's clock is the real witness: the lock still holds there
    r = at(s3repo, "+8d", "forget", sid, "--trust-clock", expect=30)
    assert "by the server's clock" in r.stderr, r
    assert snapshot_ids(s3repo) == [sid]
    assert s3repo.versions(f"snapshots/{sid}"), "the locked version is still stored"


def test_short_locks_make_the_window_short_on_s3(s3repo, tmp_path):
    src = make_source(tmp_path / "src", {"a.bin": rnd(60_000, "a")})
    sid = s3repo.backup(src, args=("--retain", "1h"))["snapshot_id"]
    if refused_by_a_signing_server(s3repo, "+2h", sid):
        return
    r = at(s3repo, "+2h", "forget", sid, expect=30)
    assert "1 hour" in r.stderr, r
    assert snapshot_ids(s3repo) == [sid]
