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
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from ..clock import Clock, SystemClock
from ..errors import NotFound, Unsupported, UsageError

GOVERNANCE = "governance"
COMPLIANCE = "compliance"
MODES = (GOVERNANCE, COMPLIANCE)


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
