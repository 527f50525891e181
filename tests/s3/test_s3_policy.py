"""`amber s3 policy` and the warnings about a bucket weaker than its repository.

The policies are checked as documents: the moto server the tests run against
does not evaluate IAM policies, so no test pretends that it enforces them.
The posture warnings are checked against real bucket configurations.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .helpers import S3Amber
from cli_helpers import Amber

DOC = Path(__file__).resolve().parents[2] / "docs" / "S3.md"
DESTRUCTIVE = {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutObjectLegalHold"}


@pytest.fixture
def nobody(tmp_path) -> Amber:
    """A user with neither a repository nor a password."""
    return Amber(tmp_path / "nobody")


def policy(user: Amber, role: str, location: str = "amber-backups/web1", *args) -> dict:
    env = user.env(AMBER_PASSWORD=None, AMBER_REPOSITORY=None)
    r = user.run("s3", "policy", "--role", role, *args, location, env=env)
    assert r.stderr == "", r
    return r.json()


def actions(statement: dict) -> set[str]:
    a = statement["Action"]
    return {a} if isinstance(a, str) else set(a)


def resources(statement: dict) -> set[str]:
    r = statement["Resource"]
    return {r} if isinstance(r, str) else set(r)


def by_sid(doc: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in doc["Statement"]}


def allowed(doc: dict) -> set[str]:
    return set().union(*(actions(s) for s in doc["Statement"] if s["Effect"] == "Allow"))


def test_the_backup_role_adds_only_new_objects_outside_keys_and_config(nobody):
    doc = policy(nobody, "backup")
    st = by_sid(doc)
    objects = "arn:aws:s3:::amber-backups/web1/*"
    # writes only with If-None-Match, as AWS documents for conditional writes; denied without
    assert st["AddOnlyNewKeys"]["Condition"] == {"Null": {"s3:if-none-match": "false"}}
    assert st["NeverWriteOverAKey"]["Effect"] == "Deny"
    assert st["NeverWriteOverAKey"]["Condition"] == {"Null": {"s3:if-none-match": "true"}}
    assert resources(st["NeverWriteOverAKey"]) == {objects}
    # no key file, config, setting or revocation, whatever the header
    deny = st["NeverWriteKeysConfigSettingsOrRevocations"]
    assert deny["Effect"] == "Deny" and actions(deny) == {"s3:PutObject"} and "Condition" not in deny
    assert resources(deny) == {
        "arn:aws:s3:::amber-backups/web1/keys/*",
        "arn:aws:s3:::amber-backups/web1/config",
        "arn:aws:s3:::amber-backups/web1/settings/*",
        "arn:aws:s3:::amber-backups/web1/revoked/*",
    }
    # retention is capped at the documented ceiling
    cap = st["NoRetentionBeyondTheCeiling"]
    assert cap["Effect"] == "Deny" and actions(cap) == {"s3:PutObject", "s3:PutObjectRetention"}
    assert cap["Condition"] == {"NumericGreaterThan": {"s3:object-lock-remaining-retention-days": "36500"}}
    # never delete, bypass governance or change a legal hold, and never allowed to
    never = st["NeverDeleteShortenOrRelease"]
    assert never["Effect"] == "Deny" and actions(never) >= DESTRUCTIVE
    assert resources(never) == {"arn:aws:s3:::amber-backups", objects}
    assert not DESTRUCTIVE & allowed(doc)
    assert "s3:PutObjectRetention" in allowed(doc)  # extends retention; S3 never lets that shorten it


def test_the_retention_ceiling_is_a_flag(nobody):
    doc = policy(nobody, "backup", "amber-backups/web1", "--max-retention-days", "400")
    cap = by_sid(doc)["NoRetentionBeyondTheCeiling"]
    assert cap["Condition"] == {"NumericGreaterThan": {"s3:object-lock-remaining-retention-days": "400"}}


def test_the_auditor_only_reads_and_the_admin_may_bypass(nobody):
    auditor = policy(nobody, "auditor")
    assert all(s["Effect"] == "Allow" for s in auditor["Statement"])
    assert all(re.fullmatch(r"s3:(Get|List)\w+", a) for a in allowed(auditor)), allowed(auditor)
    admin = policy(nobody, "admin")
    assert {"s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutObjectLegalHold"} <= allowed(admin)
    assert {"s3:PutObject", "s3:ListBucketVersions"} <= allowed(admin)
    assert "s3:DeleteObject" not in allowed(admin)  # no delete markers in front of data, not even by an admin


def test_a_bucket_without_a_prefix_and_the_url_form(nobody):
    plain = policy(nobody, "backup", "amber-backups")
    assert "arn:aws:s3:::amber-backups/config" in resources(by_sid(plain)["NeverWriteKeysConfigSettingsOrRevocations"])
    assert policy(nobody, "backup", "s3:amber-backups/web1/") == policy(nobody, "backup")


@pytest.mark.parametrize(
    "args",
    [
        ("--role", "root", "amber-backups"),
        ("--role", "backup", ""),
        ("--role", "backup", "--max-retention-days", "0", "amber-backups"),
        ("amber-backups",),
    ],
)
def test_wrong_usage_exits_2(nobody, args):
    r = nobody.run("s3", "policy", *args, expect=2, env=nobody.env(AMBER_PASSWORD=None))
    assert r.out == "", r


def doc_policies() -> dict[str, dict]:
    """The JSON policy under each role's heading in docs/S3.md §6."""
    text = DOC.read_text()
    out = {}
    for role in ("backup", "auditor", "admin"):
        m = re.search(r"^### [^\n]*\(`--role " + role + r"`\)\n+```json\n(.*?)\n```", text, re.S | re.M)
        assert m, f"docs/S3.md has no policy under a heading naming --role {role}"
        out[role] = json.loads(m.group(1))
    return out


