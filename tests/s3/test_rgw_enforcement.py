"""What only a real Object Lock enforcer shows: Ceph RGW refusing, to a plain boto3 client, what
its locks and holds forbid, on objects amber wrote. (moto accepts some of these requests; the
tests parametrized over both servers hold amber itself to the rules, these hold the server.)"""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from .helpers import UTC, S3Amber, retention_of
from .test_s3_locks import small_tree


@pytest.fixture
def rgw_user(tmp_path, rgw_server) -> S3Amber:
    user = S3Amber(tmp_path / "amber", rgw_server, rgw_server.new_bucket(object_lock=True))
    user.create()
    return user


def backed_up(user, tmp_path, *args: str) -> tuple[str, str]:
    """A snapshot (with `args` for its lock) and the key of its document."""
    src = tmp_path / "src"
    small_tree(src)
    sid = user.backup(src, args=args)["snapshot_id"]
    return sid, f"snapshots/{sid}"


def refused(call, **kw) -> dict:
    with pytest.raises(ClientError) as e:
        call(**kw)
    assert e.value.response["Error"]["Code"] == "AccessDenied", e.value.response
    return e.value.response


def only_version(user, key: str) -> str:
    (vid,) = user.versions(key)
    return vid


def test_compliance_cannot_be_shortened_or_downgraded_by_anyone(rgw_user, tmp_path):
    _, key = backed_up(rgw_user, tmp_path, "--retain", "2h", "--retention-mode", "compliance")
    mode, until = retention_of(rgw_user.head(key))
    assert mode == "COMPLIANCE" and until > dt.datetime.now(UTC) + dt.timedelta(minutes=110)
    s3, k = rgw_user.s3, rgw_user.key(key)
    shorter = {"Mode": "COMPLIANCE", "RetainUntilDate": until - dt.timedelta(hours=1)}
    governance = {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    for retention in (shorter, governance):
        for bypass in (False, True):
            extra = {"BypassGovernanceRetention": True} if bypass else {}
            refused(s3.put_object_retention, Bucket=rgw_user.bucket, Key=k, Retention=retention, **extra)
    assert retention_of(rgw_user.head(key)) == (mode, until)
    # amber refuses too, before asking (exit 30), and the date on the server is unchanged
    sid = key.split("/")[1]
    r = rgw_user.run("lock", sid, "--for", "1m", "--mode", "compliance", expect=None)
    assert r.rc == 30, r
    assert retention_of(rgw_user.head(key)) == (mode, until)


def test_a_locked_version_cannot_be_deleted_even_with_the_bypass_header(rgw_user, tmp_path):
    _, key = backed_up(rgw_user, tmp_path, "--retain", "2h", "--retention-mode", "compliance")
    for k in (key, rgw_user.keys("data/")[0], "config"):
        vid = only_version(rgw_user, k)
        s3k = rgw_user.key(k)
        refused(rgw_user.s3.delete_object, Bucket=rgw_user.bucket, Key=s3k, VersionId=vid)
        refused(
            rgw_user.s3.delete_object, Bucket=rgw_user.bucket, Key=s3k, VersionId=vid, BypassGovernanceRetention=True
        )
        assert rgw_user.versions(k) == [vid]
    rgw_user.run("check", "--read-data")


def test_a_legal_hold_blocks_deletion_until_released(rgw_user, tmp_path):
    sid, key = backed_up(rgw_user, tmp_path)
    rgw_user.run("hold", sid, "--reason", "litigation")
    head = rgw_user.head(key)
    assert head.get("ObjectLockLegalHoldStatus") == "ON" and head.get("ObjectLockMode") is None
    vid = only_version(rgw_user, key)
    for extra in ({}, {"BypassGovernanceRetention": True}):
        refused(rgw_user.s3.delete_object, Bucket=rgw_user.bucket, Key=rgw_user.key(key), VersionId=vid, **extra)
    assert rgw_user.versions(key) == [vid]
    rgw_user.run("release", sid)
    assert rgw_user.head(key).get("ObjectLockLegalHoldStatus") == "OFF"
    rgw_user.s3.delete_object(Bucket=rgw_user.bucket, Key=rgw_user.key(key), VersionId=vid)
    assert rgw_user.versions(key) == []


def test_governance_yields_only_to_the_bypass(rgw_user, tmp_path):
    _, key = backed_up(rgw_user, tmp_path, "--retain", "2h", "--retention-mode", "governance")
    mode, until = retention_of(rgw_user.head(key))
    assert mode == "GOVERNANCE"
    vid = only_version(rgw_user, key)
    s3, k = rgw_user.s3, rgw_user.key(key)
    refused(s3.delete_object, Bucket=rgw_user.bucket, Key=k, VersionId=vid)
    shorter = {"Mode": "GOVERNANCE", "RetainUntilDate": until - dt.timedelta(hours=1)}
    refused(s3.put_object_retention, Bucket=rgw_user.bucket, Key=k, Retention=shorter)
    assert retention_of(rgw_user.head(key)) == (mode, until)
    s3.put_object_retention(Bucket=rgw_user.bucket, Key=k, Retention=shorter, BypassGovernanceRetention=True)
    assert retention_of(rgw_user.head(key))[1] < until
    s3.delete_object(Bucket=rgw_user.bucket, Key=k, VersionId=vid, BypassGovernanceRetention=True)
    assert rgw_user.versions(key) == []


def test_the_server_ignores_if_none_match_and_amber_knows(rgw_user):
    """The fact the first-writer-wins mechanism rests on (docs/S3.md §4), measured on this server:
    on a versioned bucket a second PUT with `If-None-Match: *` is stored as a new version; the
    repository's probe object records it with two or more versions."""
    s3, bucket = rgw_user.s3, rgw_user.bucket
    k = rgw_user.key("scratch")
    s3.put_object(Bucket=bucket, Key=k, Body=b"one", IfNoneMatch="*")
    s3.put_object(Bucket=bucket, Key=k, Body=b"two", IfNoneMatch="*")
    assert len(rgw_user.versions("scratch")) == 2
    assert len(rgw_user.versions(".conditional-write-probe")) >= 2
