"""The rules every backend applies the same way: key syntax and S3 Object Lock's semantics.

A backend that enforces retention itself (S3) still checks here first, so a
refusal reads the same on every backend; the memory backend is these rules
and nothing else, the model the others are tested against.
"""

from __future__ import annotations

import datetime as _dt
import re

from ..errors import Locked, UsageError
from .base import COMPLIANCE, GOVERNANCE, ObjectInfo, Retention

_KEY_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")


def check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.match(key) or ".." in key.split("/"):
        raise UsageError(f"invalid storage key {key!r}")
    return key


def fold_retention(cur: Retention | None, new: Retention, bypass_governance: bool) -> Retention:
    """The retention after `new` is applied to `cur`, by S3 Object Lock's rules: compliance only
    grows and keeps its mode; governance grows (or becomes compliance, never shorter) and shrinks
    only with a governance bypass."""
    if cur is None:
        return new
    if cur.mode == COMPLIANCE:
        return Retention(COMPLIANCE, max(cur.until, new.until))
    if bypass_governance:
        return new
    return Retention(new.mode, max(cur.until, new.until))


def check_prefix(prefix: str) -> str:
    """A list prefix is "" or a valid key followed by '/'."""
    if prefix == "":
        return prefix
    if not isinstance(prefix, str) or not prefix.endswith("/"):
        raise UsageError(f"invalid list prefix {prefix!r}: a folder ending in '/'")
    check_key(prefix[:-1])
    return prefix


def check_retention_change(
    key: str, old: Retention | None, new: Retention, now: _dt.datetime, bypass_governance: bool
) -> None:
    """Raise `Locked` unless replacing `old` with `new` is allowed."""
    if old is None or not old.active(now):
        return
    if old.mode == COMPLIANCE:
        if new.mode != COMPLIANCE:
            raise Locked(f"{key}: compliance retention until {old.until.isoformat()} cannot be downgraded")
        if new.until < old.until:
            raise Locked(f"{key}: compliance retention until {old.until.isoformat()} cannot be shortened")
        return
    if new.until < old.until and not bypass_governance:
        raise Locked(
            f"{key}: governance retention until {old.until.isoformat()} can be shortened only by bypassing governance",
            remedy="bypass-governance",
        )
    if new.mode == COMPLIANCE and not bypass_governance:
        raise Locked(
            f"{key}: governance retention until {old.until.isoformat()} becomes compliance "
            "only by bypassing governance (as S3 Object Lock requires)",
            remedy="bypass-governance",
        )


def check_delete(info: ObjectInfo, now: _dt.datetime, bypass_governance: bool) -> None:
    if info.legal_hold:
        raise Locked(f"{info.key}: under legal hold")
    r = info.retention
    if r is None or not r.active(now):
        return
    if r.mode == GOVERNANCE and bypass_governance:
        return
    raise Locked(f"{info.key}: under {r.mode} retention until {r.until.isoformat()}")
