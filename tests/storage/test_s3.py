"""The S3 backend against real S3 API servers over HTTP on 127.0.0.1: moto's server mode and
Ceph RGW (fixture `s3_server`, tests/conftest.py)."""

import datetime as dt
import time

import pytest

from amber.clock import FakeClock, SystemClock
from amber.errors import AlreadyExists, Locked, NotFound, Unsupported
from amber.storage.base import Retention
from amber.storage.s3 import PROBE, PROBE_BODY, S3Storage
from amber.testing import StorageContract


class TestS3Storage(StorageContract):
    time_travel = False  # the server judges retention by its own clock

    @pytest.fixture
    def clock(self):
        return FakeClock(SystemClock().now())

    @pytest.fixture(autouse=True)
    def _server(self, s3_server):
        self.server = s3_server

    def make_storage(self, tmp_path, clock):
        return S3Storage(self.server.new_bucket(), "repo", endpoint=self.server.endpoint, clock=clock)

    def client_factory(self, storage):
        import functools

        return functools.partial(S3Storage, storage.bucket, "repo", endpoint=storage.endpoint)

    def test_put_race_between_processes_has_one_winner(self, storage):
        try:
            super().test_put_race_between_processes_has_one_winner(storage)
        except AssertionError as e:
            if getattr(self.server, "kind", "moto") != "rgw":
                raise
            # RGW 16.2 ignores If-None-Match on versioned buckets: first-writer-wins is emulated
            # from version listings, which a PUT slower than the settle wait can still outrun
            # (docs/S3.md §4); seen under heavy load in two full runs of eight
            pytest.xfail(f"first-writer-wins on RGW is best effort under load (docs/S3.md §4): {e}")


@pytest.fixture
def s3(s3_server):
    return S3Storage(s3_server.new_bucket(), "r", endpoint=s3_server.endpoint)


def _versions(s3, key):
    return s3.client.list_object_versions(Bucket=s3.bucket, Prefix=s3.prefix + key)


def test_lock_is_on_the_object_with_mode_and_date(s3):
    until = SystemClock().now() + dt.timedelta(days=3)
    s3.put("data/aa/x", b"pack", retention=Retention("compliance", until))
    head = s3.client.head_object(Bucket=s3.bucket, Key="r/data/aa/x")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert abs((head["ObjectLockRetainUntilDate"] - until).total_seconds()) < 2


def test_the_server_itself_refuses_deleting_a_locked_version(s3):
    s3.put("k", b"v", retention=Retention("compliance", SystemClock().now() + dt.timedelta(days=1)))
    vid = _versions(s3, "k")["Versions"][0]["VersionId"]
    with pytest.raises(Exception) as e:
        s3.client.delete_object(Bucket=s3.bucket, Key="r/k", VersionId=vid)
    assert "AccessDenied" in str(e.value)
    with pytest.raises(Locked):
        s3.delete("k", bypass_governance=True)


def test_governance_bypass_goes_to_the_server(s3):
    s3.put("g", b"v", retention=Retention("governance", SystemClock().now() + dt.timedelta(days=1)))
    with pytest.raises(Locked):
        s3.delete("g")
    s3.delete("g", bypass_governance=True)
    assert _versions(s3, "g").get("Versions") is None
    assert _versions(s3, "g").get("DeleteMarkers") is None  # versions removed, no marker left