def test_the_docs_show_exactly_what_the_command_prints(nobody):
    documented = doc_policies()
    for role, doc in documented.items():
        assert doc == policy(nobody, role, "amber-backups/web1"), f"docs/S3.md §6 and `amber s3 policy --role {role}`"
    assert "amber s3 policy --role backup|auditor|admin BUCKET[/PREFIX]" in DOC.read_text()


# -- the bucket against the repository's settings ----------------------------------------------------


def bucket_with_default(server, mode: str | None = None, days: int = 0) -> str:
    bucket = server.new_bucket(object_lock=True)
    if mode:
        server.client().put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}},
            },
        )
    return bucket


def s3_user(tmp_path, server, bucket: str) -> S3Amber:
    return S3Amber(tmp_path / "amber", server, bucket)


def warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("warning: ") and "bucket" in line]


def test_init_and_check_warn_of_a_bucket_without_default_retention(tmp_path, s3_server):
    user = s3_user(tmp_path, s3_server, bucket_with_default(s3_server))
    r = user.run("init", "--default-retention", "7d", "--retention-mode", "compliance")
    (w,) = warnings(r.stderr)
    assert f"bucket {user.bucket} has no default retention" in w and "7 day(s) in compliance mode" in w, r
    r = user.run("check")
    (w,) = warnings(r.stderr)
    assert "has no default retention" in w, r
    report = user.json("check")
    assert any("has no default retention" in x for x in report["warnings"]), report


def test_a_shorter_or_governance_default_is_named(tmp_path, s3_server):
    user = s3_user(tmp_path, s3_server, bucket_with_default(s3_server, "GOVERNANCE", 1))
    r = user.run("init", "--default-retention", "30d", "--retention-mode", "compliance")
    found = warnings(r.stderr)
    assert len(found) == 2, r
    assert "retains new objects for 1 day(s) by default, shorter than the repository's 30 day(s)" in found[0]
    assert "default retention is governance, but the repository asks for compliance" in found[1]
    assert len(warnings(user.run("check").stderr)) == 2


def test_a_bucket_at_least_as_strong_draws_no_warning(tmp_path, s3_server):
    user = s3_user(tmp_path, s3_server, bucket_with_default(s3_server, "COMPLIANCE", 30))
    r = user.run("init", "--default-retention", "30d", "--retention-mode", "compliance")
    assert warnings(r.stderr) == [], r
    assert warnings(user.run("check").stderr) == []


def test_a_repository_without_default_retention_asks_nothing_of_the_bucket(tmp_path, s3_server):
    user = s3_user(tmp_path, s3_server, bucket_with_default(s3_server))
    r = user.run("init")
    assert warnings(r.stderr) == [], r
    assert user.json("check")["warnings"] == []


def test_a_bucket_policy_that_lets_anyone_delete_is_named(tmp_path, s3_server):
    user = s3_user(tmp_path, s3_server, bucket_with_default(s3_server))
    user.create()
    assert user.json("check")["warnings"] == []  # no bucket policy: nothing to say
    open_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadForAll", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
            {
                "Sid": "Careless",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["s3:Delete*", "s3:BypassGovernanceRetention"],
                "Resource": f"arn:aws:s3:::{user.bucket}/*",
            },
        ],
    }
    user.s3.put_bucket_policy(Bucket=user.bucket, Policy=json.dumps(open_policy))
    (w,) = user.json("check")["warnings"]
    assert (
        "policy statement Careless lets anyone s3:DeleteObject, s3:DeleteObjectVersion, s3:BypassGovernanceRetention"
        in w
    )
