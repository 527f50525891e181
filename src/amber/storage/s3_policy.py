"""The IAM policies of docs/S3.md §6, generated: one source for `amber s3 policy` and the docs.

Three roles on one repository (`BUCKET[/PREFIX]`):

- backup: adds objects and extends retention, nothing else. The bucket itself
  refuses it a delete, a governance bypass, a legal-hold change, an
  unconditional PUT (a new version over an existing key), a PUT to the
  repository's key files, config, settings and revocations, and a retention
  longer than a ceiling (a planted object locked for a century);
- auditor: reads objects, their versions and their protection;
- admin: everything amber does, `--bypass-governance` included.

Condition keys (AWS Service Authorization Reference, "Actions, resources, and
condition keys for Amazon S3"): `s3:if-none-match` (S3 User Guide, "Enforce
conditional writes"), `s3:object-lock-remaining-retention-days` (S3 User
Guide, "Managing Object Lock": limiting retention periods with a policy).
"""

from __future__ import annotations

from ..errors import UsageError

S3_ROLES = ("backup", "auditor", "admin")
MAX_RETENTION_DAYS = 36500  # the default ceiling: 100 years, longer than any lock amber is asked for

# Objects only the admin writes: a planted key file, config, setting or revocation is refused
# by the bucket instead of being reported afterwards by amber.
ADMIN_WRITTEN = ("keys/*", "config", "settings/*", "revoked/*")

_BUCKET_READS = [
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:GetBucketVersioning",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketPolicy",
]
_OBJECT_READS = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention", "s3:GetObjectLegalHold"]
_BUCKET_CHANGES = [
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
]


def split_location(location: str) -> tuple[str, str]:
    """(bucket, prefix without slashes) of `BUCKET[/PREFIX]`, also given as `s3:BUCKET/PREFIX`."""
    rest = location.removeprefix("s3:").lstrip("/")
    bucket, _, prefix = rest.partition("/")
    if not bucket or any(c in bucket for c in "*?\"' "):
        raise UsageError(f"give the repository's bucket as BUCKET or BUCKET/PREFIX, not {location!r}")
    return bucket, prefix.strip("/")


def iam_policy(role: str, location: str, max_retention_days: int = MAX_RETENTION_DAYS) -> dict:
    """The IAM identity policy for `role` on the repository at `location` (BUCKET[/PREFIX])."""
    if role not in S3_ROLES:
        raise UsageError(f"the role must be one of {', '.join(S3_ROLES)}, not {role!r}")
    if not isinstance(max_retention_days, int) or max_retention_days < 1:
        raise UsageError("the retention ceiling must be a whole number of days, at least 1")
    bucket, prefix = split_location(location)
    arn = f"arn:aws:s3:::{bucket}"
    objects = f"{arn}/{prefix}/" if prefix else f"{arn}/"
    statements = {"backup": _backup, "auditor": _auditor, "admin": _admin}[role](arn, objects, max_retention_days)
    return {"Version": "2012-10-17", "Statement": statements}


def _inspect(arn: str) -> dict:
    """Every role lists the bucket (versions too) and reads how it is configured."""
    return {"Sid": "ListAndInspectTheBucket", "Effect": "Allow", "Action": list(_BUCKET_READS), "Resource": arn}


def _backup(arn: str, objects: str, ceiling: int) -> list[dict]:
    return [
        _inspect(arn),
        {
            "Sid": "ReadAndExtend",
            "Effect": "Allow",
            "Action": [*_OBJECT_READS, "s3:PutObjectRetention"],
            "Resource": objects + "*",
        },
        {
            "Sid": "AddOnlyNewKeys",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": objects + "*",
            "Condition": {"Null": {"s3:if-none-match": "false"}},
        },
        {
            "Sid": "NeverWriteOverAKey",
            "Effect": "Deny",
            "Action": "s3:PutObject",
            "Resource": objects + "*",
            "Condition": {"Null": {"s3:if-none-match": "true"}},
        },
        {
            "Sid": "NeverWriteKeysConfigSettingsOrRevocations",
            "Effect": "Deny",
            "Action": "s3:PutObject",
            "Resource": [objects + name for name in ADMIN_WRITTEN],
        },
        {
            "Sid": "NoRetentionBeyondTheCeiling",
            "Effect": "Deny",
            "Action": ["s3:PutObject", "s3:PutObjectRetention"],
            "Resource": objects + "*",
            "Condition": {"NumericGreaterThan": {"s3:object-lock-remaining-retention-days": str(ceiling)}},
        },
        {
            "Sid": "NeverDeleteShortenOrRelease",
            "Effect": "Deny",
            "Action": [
                "s3:DeleteObject",
                "s3:DeleteObjectVersion",
                "s3:BypassGovernanceRetention",
                "s3:PutObjectLegalHold",
                *_BUCKET_CHANGES,
            ],
            "Resource": [arn, objects + "*"],
        },
    ]


def _auditor(arn: str, objects: str, ceiling: int) -> list[dict]:
    return [
        _inspect(arn),
        {
            "Sid": "ReadObjectsTheirVersionsAndProtection",
            "Effect": "Allow",
            "Action": list(_OBJECT_READS),
            "Resource": objects + "*",
        },
    ]


def _admin(arn: str, objects: str, ceiling: int) -> list[dict]:
    return [
        _inspect(arn),
        {
            "Sid": "EverythingAmberDoesToObjects",
            "Effect": "Allow",
            "Action": [
                "s3:PutObject",
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:PutObjectRetention",
                "s3:GetObjectRetention",
                "s3:PutObjectLegalHold",
                "s3:GetObjectLegalHold",
                "s3:DeleteObjectVersion",
                "s3:BypassGovernanceRetention",
            ],
            "Resource": objects + "*",
        },
    ]
