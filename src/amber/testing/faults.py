"""Storage wrappers that misbehave on purpose, for testing what sits above storage."""
from __future__ import annotations

import threading

from ..errors import Locked, StorageError
from ..storage.base import StorageWrapper


class InjectedFault(StorageError):
    """The failure a `FailingStorage` was told to produce."""


class FailingStorage(StorageWrapper):
    """Lets `fail_after` puts through, then fails every put (a crash or a lost connection).

    `heal()` lets puts through again, as when a transient outage ends.
    """

    def __init__(self, inner, fail_after: int) -> None:
        super().__init__(inner)
        self.fail_after = fail_after
        self.puts = 0
        self.failed_keys: list[str] = []
        self.stored_keys: list[str] = []
        self._healed = False
        self._mu = threading.Lock()

    def heal(self) -> None:
        self._healed = True

    def put(self, key, data, *, retention=None):
        with self._mu:
            fail = not self._healed and self.puts >= self.fail_after
            self.puts += 1
            if fail:
                self.failed_keys.append(key)
        if fail:
            raise InjectedFault(f"injected failure writing {key}")
        self.inner.put(key, data, retention=retention)
        with self._mu:
            self.stored_keys.append(key)


class AppendOnlyStorage(StorageWrapper):
    """Credentials that can only add: deleting and releasing legal holds are refused.

    Retention changes pass through; the storage itself refuses shortening.
    Every refused call is recorded in `refused`.
    """

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.refused: list[str] = []

    def delete(self, key, *, bypass_governance=False):
        self.refused.append(f"delete {key}")
        raise Locked(f"{key}: append-only access cannot delete")

    def set_legal_hold(self, key, on):
        if not on:
            self.refused.append(f"release {key}")
            raise Locked(f"{key}: append-only access cannot release a legal hold")
        return self.inner.set_legal_hold(key, on)
