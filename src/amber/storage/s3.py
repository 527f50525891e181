"""S3-compatible object storage with Object Lock (AWS S3, MinIO, Ceph RGW, ...).

URL: `s3:BUCKET/PREFIX`; endpoint from AMBER_S3_ENDPOINT (or --s3-endpoint),
credentials, region and profile the standard AWS way.

Guarantees, mapped onto S3:
- put-if-absent is a conditional PUT (`If-None-Match: *`), so two clients
  never overwrite each other. Where the server ignores the header (Ceph RGW
  16.2 on versioned buckets, found by a probe: see `_probe`), the first writer
  wins instead: after its PUT a writer lists the key's versions and, unless
  the oldest is its own, takes the put as refused (`AlreadyExists`); every
  read, lock and hold then goes to that oldest version. Every PUT carries a SHA-256 checksum (S3
  requires an integrity header for uploads with Object Lock) and, when the
  object is to be locked, its retention (`ObjectLockMode`,
  `ObjectLockRetainUntilDate`) on the PUT itself;
- retention is extended with PutObjectRetention and legal holds are set with
  PutObjectLegalHold; amber checks the S3 Object Lock rules itself before
  asking (never relying on a server to refuse a shortened compliance
  period), and the bucket enforces them too;
- delete removes every version of the key (no delete markers that leave
  locked-looking data behind), with the bypass header only when asked;
- `get` reads the current version only; `versions` and `get_version` show
  what a PUT without `If-None-Match` (someone else's) hid behind it, so a
  replaced record can be reported with its original, never read in its place;
- `lock_posture` says where the bucket enforces less than the repository's
  settings (its default retention, a policy open to everyone).
Retries with exponential backoff and jitter on throttling and transient
errors come from botocore's standard retry mode.
"""

from __future__ import annotations

import base64
import datetime as _dt
import fnmatch
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass

from ..errors import AlreadyExists, AmberError, Locked, NotFound, StorageError, Unsupported, UsageError
from . import rules
from .base import COMPLIANCE, GOVERNANCE, Capabilities, ObjectInfo, Retention, Storage

# Under the prefix, but never an amber key (those never start with "."): its versions record
# whether the server refused a second PUT with `If-None-Match: *` (one version) or not (more).
PROBE = ".conditional-write-probe"
PROBE_BODY = b"amber: does this server refuse a second PUT with If-None-Match: *?\n"
# (endpoint, bucket, prefix) -> whether the server enforces If-None-Match, as far as known in
# this process; `_TENTATIVE` holds those judged from a reading only (no probe written yet).
_ENFORCED: dict[tuple, bool] = {}
_TENTATIVE: set[tuple] = set()
_JUDGING = threading.Lock()

_MODE_TO_S3 = {GOVERNANCE: "GOVERNANCE", COMPLIANCE: "COMPLIANCE"}
_MODE_FROM_S3 = {v: k for k, v in _MODE_TO_S3.items()}
DAY = 86400


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    version_id: str
    size: int
    modified: _dt.datetime | None


