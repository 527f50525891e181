"""The server's repositories: one local-backend folder each, with the server's rules on top.

Each repository is a `LocalStorage` over `DIR/NAME` whose lock and hold records
live in the server's state (`DIR/.amber-server/locks/NAME`), which no client can
address. The server's clock judges every lock; a retention that would end
before the server's now is refused; locked and held objects get the immutable
attribute where the system allows (immutable.py).

Uploads are written to `DIR/NAME/.incoming/` and linked into place only once
complete, fsynced and checked (`LocalStorage.put_file`): an upload that breaks
off leaves no object, and its temporary file is removed.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
from collections.abc import Iterator

from ..clock import Clock, SystemClock
from ..errors import Locked, NotFound
from ..storage import rules
from ..storage.base import ObjectInfo, Retention
from ..storage.local import LocalStorage
from .immutable import has_capability, set_immutable
from .state import ServerPaths

log = logging.getLogger("amber.server")


class RepoStore:
    """One repository as the server keeps it."""

    def __init__(self, paths: ServerPaths, name: str, clock: Clock, immutable: bool) -> None:
        self.name = name
        self.clock = clock
        self.objects = LocalStorage(paths.repo(name), clock=clock, records_root=paths.repo_locks(name))
        self.incoming = paths.incoming(name)
        self.immutable = immutable
        self.immutable_works: bool | None = None  # unknown until first tried
        shutil.rmtree(self.incoming, ignore_errors=True)  # uploads a crash broke off
        os.makedirs(self.incoming, mode=0o700, exist_ok=True)

    # -- objects -------------------------------------------------------------------

    def new_upload(self) -> tuple[int, str]:
        """(fd, path) of a new temporary file for one upload, on the repository's filesystem."""
        path = os.path.join(self.incoming, f"up-{secrets.token_hex(8)}")
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), path

    def commit(self, key: str, tmp: str, retention: Retention | None) -> ObjectInfo:
        """Store the complete upload `tmp` under `key` (put-if-absent); `tmp` is gone after."""
        try:
            rules.check_key(key)
            if retention is not None:
                self._check_future(key, retention)
        except BaseException:
            _discard(tmp)
            raise
        self.objects.put_file(key, tmp, retention=retention)
        if retention is not None:
            self._protect(key)
        return self.objects.stat(key)

    def path(self, key: str) -> str:
        return self.objects.path(key)

    def stat(self, key: str) -> ObjectInfo:
        return self.objects.stat(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.objects.list(prefix)

    def delete(self, key: str, bypass_governance: bool) -> None:
        info = self.objects.stat(key)
        rules.check_delete(info, self.clock.now(), bypass_governance)
        if self.immutable:
            set_immutable(self.path(key), False)
        try:
            self.objects.delete(key, bypass_governance=bypass_governance)
        except Locked:
            self._protect(key)  # a hold came in between: it stays immutable
            raise

    # -- locks and holds ---------------------------------------------------------------

    def set_retention(self, key: str, retention: Retention, bypass_governance: bool) -> ObjectInfo:
        info = self.objects.stat(key)
        rules.check_retention_change(key, info.retention, retention, self.clock.now(), bypass_governance)
        self._check_future(key, retention)
        self.objects.set_retention(key, retention, bypass_governance=bypass_governance)
        self._protect(key)
        return self.objects.stat(key)

    def set_legal_hold(self, key: str, on: bool) -> ObjectInfo:
        self.objects.set_legal_hold(key, on)
        if on:
            self._protect(key)
        return self.objects.stat(key)

    def immutable_state(self) -> str:
        """`on` (set on every locked object), `untried` (nothing locked here since the start),
        `unsupported` (the file system refused it) or `off` (no CAP_LINUX_IMMUTABLE)."""
        if not self.immutable:
            return "off"
        return {None: "untried", True: "on", False: "unsupported"}[self.immutable_works]

    def _check_future(self, key: str, retention: Retention) -> None:
        now = self.clock.now()
        if retention.until <= now:
            raise Locked(
                f"{key}: a retention until {retention.until.isoformat()} ends before the server's time "
                f"{now.replace(microsecond=0).isoformat()}: refused (the server judges locks by its own clock)"
            )

    def _protect(self, key: str) -> None:
        """The immutable attribute on a locked or held object, where this system can set it."""
        if not self.immutable or self.immutable_works is False:
            return
        works = set_immutable(self.path(key), True)
        if self.immutable_works is None:
            self.immutable_works = works
            if not works:
                log.warning(
                    "repository %s: the immutable attribute cannot be set here (no CAP_LINUX_IMMUTABLE, "
                    "or the file system lacks it); locks are enforced by the server alone",
                    self.name,
                )


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class Repositories:
    """The repositories under DIR, opened once each."""

    def __init__(self, paths: ServerPaths, clock: Clock | None = None, immutable: bool | None = None) -> None:
        self.paths = paths
        self.clock = clock or SystemClock()
        self.immutable = has_capability() if immutable is None else immutable
        self._open: dict[str, RepoStore] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> RepoStore:
        """The repository `name` (`NotFound` when there is no such folder)."""
        with self._lock:
            store = self._open.get(name)
            if store is None:
                if not os.path.isdir(self.paths.repo(name)):
                    raise NotFound(f"no repository {name!r} on this server")
                store = self._open[name] = RepoStore(self.paths, name, self.clock, self.immutable)
            return store

    def create(self, name: str) -> bool:
        """Make the folder of a new repository; False when it has one already (a client's
        `init` then finds out whether a repository is in it)."""
        try:
            os.mkdir(self.paths.repo(name), 0o755)
        except FileExistsError:
            return False
        return True
