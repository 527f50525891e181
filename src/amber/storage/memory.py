"""An in-memory backend with full object-lock semantics; the model the others must match."""

from __future__ import annotations

import threading

from ..errors import AlreadyExists, NotFound
from . import rules
from .base import Capabilities, ObjectInfo, Retention, Storage


class MemoryStorage(Storage):
    capabilities = Capabilities(object_lock=True, legal_hold=True, conditional_put=True)

    def __init__(self, clock=None) -> None:
        if clock is not None:
            self.clock = clock
        self._objects: dict[str, bytes] = {}
        self._retention: dict[str, Retention] = {}
        self._holds: set[str] = set()
        self._times: dict = {}
        self._mu = threading.Lock()

    def put(self, key, data, *, retention=None):
        rules.check_key(key)
        with self._mu:
            if key in self._objects:
                raise AlreadyExists(key)
            self._objects[key] = bytes(data)
            self._times[key] = self.clock.now()
            if retention is not None:
                self._retention[key] = retention

    def get(self, key, offset=0, length=None):
        rules.check_key(key)
        with self._mu:
            data = self._objects.get(key)
        if data is None:
            raise NotFound(key)
        end = len(data) if length is None else offset + length
        return data[offset:end]

    def stat(self, key):
        rules.check_key(key)
        with self._mu:
            if key not in self._objects:
                raise NotFound(key)
            return ObjectInfo(
                key, len(self._objects[key]), self._retention.get(key), key in self._holds, self._times.get(key)
            )

    def list(self, prefix=""):
        rules.check_prefix(prefix)
        with self._mu:
            keys = sorted(k for k in self._objects if k.startswith(prefix))
        for k in keys:
            try:
                yield self.stat(k)
            except NotFound:
                continue

    def delete(self, key, *, bypass_governance=False):
        rules.check_key(key)
        with self._mu:
            if key not in self._objects:
                raise NotFound(key)
            info = ObjectInfo(key, len(self._objects[key]), self._retention.get(key), key in self._holds)
            rules.check_delete(info, self.clock.now(), bypass_governance)
            del self._objects[key]
            self._retention.pop(key, None)

    def set_retention(self, key, retention, *, bypass_governance=False):
        rules.check_key(key)
        with self._mu:
            if key not in self._objects:
                raise NotFound(key)
            rules.check_retention_change(key, self._retention.get(key), retention, self.clock.now(), bypass_governance)
            self._retention[key] = retention

    def set_legal_hold(self, key, on):
        rules.check_key(key)
        with self._mu:
            if key not in self._objects:
                raise NotFound(key)
            (self._holds.add if on else self._holds.discard)(key)

    def describe(self):
        return "memory"
