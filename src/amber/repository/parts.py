"""The parts of one open repository, wired together, and its index read on demand.

`RepositoryParts` is the base of every other module of this package: each adds
one responsibility's methods to the `Repository` facade and works through the
parts built here — storage, the record layer, the blob store, trees,
snapshots, lock events, key files and the audit log — and through what opening
found wrong with keys, config and settings, kept here for `check` to report.
The index (read with the prune and damage records that qualify it) is loaded on
first need, not at open: listing snapshots needs none of it.
"""

from __future__ import annotations

import socket

from ..audit.log import AuditLog
from ..clock import Clock, SystemClock, to_iso
from ..crypto.aead import Sealer
from ..crypto.keys import MasterKeys
from ..repo import client_state, damage, reindex
from ..repo import records as rec
from ..repo import settings as settingsrec
from ..repo.blobs import BlobStore
from ..repo.events import EventStore
from ..repo.keys import KeyRing
from ..repo.snapshots import ContentKeys, SnapshotStore
from ..repo.trees import Trees
from ..retention import prune
from ..retention.state import Protection
from ..storage import Storage

PACK_SIZE = 16 << 20  # the blob store's pack target where a config names none


class RepositoryParts:
    """What one open repository owns; `Repository` (this package) adds the operations."""

    def __init__(
        self, storage: Storage, keys: MasterKeys, config: dict, key_id: str, clock: Clock | None = None
    ) -> None:
        self.storage = storage
        self.keys = keys
        self.config = config
        self.key_id = key_id
        self.clock: Clock = clock or SystemClock()
        self.warn = lambda message: None  # where the library reports what it skips
        self.records = rec.Records(storage, Sealer(keys.data))
        self.blobs = BlobStore(storage, self.records, keys, pack_target=config.get("pack_size", PACK_SIZE))
        self.blobs.parity_percent = config.get("parity", 0)
        self.trees = Trees(self.blobs, self.load_index)
        content = None
        if keys.content_public is not None:
            content = ContentKeys(keys.content_public, self.blobs.opener)
        self.snapshot_store = SnapshotStore(self.records, lambda message: self.warn(message), content)
        # made in format 2: nothing in it may be sealed under the data key alone (a writer's forgery)
        self.snapshot_store.only_sealed = self.blobs.only_sealed = config.get("v") == 2
        self.event_store = EventStore(self.records, self.clock, lambda: self.key_id[:16])
        self.key_ring = KeyRing(self.records)
        self.audit = AuditLog(
            storage, self.records.sealer, keys.signing_key(), config["id"], self.clock, key_id, author=keys.author_key()
        )
        self.audit.warn = lambda message: self.warn(message)
        self.index_errors: list[str] = []
        self.index_superseded: list[str] = []  # unreadable index files `repair index` superseded
        self.damage = damage.Recorded()  # the damage records, read with the index
        self._index_loaded = False
        self.sealed_config = config  # as read (or the pinned one); `config` carries the settings in force
        self.key_problems: list[str] = []  # key files the password unwraps that fail, invalid or revoked
        self.config_problems: list[str] = []  # config replaced, shadowed, not matching its pin
        self.pin_problems: list[str] = []  # the pin itself cannot be read
        self.pinned_config: dict | None = None  # the config the init event pins, when it does
        self.revocation_problems: list[str] = []
        self.settings = settingsrec.from_config(config)
        self.settings_problems: list[str] = []
        self._password: str | None = None
        self._log_view: dict[str, Protection] | None = None  # replay.log_view, until the log grows

    def close(self) -> None:
        self.storage.close()

    @property
    def id(self) -> str:
        return self.config["id"]

    def refresh(self) -> None:
        """Forget what was read: another client may have changed the repository."""
        self.snapshot_store.forget()
        self.event_store.forget()
        self._log_view = None

    def cache_dir(self) -> str:
        return client_state.cache_dir(self.id)

    def load_index(self, force: bool = False) -> None:
        """Read the index (once; `force` reads it again, as another client may have changed it)."""
        if force and self._index_loaded:
            self.blobs.reset_index()
            self._index_loaded = False
        if not self._index_loaded:
            tombs, plans = prune.load_records(self.records)
            self.damage = damage.load(self.records)
            doomed = set().union(*plans.values()) if plans else set()
            errors = self.blobs.load_index(tombs, doomed, self.damage.by_blob())
            self.index_errors, self.index_superseded = reindex.split_superseded(self.storage, self.records, errors)
            self._index_loaded = True

    def record_damage(self, found_by: str) -> int:
        """Write what this client found damaged since the last record (repo/damage.py) as a
        damage record; returns how many blob copies it names. A storage that refuses the
        write is reported through `warn`: the command's own result stands."""
        for pair in [p for p in self.blobs.found_damage if p in self.damage.notes]:
            del self.blobs.found_damage[pair]  # recorded already
        found = dict(self.blobs.found_damage)
        if not found:
            return 0
        written = damage.record(
            self.records, found, found_by, to_iso(self.clock.now()), socket.gethostname(), self.warn
        )
        for pair in written:
            self.damage.notes.setdefault(pair, f"{found[pair]}; found by {found_by}")
            self.blobs.found_damage.pop(pair, None)
        return len(written)