class S3Storage(Storage):
    capabilities = Capabilities(object_lock=True, legal_hold=True, conditional_put=True)

    # first-writer-wins: how long a PUT that found itself alone waits for a rival PUT still in
    # flight to show in the listing before it is called won (one wait per put, only on servers
    # that ignore If-None-Match)
    settle_s = float(os.environ.get("AMBER_S3_SETTLE", "0.25"))

    def __init__(self, bucket: str, prefix: str = "", *, endpoint: str | None = None, client=None, clock=None) -> None:
        if not bucket:
            raise UsageError("s3: needs a bucket: s3:BUCKET/PREFIX")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        if clock is not None:
            self.clock = clock
        self.endpoint = endpoint or os.environ.get("AMBER_S3_ENDPOINT") or None
        self.client = client or _client(self.endpoint)
        self._conditional = True
        self._winners: dict[str, str] = {}  # key -> version id of its first writer (first-writer-wins)

    def describe(self) -> str:
        return f"s3:{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return self.prefix + rules.check_key(key)

    # -- objects ---------------------------------------------------------------------

    def put(self, key, data, *, retention=None):
        k = self._key(key)
        body = bytes(data)
        args = {
            "Bucket": self.bucket,
            "Key": k,
            "Body": body,
            "ChecksumSHA256": base64.b64encode(hashlib.sha256(body).digest()).decode(),
            "ContentMD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
        }
        if retention is not None:
            args["ObjectLockMode"] = _MODE_TO_S3[retention.mode]
            args["ObjectLockRetainUntilDate"] = retention.until
        fww = self.first_writer_wins(writing=True)
        if fww and retention is not None and self.versions(key):
            raise AlreadyExists(key)  # a losing version would keep its lock: look before writing
        if self._conditional:
            args["IfNoneMatch"] = "*"
        elif not fww:
            try:  # fallback for unversioned servers without conditional writes: racy, but never silent
                self.stat(key)
                raise AlreadyExists(key)
            except NotFound:
                pass
        started = time.monotonic()
        try:
            resp = self.client.put_object(**args)
        except Exception as e:  # botocore raises ClientError and transport errors alike
            code = _code(e)
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                if _retried(e) and self._is_ours(k, body):
                    return  # a retry of a PUT whose response was lost: the first attempt landed
                raise AlreadyExists(key) from None
            if code in ("NotImplemented", "501") and self._conditional:
                self._conditional = False
                return self.put(key, data, retention=retention)
            if code in ("InvalidRequest", "InvalidArgument") and retention is not None:
                raise Unsupported(
                    f"{self.describe()}: the bucket refused an Object Lock retention "
                    f"({_message(e)}); enable versioning and Object Lock (docs/S3.md)"
                ) from None
            raise _error(e, key) from None
        if fww:
            self._settle(key, body, resp, discard=retention is None, took=time.monotonic() - started)

    def put_over(self, key: str, data: bytes) -> None:
        """Write a new version over `key` (no If-None-Match): only for putting back content the
        repository pins elsewhere (the config its init event pins) over bytes written behind
        amber's back. The replaced version stays stored below it."""
        body = bytes(data)
        if self.first_writer_wins(writing=True):
            # readers read the oldest version here: the replaced ones must go (a locked one stays,
            # and then this new version is never read — the error says so on the next open)
            for v in self.versions(key):
                try:
                    self.client.delete_object(Bucket=self.bucket, Key=self._key(key), VersionId=v.version_id)
                except Exception:  # botocore raises ClientError and transport errors alike
                    continue
            self._winners.pop(key, None)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=body,
                ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
                ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),
            )
        except Exception as e:  # botocore raises ClientError and transport errors alike
            raise _error(e, key) from None

    def _settle(self, key: str, body: bytes, resp: dict, discard: bool, took: float = 0.0) -> None:
        """First-writer-wins, on a server that let this PUT through whatever was stored: the
        oldest version of `key` is the object; if it is not this PUT's the put lost
        (`AlreadyExists`), unless the PUT was retried and the oldest holds these very bytes (the
        first attempt landed, its response was lost). A losing version is deleted where the
        bucket allows (`discard`: it carries no lock of ours); where it stays, it stays unread."""
        mine = resp.get("VersionId")
        versions = self.versions(key)
        if mine is not None and (not versions or versions[0].version_id == mine):
            # first so far: RGW completes its bucket index entries after the PUT has returned, and
            # a rival PUT that started earlier but lasts longer is listed before this one; look
            # again once such a PUT has had time to land (twice this one's time, at least
            # `settle_s`) before calling the put won
            time.sleep(max(self.settle_s, 2 * took))
            versions = self.versions(key)
        if mine is None or not versions or versions[0].version_id == mine:
            if versions:
                self._winners[key] = versions[0].version_id
            return  # an unversioned bucket keeps one object per key: nothing to decide
        winner = versions[0].version_id
        self._winners[key] = winner
        if _retried(resp) and self._is_ours(self._key(key), body, winner):
            return
        if discard:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self._key(key), VersionId=mine)
            except Exception:  # no right to delete, or a bucket default lock: it stays, unread
                pass
        raise AlreadyExists(key)

    def _is_ours(self, k: str, body: bytes, version_id: str | None = None) -> bool:
        """Whether the object at `k` (that version of it) holds exactly `body` (sealed objects
        never repeat by chance)."""
        extra = {"VersionId": version_id} if version_id else {}
        try:
            h = self.client.head_object(Bucket=self.bucket, Key=k, ChecksumMode="ENABLED", **extra)
        except Exception:
            return False
        sha = h.get("ChecksumSHA256")
        if sha:  # sent with every PUT; unlike the ETag, not changed by server-side encryption
            return sha == base64.b64encode(hashlib.sha256(body).digest()).decode()
        return h.get("ETag", "").strip('"') == hashlib.md5(body).hexdigest()

    def get(self, key, offset=0, length=None):
        self._key(key)  # validates before any request
        extra = {}
        if length is not None:
            if length == 0:
                self.stat(key)
                return b""
            extra["Range"] = f"bytes={offset}-{offset + length - 1}"
        elif offset:
            extra["Range"] = f"bytes={offset}-"
        try:
            resp = self._on_object(key, self.client.get_object, **extra)
            return resp["Body"].read()
        except Exception as e:
            if _code(e) in ("InvalidRange", "416"):
                return b""
            raise _error(e, key) from None

    def _on_object(self, key: str, call, **kw):
        """`call` on the object `key`: its current version, or, where the first writer wins, its
        oldest (found once, then remembered; looked up again if it has gone since)."""
        args = {"Bucket": self.bucket, "Key": self._key(key), **kw}
        if not self.first_writer_wins():
            return call(**args)
        remembered = self._winners.get(key)
        if remembered is not None:
            try:
                return call(**args, VersionId=remembered)
            except Exception as e:
                self._winners.pop(key, None)
                if _code(e) not in ("NoSuchVersion", "NoSuchKey", "404", "400"):
                    raise
        return call(**args, VersionId=self._winner(key))

    def _winner(self, key: str) -> str:
        """The version id of the first writer of `key` (NotFound if it has no version)."""
        versions = self.versions(key)
        if not versions:
            raise NotFound(key)
        self._winners[key] = versions[0].version_id
        return versions[0].version_id

    def stat(self, key):
        self._key(key)
        try:
            h = self._on_object(key, self.client.head_object)
        except NotFound:
            raise
        except Exception as e:
            raise _error(e, key) from None
        retention = None
        mode = h.get("ObjectLockMode")
        until = h.get("ObjectLockRetainUntilDate")
        if mode in _MODE_FROM_S3 and until is not None:
            retention = Retention(_MODE_FROM_S3[mode], _aware(until))
        hold = h.get("ObjectLockLegalHoldStatus") == "ON"
        return ObjectInfo(key, int(h.get("ContentLength", 0)), retention, hold, _aware(h.get("LastModified")))

    def list(self, prefix=""):
        rules.check_prefix(prefix)
        if self.first_writer_wins():
            yield from self._list_first_writers(prefix)
            return
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        try:
            for page in pages:
                for o in page.get("Contents", []):
                    key = o["Key"][len(self.prefix) :]
                    if key != PROBE:
                        yield ObjectInfo(key, int(o["Size"]), modified=_aware(o.get("LastModified")))
        except Exception as e:
            raise _error(e, prefix or "/") from None

    def _list_first_writers(self, prefix: str):
        """The listing where the first writer wins: every key with a version, as its oldest
        version is (S3 lists a key's versions newest first, possibly across pages)."""
        oldest: dict[str, dict] = {}
        pages = self.client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        try:
            for page in pages:
                for v in page.get("Versions", []):
                    oldest[v["Key"][len(self.prefix) :]] = v
        except Exception as e:
            raise _error(e, prefix or "/") from None
        for key in sorted(oldest):
            if key == PROBE:
                continue
            v = oldest[key]
            self._winners[key] = str(v["VersionId"])
            yield ObjectInfo(key, int(v["Size"]), modified=_aware(v.get("LastModified")))

    def delete(self, key, *, bypass_governance=False):
        info = self.stat(key)
        rules.check_delete(info, self.clock.now(), bypass_governance)
        k = self._key(key)
        self._winners.pop(key, None)
        try:
            versions = self._versions(k)
            for vid in versions or [None]:
                args = {"Bucket": self.bucket, "Key": k}
                if vid is not None:
                    args["VersionId"] = vid
                if bypass_governance:
                    args["BypassGovernanceRetention"] = True
                self.client.delete_object(**args)
        except Exception as e:
            err = _error(e, key)
            if isinstance(err, StorageError) and _code(e) in ("AccessDenied", "403") and _protected(info):
                # the bucket judges retention by its own clock: this one is still locked there
                raise Locked(
                    f"{key}: the bucket refused the deletion: its lock or hold is still active "
                    f"by the server's clock ({_message(e)})"
                ) from None
            raise err from None

    # -- whether the server enforces If-None-Match ---------------------------------------

    def first_writer_wins(self, writing: bool = False) -> bool:
        """Whether puts and reads here go by first-writer-wins: the server lets a second PUT
        with `If-None-Match: *` through. Judged once per process and repository from the probe
        object's versions (more than one: it does); a writer with no probe to go by writes one."""
        where = (self.endpoint, self.bucket, self.prefix)
        if where in _ENFORCED and not (writing and where in _TENTATIVE):
            return not _ENFORCED[where]
        with _JUDGING:  # threads of one process wait for one judgement
            if where not in _ENFORCED:
                count = self._probe_versions()
                _ENFORCED[where] = count < 2
                if count == 0:
                    _TENTATIVE.add(where)
            if writing and where in _TENTATIVE:
                enforced = self._probe()
                _TENTATIVE.discard(where)
                if enforced is not None and enforced != _ENFORCED[where]:
                    _ENFORCED[where] = enforced
                    self._winners.clear()
            return not _ENFORCED[where]

    def _probe_versions(self) -> int:
        """How many versions the probe object has (0: none, or they cannot be listed)."""
        try:
            return len(self.versions(PROBE))
        except AmberError:
            return 0

    def _probe(self) -> bool | None:
        """Whether the server refuses a PUT with `If-None-Match: *` to an existing key: the same
        bytes are PUT to the probe key (twice when the first PUT created it). Every PUT the
        server lets through leaves a version, so the answer stays recorded in the bucket (a few
        bytes, locked only by a bucket default). None when this client may not write there."""
        body = PROBE_BODY
        args = {
            "Bucket": self.bucket,
            "Key": self.prefix + PROBE,
            "Body": body,
            "IfNoneMatch": "*",
            "ChecksumSHA256": base64.b64encode(hashlib.sha256(body).digest()).decode(),
            "ContentMD5": base64.b64encode(hashlib.md5(body).digest()).decode(),
        }
        for _ in range(2):
            try:
                self.client.put_object(**args)
            except Exception as e:
                code = _code(e)
                if code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                    return True
                if code in ("NotImplemented", "501"):
                    self._conditional = False
                    return False
                return None
        return len(self.versions(PROBE)) < 2  # two PUTs that both passed on an unversioned bucket: racy

    def recheck_conditional_writes(self) -> list[str]:
        """Probe again (for `check`): a warning if the server has stopped enforcing
        `If-None-Match` since this repository judged it did; from now on the first writer wins."""
        where = (self.endpoint, self.bucket, self.prefix)
        was = not self.first_writer_wins()
        enforced = self._probe()
        _TENTATIVE.discard(where)
        if enforced is None or enforced or not was:
            return []
        _ENFORCED[where] = False
        self._winners.clear()
        return [
            f"bucket {self.bucket}: the server no longer refuses a second PUT with If-None-Match: * "
            "(it did when this repository was last probed): amber now decides concurrent writes by "
            "the first stored version (docs/S3.md §4); writes made meanwhile by concurrent clients "
            "may have lost events, which `audit verify` reports"
        ]

    def versions(self, key: str) -> list[ObjectVersion]:
        """Every stored version of `key` (not its delete markers), oldest first.

        A key amber wrote has one; more mean that someone wrote over it without
        `If-None-Match` (a new version on a versioned bucket). Read-only: it never
        changes what `get` returns."""
        k = self.prefix + PROBE if key == PROBE else self._key(key)
        out: list[ObjectVersion] = []
        try:
            pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=k)
            for page in pages:
                for v in page.get("Versions", []):
                    if v["Key"] == k:
                        out.append(ObjectVersion(str(v["VersionId"]), int(v["Size"]), _aware(v.get("LastModified"))))
        except Exception as e:
            raise _error(e, key) from None
        return out[::-1]  # S3 lists the versions of a key newest first

    def get_version(self, key: str, version_id: str) -> bytes:
        """The bytes of one version of `key`, the current one or an older one."""
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._key(key), VersionId=version_id)
            return resp["Body"].read()
        except Exception as e:
            raise _error(e, f"{key} (version {version_id})") from None

    def _versions(self, k: str) -> list[str]:
        out = []
        pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=k)
        for page in pages:
            for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if v["Key"] == k and v.get("VersionId") not in (None, "null"):
                    out.append(v["VersionId"])
        return out

    # -- Object Lock -------------------------------------------------------------------

    def set_retention(self, key, retention, *, bypass_governance=False):
        info = self.stat(key)
        rules.check_retention_change(key, info.retention, retention, self.clock.now(), bypass_governance)
        args = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "Retention": {"Mode": _MODE_TO_S3[retention.mode], "RetainUntilDate": retention.until},
        }
        if bypass_governance:
            args["BypassGovernanceRetention"] = True
        if self.first_writer_wins():
            args["VersionId"] = self._winners.get(key) or self._winner(key)
        try:
            self.client.put_object_retention(**args)
        except Exception as e:
            raise _error(e, key) from None

    def set_legal_hold(self, key, on):
        self.stat(key)
        extra = {"VersionId": self._winners.get(key) or self._winner(key)} if self.first_writer_wins() else {}
        try:
            self.client.put_object_legal_hold(
                Bucket=self.bucket, Key=self._key(key), LegalHold={"Status": "ON" if on else "OFF"}, **extra
            )
        except Exception as e:
            if _code(e) in ("InvalidRequest", "InvalidArgument", "ObjectLockConfigurationNotFoundError"):
                raise Unsupported(
                    f"{self.describe()}: the bucket cannot hold objects ({_message(e)}); "
                    "legal holds need a bucket with Object Lock (docs/S3.md)"
                ) from None
            raise _error(e, key) from None

    def check_object_lock(self) -> None:
        """Raise with instructions unless the bucket is versioned with Object Lock enabled."""
        try:
            versioning = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        except Exception as e:
            raise _error(e, self.bucket) from None
        enabled = None
        try:
            conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
            enabled = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        except Exception as e:
            if _code(e) not in ("ObjectLockConfigurationNotFoundError", "NotImplemented", "404"):
                raise _error(e, self.bucket) from None
        if versioning != "Enabled" or enabled != "Enabled":
            raise Unsupported(
                f"bucket {self.bucket} has versioning {versioning or 'off'} and Object Lock "
                f"{enabled or 'off'}: retention locks need both. Create the bucket with Object Lock "
                f"(aws s3api create-bucket --bucket {self.bucket} --object-lock-enabled-for-bucket), "
                "which also turns versioning on; see docs/S3.md"
            )

    # -- how much the bucket itself enforces ------------------------------------------

    def lock_posture(self, seconds: float, mode: str | None) -> list[str]:
        """Warnings where the bucket enforces less than the repository's settings promise.

        `seconds` and `mode`: the retention the repository gives every new snapshot (its
        default or minimum retention; 0 for none) and the mode it asks for. Only what a
        client can read for certain is judged: the bucket's default retention, and a
        bucket policy that lets anyone at all delete, bypass governance or release holds.
        A policy this client may not read says nothing."""
        warnings = self._default_retention_posture(seconds, mode) if seconds > 0 else []
        return warnings + self._policy_posture() + self.recheck_conditional_writes()

    def _default_retention_posture(self, seconds: float, mode: str | None) -> list[str]:
        wanted = f"{_days(seconds)} in {mode or GOVERNANCE} mode"
        fix = "set the bucket's default retention to at least that (docs/S3.md §1)"
        try:
            conf = self.client.get_object_lock_configuration(Bucket=self.bucket).get("ObjectLockConfiguration", {})
        except Exception as e:
            if _code(e) in ("ObjectLockConfigurationNotFoundError", "NotImplemented", "404"):
                return [
                    f"bucket {self.bucket} has no Object Lock, but the repository locks every snapshot for {wanted}"
                ]
            return [f"bucket {self.bucket}: its Object Lock configuration could not be read ({_message(e)})"]
        rule = (conf.get("Rule") or {}).get("DefaultRetention") or {}
        if not rule:
            return [
                f"bucket {self.bucket} has no default retention: an object written without amber's lock "
                f"(by a client that skips it) stays unlocked, but the repository locks every snapshot for "
                f"{wanted}; {fix}"
            ]
        days = int(rule.get("Days") or 0) or 365 * int(rule.get("Years") or 0)
        warnings = []
        if days * DAY < seconds:
            warnings.append(
                f"bucket {self.bucket} retains new objects for {days} day(s) by default, shorter than the "
                f"repository's {wanted}; {fix}"
            )
        if mode == COMPLIANCE and rule.get("Mode") != "COMPLIANCE":
            warnings.append(
                f"bucket {self.bucket}'s default retention is {str(rule.get('Mode')).lower()}, but the repository "
                "asks for compliance: whoever holds s3:BypassGovernanceRetention can remove what the bucket locks"
            )
        return warnings

    def _policy_posture(self) -> list[str]:
        try:
            text = self.client.get_bucket_policy(Bucket=self.bucket)["Policy"]
        except Exception as e:
            if _code(e) in ("NoSuchBucketPolicy", "AccessDenied", "403", "404", "NotImplemented", "501"):
                return []
            return [f"bucket {self.bucket}: its bucket policy could not be read ({_message(e)})"]
        try:
            statements = json.loads(text).get("Statement", [])
        except (ValueError, AttributeError):
            return [f"bucket {self.bucket}: its bucket policy is not a JSON policy document"]
        sample = f"arn:aws:s3:::{self.bucket}/{self.prefix}snapshots/x"
        warnings = []
        for i, st in enumerate(statements if isinstance(statements, list) else [statements]):
            granted = _public_grants(st, sample)
            if granted:
                warnings.append(
                    f"bucket {self.bucket}: its policy statement {st.get('Sid') or i + 1} lets anyone "
                    f"{', '.join(granted)} without a condition: remove it (docs/S3.md §6)"
                )
        return warnings