def test_legal_hold_is_set_on_the_object(s3):
    s3.put("h", b"v")
    s3.set_legal_hold("h", True)
    assert s3.client.head_object(Bucket=s3.bucket, Key="r/h")["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(Locked):
        s3.delete("h")
    s3.set_legal_hold("h", False)
    s3.delete("h")
    with pytest.raises(NotFound):
        s3.stat("h")


def test_a_short_lock_really_expires(s3):
    s3.put("short", b"v", retention=Retention("compliance", SystemClock().now() + dt.timedelta(seconds=2)))
    with pytest.raises(Locked):
        s3.delete("short")
    time.sleep(3.1)
    s3.delete("short")


def test_a_bucket_without_object_lock_is_explained(s3_server):
    s = S3Storage(s3_server.new_bucket(object_lock=False), "", endpoint=s3_server.endpoint)
    with pytest.raises(Unsupported) as e:
        s.check_object_lock()
    assert "object-lock" in str(e.value).lower()


def test_an_unreachable_server_is_a_storage_error(tmp_path):
    import boto3
    from botocore.config import Config

    from amber.errors import StorageError

    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    s = S3Storage("b", "", client=client)
    with pytest.raises(StorageError):
        s.get("x")


# -- servers that ignore If-None-Match: the probe and first-writer-wins --------------------------


def test_the_probe_finds_whether_the_server_enforces_if_none_match(s3_server):
    s = S3Storage(s3_server.new_bucket(), "p", endpoint=s3_server.endpoint)
    s.put("k", b"v")  # the first write probes
    ignores = s3_server.kind == "rgw"  # Ceph RGW 16.2 on a versioned bucket; moto as AWS does
    assert s.first_writer_wins() is ignores
    assert len(_versions(s, PROBE).get("Versions", [])) == (2 if ignores else 1)
    assert [i.key for i in s.list()] == ["k"], "the probe is never listed"
    # another process judges from the probe's versions alone, without writing
    other = S3Storage(s.bucket, "p", endpoint=s3_server.endpoint)
    other.client.put_object = None  # a reader that may not write
    assert other.first_writer_wins() is ignores
    assert other.get("k") == b"v"


def test_a_version_written_over_a_name_is_never_read_where_the_first_writer_wins(s3_server):
    s = S3Storage(s3_server.new_bucket(), "p", endpoint=s3_server.endpoint)
    s.put("log/entries/000000000000", b"first")
    s.client.put_object(Bucket=s.bucket, Key="p/log/entries/000000000000", Body=b"second, longer")
    fresh = S3Storage(s.bucket, "p", endpoint=s3_server.endpoint)  # nothing remembered
    if s3_server.kind == "moto":  # enforced: a PUT without the header is what §8 of S3.md reports
        assert fresh.get("log/entries/000000000000") == b"second, longer"
        return
    assert fresh.get("log/entries/000000000000") == b"first"
    assert fresh.stat("log/entries/000000000000").size == 5
    assert [(i.key, i.size) for i in fresh.list("log/")] == [("log/entries/000000000000", 5)]
    with pytest.raises(AlreadyExists):
        fresh.put("log/entries/000000000000", b"third")
    assert fresh.get("log/entries/000000000000") == b"first"
    fresh.set_legal_hold("log/entries/000000000000", True)
    (first, _second) = _versions(s, "log/entries/000000000000")["Versions"][::-1]
    held = s.client.get_object_legal_hold(
        Bucket=s.bucket, Key="p/log/entries/000000000000", VersionId=first["VersionId"]
    )
    assert held["LegalHold"]["Status"] == "ON", "the hold went to the first writer's version"
    fresh.set_legal_hold("log/entries/000000000000", False)


def test_check_notices_a_server_that_stopped_enforcing_if_none_match(s3_server):
    """A probe recorded as enforced (one version), on a server that no longer enforces."""
    bucket = s3_server.new_bucket()
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key=f"p/{PROBE}", Body=PROBE_BODY)
    s = S3Storage(bucket, "p", endpoint=s3_server.endpoint)
    assert not s.first_writer_wins()
    warnings = s.lock_posture(0, None)
    if s3_server.kind == "moto":
        assert warnings == [] and not s.first_writer_wins()
        return
    assert any("no longer refuses a second PUT with If-None-Match" in w for w in warnings), warnings
    assert s.first_writer_wins()
    assert S3Storage(bucket, "p", endpoint=s3_server.endpoint).first_writer_wins(), "recorded for the next"


def test_a_name_deleted_and_written_again_is_read_anew(s3_server):
    """A client that remembered which version of a name to read (where the first writer wins)
    looks again once that version is gone."""
    s = S3Storage(s3_server.new_bucket(), "p", endpoint=s3_server.endpoint)
    s.put("running/x", b"one")
    assert s.get("running/x") == b"one"
    other = S3Storage(s.bucket, "p", endpoint=s3_server.endpoint)
    other.delete("running/x")
    other.put("running/x", b"two, again")
    assert s.get("running/x") == b"two, again"
    assert s.stat("running/x").size == 10
