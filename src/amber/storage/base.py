"""The storage interface: bytes under keys, write-once, with retention and legal hold.

Guarantees every backend gives (tested by `amber.testing.StorageContract`):

- `put` is put-if-absent and atomic: a reader sees the whole object or none,
  and an existing key is never overwritten (`AlreadyExists`), also when two
  clients race for the same key.
- After `put` returns, `get`, `stat` and `list` see the object.
- `delete` and retention changes are refused with `Locked` while a retention
  period is active or a legal hold is set. Compliance retention can only be
  extended; governance retention can be shortened or removed only with
  `bypass_governance=True`.
- Keys are `/`-separated segments of `[A-Za-z0-9._-]`; storage never gives
  them a meaning.
"""

from __future__ import annotations

import datetime as _dt
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from ..clock import Clock, SystemClock
from ..errors import Locked, NotFound, Unsupported, UsageError

GOVERNANCE = "governance"
COMPLIANCE = "compliance"
MODES = (GOVERNANCE, COMPLIANCE)

_KEY_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")


@dataclass(frozen=True, slots=True)
class Retention:
    mode: str
    until: _dt.datetime

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"retention mode must be governance or compliance, not {self.mode!r}")
        if self.until.tzinfo is None:
            raise ValueError("retention dates must be timezone-aware")
        if self.until.microsecond:  # whole seconds, as object stores keep them; never shorter
            object.__setattr__(self, "until", self.until.replace(microsecond=0) + _dt.timedelta(seconds=1))

    def active(self, now: _dt.datetime) -> bool:
        return self.until > now


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    retention: Retention | None = None
    legal_hold: bool = False
    modified: _dt.datetime | None = None  # when the object was stored, where the backend knows


@dataclass(frozen=True, slots=True)
class Capabilities:
    object_lock: bool = False
    legal_hold: bool = False
    conditional_put: bool = True  # put-if-absent is atomic against other clients


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


class Storage(ABC):
    """Write-once objects under keys. See the module docstring for the guarantees."""

    capabilities = Capabilities()
    clock: Clock = SystemClock()

    @abstractmethod
    def put(self, key: str, data: bytes, *, retention: Retention | None = None) -> None:
        """Store `data` under `key` unless the key exists (`AlreadyExists`)."""

    @abstractmethod
    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """The object's bytes, or `length` bytes from `offset` (`NotFound`)."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size, retention and hold of one object (`NotFound`)."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix` (a folder ending in `/`, or "")."""

    @abstractmethod
    def delete(self, key: str, *, bypass_governance: bool = False) -> None:
        """Remove an object; `Locked` while retention is active or a hold is set."""

    def set_retention(self, key: str, retention: Retention, *, bypass_governance: bool = False) -> None:
        raise Unsupported(f"{type(self).__name__} does not support object lock")

    def set_legal_hold(self, key: str, on: bool) -> None:
        raise Unsupported(f"{type(self).__name__} does not support legal holds")

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
            return True
        except NotFound:
            return False

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return type(self).__name__


class StorageWrapper(Storage):
    """Pass-through base for decorators: override only what changes."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.clock = inner.clock

    def put(self, key, data, *, retention=None):
        return self.inner.put(key, data, retention=retention)

    def get(self, key, offset=0, length=None):
        return self.inner.get(key, offset, length)

    def stat(self, key):
        return self.inner.stat(key)

    def list(self, prefix=""):
        return self.inner.list(prefix)

    def delete(self, key, *, bypass_governance=False):
        return self.inner.delete(key, bypass_governance=bypass_governance)

    def set_retention(self, key, retention, *, bypass_governance=False):
        return self.inner.set_retention(key, retention, bypass_governance=bypass_governance)

    def set_legal_hold(self, key, on):
        return self.inner.set_legal_hold(key, on)

    def close(self):
        return self.inner.close()

    def describe(self):
        return self.inner.describe()