# What no policy should let everyone do to a repository's objects.
_DANGEROUS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectLegalHold",
    "s3:PutBucketPolicy",
    "s3:PutLifecycleConfiguration",
)


def _public_grants(statement, resource: str) -> list[str]:
    """The dangerous actions an unconditional Allow to every principal grants on `resource`."""
    if not isinstance(statement, dict) or statement.get("Effect") != "Allow" or statement.get("Condition"):
        return []
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        principal = principal.get("AWS")
    if not (principal == "*" or (isinstance(principal, list) and "*" in principal)):
        return []
    resources = _strings(statement.get("Resource"))
    bucket_arn = resource.split("/", 1)[0]
    if not any(fnmatch.fnmatchcase(r, p) for p in resources for r in (resource, bucket_arn)):
        return []
    actions = [a.lower() for a in _strings(statement.get("Action"))]
    return [d for d in _DANGEROUS if any(fnmatch.fnmatchcase(d.lower(), a) for a in actions)]


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _days(seconds: float) -> str:
    days = seconds / DAY
    return f"{days:g} day(s)" if days >= 1 else f"{seconds:g} second(s)"


def _client(endpoint):
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise Unsupported("s3: repositories need boto3 (pip install boto3)") from None
    cfg = Config(
        retries={"max_attempts": 6, "mode": "standard"},
        max_pool_connections=32,
        connect_timeout=10,
        read_timeout=60,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=cfg)


