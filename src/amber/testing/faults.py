"""Storage wrappers that misbehave on purpose, for testing what sits above storage."""

from __future__ import annotations

import threading

from ..errors import StorageError
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