def _aware(t):
    if t is None or not isinstance(t, _dt.datetime):
        return None
    return (t if t.tzinfo else t.replace(tzinfo=_dt.UTC)).astimezone(_dt.UTC)


def _code(e) -> str:
    resp = getattr(e, "response", None)
    if isinstance(resp, dict):
        err = resp.get("Error", {})
        return str(err.get("Code") or resp.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return ""


def _retried(e) -> bool:
    """Whether botocore sent the request more than once (`e`: its error, or its response)."""
    resp = e if isinstance(e, dict) else getattr(e, "response", None)
    return isinstance(resp, dict) and resp.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0


def _message(e) -> str:
    resp = getattr(e, "response", None)
    if isinstance(resp, dict):
        return str(resp.get("Error", {}).get("Message") or _code(e))
    return str(e)


def _clock_skew(e) -> str | None:
    """How far this machine's clock is from the server's, by the `Date` of its refusal, when more
    than S3's 15 minutes ("3 hours ahead of"); None otherwise or when the server sent no date."""
    import email.utils
    import time

    resp = getattr(e, "response", None)
    headers = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}) if isinstance(resp, dict) else {}
    try:
        server = email.utils.parsedate_to_datetime(headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None
    ahead = time.time() - server
    if abs(ahead) <= 15 * 60:
        return None
    span = abs(ahead)
    text = f"{span / DAY:.1f} days" if span >= DAY else f"{span / 3600:.1f} hours"
    return f"{text} {'ahead of' if ahead > 0 else 'behind'}"


def _protected(info: ObjectInfo) -> bool:
    """Whether an object carries a retention or a legal hold at all (whatever the local clock says)."""
    return info.legal_hold or info.retention is not None


def _error(e, key: str):
    if isinstance(e, AmberError):
        return e  # already amber's own (a NotFound found while looking for the first writer)
    code = _code(e)
    refused = code in ("AccessDenied", "403", "Forbidden") and "lock" not in _message(e).lower()
    skew = _clock_skew(e) if refused or code == "RequestTimeTooSkewed" else None
    if skew is not None:
        return StorageError(
            f"{key}: the S3 server refused the request: this machine's clock is {skew} "
            "the server's, and S3 accepts a signed request only within 15 minutes of its own time"
        )
    if code in ("NoSuchKey", "404", "NotFound"):
        return NotFound(key)
    if code == "NoSuchBucket":
        return NotFound(f"bucket does not exist ({key})")
    if code in ("AccessDenied", "403") and "lock" in _message(e).lower():
        return Locked(f"{key}: the bucket refused: {_message(e)}")
    if code in ("AccessDenied", "403"):
        return StorageError(f"{key}: access denied by the S3 server ({_message(e)})")
    if code:
        return StorageError(f"{key}: S3 error {code}: {_message(e)}")
    return StorageError(f"{key}: cannot reach the S3 server ({e})")
