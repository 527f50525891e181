"""The library API: open or create a repository, then back up, browse, restore, check.

`Repository` is a facade. It owns the parts of one open repository — the
storage, the record layer, the blob store, trees, snapshots, lock events,
key files and the audit log — and hands the engine (backup/, restore/,
retention/, check, evidence, browse) only what each needs: every engine
module states that as a `typing.Protocol`, and this class satisfies them.
Every change first checks the audit log's history, then records its event
after the change is stored.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import hashlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Mapping
from typing import BinaryIO

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .. import browse, trust
from .. import copy as copying
from .. import repair as repairing
from ..audit.checkpoint import verify as verify_checkpoint
from ..audit.log import AuditLog
from ..audit.witness import fetch_server_key as witness_server_key
from ..audit.witness import parse_server_key
from ..audit.witness import target as witness_target
from ..audit.witness import tsa_chain as witness_tsa_chain
from ..backup import anomaly as anomaly_rules
from ..backup.archiver import BackupResult, BackupStats
from ..backup.dryrun import dry_run
from ..backup.run import backup
from ..backup.scan import SourceScan
from ..backup.select import Listed, Selection, listed_sources
from ..backup.select import selection as source_selection
from ..browse import entry_json
from ..check import CheckReport, check, verify_audit_log
from ..clock import Clock, SystemClock, duration_seconds, to_iso
from ..copy import CopyReport
from ..crypto import keys as keyfile
from ..crypto.aead import Sealer
from ..crypto.keys import MasterKeys
from ..errors import (
    AmberError,
    CheckpointError,
    IntegrityError,
    Locked,
    NotAllowed,
    NotFound,
    RepositoryExists,
    RepositoryNotFound,
    RestoreFailed,
    UsageError,
    WrongPassword,
)
from ..evidence import EvidenceReport, export, verify_bundle
from ..format import layout
from ..format.compression import COMP_NONE
from ..format.pack import BLOB_TREE
from ..mount import fs as mount_fs
from ..mount import fuse as mount_fuse
from ..repo import client_state, damage, reindex, selection, verified
from ..repo import records as rec
from ..repo import settings as settingsrec
from ..repo.blobs import BlobStore, require_full
from ..repo.events import EventStore
from ..repo.keys import KeyRing
from ..repo.selection import SnapshotFilter, select_snapshots
from ..repo.selection import group as group
from ..repo.selection import newest as newest
from ..repo.selection import parse_group_by as parse_group_by
from ..repo.selection import tag_list as tag_list
from ..repo.snapshots import ContentKeys, Snapshot, SnapshotStore
from ..repo.trees import Trees
from ..restore import drill as drilling
from ..restore import dump as dumping
from ..restore.restorer import RestoreStats, restore
from ..retention import clockguard, locks, preflight, prune, replay
from ..retention import forget as forgetting
from ..retention import tiers as lock_tiers
from ..retention.policy import KeepPolicy
from ..retention.state import Protection
from ..storage import Storage, open_storage
from ..storage.base import GOVERNANCE, MODES, Retention
from ..storage.s3_policy import MAX_RETENTION_DAYS as MAX_RETENTION_DAYS
from ..storage.s3_policy import S3_ROLES as S3_ROLES
from ..storage.s3_policy import iam_policy as iam_policy
from ..version import __version__

FORMAT_VERSION = 2  # what `init` makes; format 1 repositories open and work as before
CHUNK_MIN = 512 << 10
CHUNK_AVG = 512 << 10  # with pyfastcdc's cut-point skipping the mean is about 768 KiB
CHUNK_MAX = 8 << 20
PACK_SIZE = 16 << 20
DEFAULT_PARITY = 2  # percent: two 128 KiB shards of each 16 MiB pack rebuildable (FORMAT.md §8.3)
MAX_PARITY = 50


class Repository:
    """An open repository. Create with `Repository.init`, open with `Repository.open`."""

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

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    def init(
        cls,
        url: str,
        password: str,
        *,
        default_retention: dict | None = None,
        min_retention: str | None = None,
        clock: Clock | None = None,
        kdf_n: int | None = None,
        storage_options: Mapping[str, str] | None = None,
        warn: Callable[[str], None] | None = None,
        params_from: "Repository | None" = None,
        parity: int = DEFAULT_PARITY,
        lock_policy: dict | None = None,
    ) -> "Repository":
        """Create a repository. `parity`: Reed–Solomon parity per pack, in percent of its size
        (0: none; FORMAT.md §8.3). `params_from` (an open repository) gives its id key, chunker
        seed and chunker parameters, so blob ids are equal and `copy_from` moves blobs as they
        are (`init --copy-params-from`); every other key is new.
        `default_retention` ({"duration": "30d", "mode": None}) locks every new snapshot; its
        mode defaults to governance, and storage must enforce it (where the bucket enforces
        less than that, `warn` hears why). `min_retention`
        (a duration) is the shortest lock amber will set (FORMAT.md §6.1). `kdf_n`: wrap the
        first key with scrypt of that cost (cheap key files for tests), not Argon2id."""
        check_new_password(password)
        default_retention = trust.default_retention_setting(default_retention)  # before anything is created
        min_retention = trust.min_retention_setting(min_retention, default_retention)
        storage = open_storage(url, create=True, options=storage_options)
        if storage.exists(layout.CONFIG) or any(True for _ in storage.list(layout.KEYS)):
            raise RepositoryExists(f"a repository already exists at {url}")
        if default_retention is not None or min_retention is not None:
            check_lock = getattr(storage, "check_object_lock", None)
            if check_lock is not None:
                check_lock()  # an S3 bucket must be versioned with Object Lock before locks are promised
        keys = MasterKeys.generate()
        chunker = {"algorithm": "fastcdc2020", "min": CHUNK_MIN, "avg": CHUNK_AVG, "max": CHUNK_MAX, "normalization": 1}
        if params_from is not None:
            keys = dataclasses.replace(keys, ids=params_from.keys.ids, chunker_seed=params_from.keys.chunker_seed)
            chunker = dict(params_from.config["chunker"])
        clock = clock or SystemClock()
        config = {
            "v": FORMAT_VERSION,
            "content_key": _b64(keys.content_public),
            "id": uuid.uuid4().hex,
            "created": to_iso(clock.now()),
            "chunker": chunker,
            "pack_size": PACK_SIZE,
            "compression": "zstd",
            "default_retention": default_retention,
            "program": f"amber {__version__}",
        }
        if not isinstance(parity, int) or isinstance(parity, bool) or not 0 <= parity <= MAX_PARITY:
            raise UsageError(f"--parity must be a whole percentage from 0 to {MAX_PARITY}")
        if parity:
            config["parity"] = parity
        if lock_policy is not None:  # retention/tiers.py: locks that follow the retention schedule
            check_lock = getattr(storage, "check_object_lock", None)
            if check_lock is not None:
                check_lock()
            config["lock_policy"] = lock_policy
        if min_retention is not None:
            config["min_retention"] = min_retention
        key_id = KeyRing(rec.Records(storage, None)).add(keys, password, clock, kdf_n=kdf_n)
        rec.Records(storage, Sealer(keys.data)).put_at(rec.CONFIG, config, layout.CONFIG)
        repo = cls(storage, keys, config, key_id, clock)
        repo.pinned_config = config
        repo.log_event(
            "init",
            repository=config["id"],
            format=FORMAT_VERSION,
            key=key_id,
            default_retention=default_retention,
            min_retention=min_retention,
            public_key=repo.audit.vkey(),
            config_sha256=hashlib.sha256(rec.CONFIG.encode(config)).hexdigest(),
            config=config,
            admin_key=_b64(author_public(keys)),
            content_key=_b64(keys.content_public),
            **({"params_from": params_from.id} if params_from is not None else {}),
        )
        repo.apply_settings(repo.settings)
        for message in repo.lock_posture():
            (warn or repo.warn)(message)
        return repo

    @classmethod
    def open(
        cls,
        url: str,
        password: str,
        *,
        clock: Clock | None = None,
        storage_options: Mapping[str, str] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> "Repository":
        """Open with a password. Every key file the password unwraps is tried, cheapest first,
        until one opens the audit log's first entry and the config it pins, and is not revoked;
        the others (and invalid ones) are reported through `warn` and kept in `key_problems`.
        A config that does not match its pin is replaced by the pinned one for reading, named in
        `config_problems`, and every change is refused (`require_sound`). The config is checked
        against the format's limits (FORMAT.md §6) before anything uses it."""
        storage = open_storage(url, options=storage_options)
        if not storage.exists(layout.CONFIG) and not AuditLog.present(storage):  # else: pinned
            raise RepositoryNotFound(f"no repository at {url}", remedy="init")
        opener = trust.Opener(storage)
        problems: list[str] = []
        try:
            keys, key_id = KeyRing(rec.Records(storage, None)).unlock(password, warn, opener.accept, problems)
            opened = opener.opened[key_id]
        except (IntegrityError, WrongPassword) as e:
            if not opener.lenient:  # else a damaged first log entry: a key that opens the config reads
                raise e if isinstance(e, WrongPassword) else IntegrityError(f"{url}: {e}") from None
            keys, key_id, opened = opener.lenient[0]
        declared = opened.config.get("content_key")
        if declared is not None and (keys.content_public is None or _b64(keys.content_public) != declared):
            raise IntegrityError(
                f"{layout.key_file(key_id)}: its content key is not the one the repository's config names "
                "(a key file made for another repository, or edited)"
            )
        repo = cls(storage, keys, opened.config, key_id, clock)
        repo.audit.cacert = (storage_options or {}).get("cacert") or None
        if warn is not None:
            repo.warn = warn
        repo.key_problems = [p for p in problems if not p.startswith(layout.key_file(key_id) + ":")]
        repo._password = password  # `check` tries the key files this open did not reach
        repo.config_problems, repo.pin_problems = opened.problems, opened.pin_problems
        repo.pinned_config, repo.revocation_problems = opened.pinned, opened.revocation_problems
        for problem in repo.config_problems + repo.pin_problems:
            repo.warn(problem)
        settings, repo.settings_problems = settingsrec.effective(
            repo.records, opened.config, lambda: trust.logged_settings(repo)
        )
        repo.apply_settings(settings)
        return repo

    def close(self) -> None:
        self.storage.close()

    @property
    def id(self) -> str:
        return self.config["id"]

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

    def refresh(self) -> None:
        """Forget what was read: another client may have changed the repository."""
        self.snapshot_store.forget()
        self.event_store.forget()
        self._log_view = None

    def cache_dir(self) -> str:
        return client_state.cache_dir(self.id)

    # -- audit log ---------------------------------------------------------------

    def log_event(self, kind: str, snapshot: str | None = None, lock: Retention | None = None, **details) -> dict:
        """Append one event to the audit log (after the change it records is stored)."""
        self._log_view = None
        return self.audit.append(kind, snapshot, lock, **details)

    def verify_audit_log(self, external: bytes | None = None, remember: bool = True, full: bool = False):
        """The log's own proofs (from the remembered checkpoint; every object when `full`), every
        snapshot against its event, and the config against its pin."""
        rep = verify_audit_log(self, external=external, remember=remember, full=full)
        rep.errors.extend(self.config_problems + self.pin_problems)
        return rep

    def add_witness(
        self,
        name: str,
        url: str,
        server_key: str | None = None,
        s3_endpoint: str | None = None,
        tsa_cert: bytes | None = None,
    ) -> dict:
        """Record a witness of the audit log (docs/AUDIT-LOG.md §Witnesses). An `amber serve`
        witness's key is pinned now: the one given, else the one the server shows (first use);
        so is a time-stamping authority's certificate chain (`tsa_cert`: PEM), which a token it
        makes now must verify under."""
        self.require_admin("add a witness")
        self.require_sound("add a witness")
        if url.startswith("rest:"):
            server_key = server_key or witness_server_key(url, self.audit.cacert)
            parse_server_key(server_key)
        pinned = None
        if url.startswith("tsa:"):
            pinned = witness_tsa_chain(url, tsa_cert, f"amber TSA probe {self.id}\n".encode(), self.audit.cacert)
        elif tsa_cert is not None:
            raise UsageError("--tsa-cert goes with --tsa URL")
        return self.audit.add_witness(name, url, server_key=server_key, s3_endpoint=s3_endpoint, tsa_cert=pinned)

    def witness_list(self) -> list[dict]:
        return [dict(doc, name=name) for name, doc in sorted(self.audit.witness_config().items())]

    def reset_trust(self, reason: str) -> tuple[dict, list[str]]:
        """Accept this repository's log as it is now after a restore from an older copy: a
        recorded `trust-reset` event naming the witness checkpoints it abandons."""
        self.require_admin("reset the trust in the audit log")
        self.require_sound("reset the trust in the audit log")
        return self.audit.reset_trust(reason)

    def latest_checkpoint(self) -> bytes:
        """The latest signed checkpoint of the audit log, verified against this repository's key."""
        note = self.audit.latest_checkpoint()
        if note is None:
            raise IntegrityError("the audit log has no checkpoint")
        try:
            verify_checkpoint(note, self.audit.origin, self.audit.public)
        except CheckpointError as e:
            raise IntegrityError(f"the latest checkpoint does not verify: {e}") from None
        return note

    def export_evidence(self, snap: Snapshot, paths: list[str], out_path: str) -> dict:
        """Write an evidence bundle for files of a snapshot to `out_path` (whole, or not at all);
        returns its manifest."""
        self.require_read("export evidence")
        tmp = out_path + ".tmp"
        try:
            manifest = export(self, snap, list(paths), tmp)
            os.replace(tmp, out_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return manifest

    # -- snapshots -----------------------------------------------------------

    def snapshots(self, *, tags=(), hosts=(), paths=()) -> list[Snapshot]:
        """Every readable snapshot, oldest first, with the tags it was written with (fast: what
        the engine needs); with any filter, `choose` (tag events folded in) narrowed by it.
        Unreadable ones are reported by `check`, not here."""
        if tags or hosts or paths:
            return self.choose(SnapshotFilter.of(hosts, paths, tags))
        return self.snapshot_store.all()

    def choose(self, chosen: SnapshotFilter | None = None) -> list[Snapshot]:
        """The snapshots as a user sees them, oldest first: the `tag` events of the audit log
        folded into their tags, then narrowed by `chosen` (restic's --host/--path/--tag)."""
        snaps = selection.with_tags(self.snapshot_store.all(), (ev for ev, _raw in self.audit.honoured([])))
        return chosen.select(snaps) if chosen is not None else snaps

    @property
    def snapshot_errors(self) -> list[str]:
        return self.snapshot_store.errors

    def load_snapshot(self, sid: str) -> Snapshot:
        return self.snapshot_store.load(sid)

    def save_snapshot(self, doc: dict, retention: Retention | None = None) -> str:
        return self.snapshot_store.save(doc, retention)

    def find_snapshot(self, ref: str, chosen: SnapshotFilter | None = None) -> Snapshot:
        """By full id, a prefix of at least 8 hex characters, or 'latest': the newest snapshot
        passing `chosen` (as in restic, the filters narrow only 'latest')."""
        if ref != "latest" or chosen is None or chosen.empty():
            return self.snapshot_store.find(ref)
        snaps = self.choose(chosen) if chosen.tags else chosen.select(self.snapshot_store.all())
        if not snaps:
            raise NotFound(f"no snapshot matches {chosen.describe()} for 'latest'")
        return snaps[-1]

    def find_snapshots(self, refs, chosen: SnapshotFilter | None = None) -> list[Snapshot]:
        """Each snapshot named (by id, prefix or 'latest') once, in the order first named."""
        out: dict[str, Snapshot] = {}
        for ref in refs:
            s = self.find_snapshot(ref, chosen)
            out.setdefault(s.id, s)
        return list(out.values())

    def tag(self, snaps: list[Snapshot], add=(), remove=(), set_: list[str] | None = None) -> dict[str, dict]:
        """Change the tags of snapshots without rewriting them: one `tag` event in the audit log
        per snapshot whose tags change (a `set_` is written as what it adds and removes).
        Returns snapshot id -> {"add", "remove", "tags"} for the snapshots changed. A write-only
        key may add tags but remove none: a stolen backup key must not strip the tag a
        `forget --keep-tag` keeps by."""
        self.require_sound("tag snapshots")
        if any(len(t) > selection.MAX_TAG for t in [*add, *remove, *(set_ or [])]):
            raise UsageError(f"a tag is longer than {selection.MAX_TAG} characters")
        self.audit.check_history()
        current = {s.id: s.tags for s in snaps} | {s.id: s.tags for s in self.choose()}
        changes = {}
        for s in snaps:
            tags = current[s.id]
            if set_ is not None:
                plus, minus = [t for t in set_ if t not in tags], [t for t in tags if t not in set_]
            else:
                plus = [t for t in dict.fromkeys(add) if t not in tags]
                minus = [t for t in dict.fromkeys(remove) if t in tags or t in plus]
            if plus or minus:
                changes[s.id] = (plus, minus)
        if any(minus for _plus, minus in changes.values()):
            self.require_admin("remove tags")
        out = {}
        by_id = {s.id: s for s in snaps}
        now = self.clock.now()
        for sid, (plus, minus) in changes.items():
            p = self.protection(by_id[sid])  # the event is kept as long as the snapshot is locked
            lock = Retention(p.mode, p.until) if p.locked(now) and p.mode and p.until else None
            self.log_event("tag", sid, lock, add=plus, remove=minus)
            out[sid] = {"add": plus, "remove": minus, "tags": selection.apply_tags(current[sid], [(plus, minus)])}
        return out

    def snapshot_json(self, snap: Snapshot, overrides: dict | None = None) -> dict:
        """`overrides`: what snapshot_overrides() returned, for listing many snapshots at once."""
        p = self.protection(snap)
        out = snap.to_json()
        out["retention"] = p.retention_json(self.clock.now())
        out["legal_hold"] = p.hold
        if p.hold:
            out["legal_hold_reason"] = p.hold_reason
        found = (overrides if overrides is not None else self.snapshot_overrides()).get(snap.id, [])
        out["overrides"] = [o.to_json() for o in found]
        return out

    def snapshot_overrides(self) -> dict[str, list[clockguard.Override]]:
        """snapshot id -> the overrides that touched it: a lock shortened with
        --bypass-governance, a backup made or a lock set under a clock jump."""
        return clockguard.snapshot_overrides(self)

    # -- trees ---------------------------------------------------------------

    def load_tree(self, tree_id: str) -> list[dict]:
        return self.trees.load_tree(tree_id)

    def walk(self, tree_id: str, prefix: str = "", errors: list[str] | None = None):
        """(path, node) for every node below the tree, depth first, parents first."""
        self.require_read("read a snapshot's files")
        return self.trees.walk(tree_id, prefix, errors)

    def referenced_blobs(self, snaps) -> set[bytes]:
        """Every blob (trees and file content) the given snapshots reference."""
        return self.trees.referenced_blobs(s.tree for s in snaps)

    def copy_file(self, node: dict, out: BinaryIO, what: str) -> None:
        """Write a file node's content to `out`, checking it against the node's SHA-256."""
        self.trees.copy_file(node, out, what)

    def node_at(self, snap: Snapshot, path: str) -> dict | None:
        """The node at an absolute path inside a snapshot; a synthetic node for '/'."""
        self.require_read("read a snapshot's files")
        return self.trees.node_at(snap.tree, path)

    def ls(self, snap: Snapshot, path: str = "/", errors: list[str] | None = None):
        """Nodes at and below `path`; with `errors`, damaged folders are named there and skipped."""
        self.require_read("list a snapshot's files")
        return browse.ls(self, snap, path, errors)

    def cat(self, snap: Snapshot, path: str, out: BinaryIO) -> None:
        self.require_read("read a file")
        browse.cat(self, snap, path, out)

    def dump(self, snap: Snapshot, path: str, out: BinaryIO, archive: str = "tar") -> int:
        """A folder of a snapshot streamed to `out` as a tar or zip (restore/dump.py)."""
        self.require_read("read a snapshot's files")
        return dumping.dump(self, snap, path, out, archive)

    def blob_sizes(self, blob_id: bytes) -> tuple[int, int, bool, bool]:
        """(bytes stored, uncompressed bytes, compressed?, a tree?) of a blob, from the index."""
        e = self.blobs.lookup(blob_id)
        return e.length, e.raw_length, e.comp != COMP_NONE, e.type == BLOB_TREE

    def read_blob(self, blob_id: bytes) -> bytes:
        """One blob's verified plaintext."""
        self.load_index()
        return self.blobs.read(blob_id)

    def stats(self, snaps: list[Snapshot], mode: str) -> dict:
        """restic's `stats` of the snapshots in one of its modes (browse.py `stats`)."""
        self.require_read("count a snapshot's files")
        self.load_index()
        return browse.stats(self, snaps, mode)

    def diff(self, a: Snapshot, b: Snapshot, errors: list[str] | None = None) -> list[dict]:
        self.require_read("compare snapshots")
        return browse.diff(self, a, b, errors)

    def find(self, pattern: str, snapshots=None, errors: list[str] | None = None) -> list[dict]:
        self.require_read("search snapshots")
        return browse.find(self, pattern, snapshots, errors)

    def mount(
        self,
        mountpoint: str,
        *,
        hosts=(),
        tags=(),
        paths=(),
        allow_other: bool = False,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        """Serve the snapshots (those of any of `hosts`, with any of `tags`, holding every one of
        `paths`) as a read-only folder at `mountpoint` until it is unmounted (mount/)."""
        self.require_read("mount the repository")
        where = mount_fuse.check_mountpoint(mountpoint)
        mount_fuse.load_fuse()  # before anything is read: say at once if FUSE is missing
        self.load_index()
        wanted = set(paths)

        def choose(snaps: list[Snapshot]) -> list[Snapshot]:
            chosen = select_snapshots(snaps, tags=tags, hosts=hosts)
            return [s for s in chosen if wanted <= set(s.paths)]

        fs = mount_fs.Mount(self, choose, warn=self.warn)
        mount_fuse.serve(fs, where, allow_other=allow_other, on_ready=on_ready)

    # -- retention -------------------------------------------------------------

    def events(self) -> dict[str, list[dict]]:
        return self.event_store.all()

    def protection(self, snap: Snapshot) -> Protection:
        """The stricter of what the lock records and the audit log say (forget decides by it)."""
        if self._log_view is None:
            self._log_view = replay.log_view(self)
        return replay.stricter(locks.protection(self, snap), self._log_view.get(snap.id))

    def retention(self, duration: str | None = None, date: str | None = None, mode: str | None = None) -> Retention:
        """A lock for a new snapshot, as a duration from now or an end date; without a mode,
        the repository's default mode, else governance."""
        default = (self.config.get("default_retention") or {}).get("mode")
        mode = mode or default or GOVERNANCE
        if mode not in MODES:
            raise UsageError("the retention mode must be governance or compliance", remedy="retention-mode")
        until = self.lock_end(duration, date)
        self.check_minimum(until, "the backup's retention")
        return Retention(mode, until)

    def lock_end(self, duration: str | None = None, date: str | None = None) -> _dt.datetime:
        """When a lock asked for as a duration from now, or as an end date, ends."""
        return locks.resolve_until(self.clock, duration, date)

    def lock(
        self, snap: Snapshot, mode: str | None, until: _dt.datetime, bypass_governance: bool = False
    ) -> Protection:
        """Lock or extend. Without a mode: the snapshot's active mode, else the repository's
        default mode, else governance."""
        self.require_sound("lock")
        if bypass_governance:
            self.require_admin("shorten a lock (--bypass-governance)")
        self.check_minimum(until, "the lock")
        if mode is None:
            cur = self.protection(snap)
            default = (self.config.get("default_retention") or {}).get("mode")
            mode = (cur.mode if cur.locked(self.clock.now()) else None) or default or GOVERNANCE
        self.audit.check_history()  # never change a rolled-back or forked repository
        locks.lock(self, snap, mode, until, bypass_governance)
        return self.protection(snap)

    def hold(self, snap: Snapshot, reason: str) -> Protection:
        self.require_sound("hold")
        self.audit.check_history()
        return locks.hold(self, snap, reason)

    def release(self, snap: Snapshot) -> Protection:
        self.require_admin("release a legal hold")
        self.require_sound("release")
        self.audit.check_history()
        return locks.release(self, snap, replay.log_view(self))

    def forget(self, snaps, **kw) -> forgetting.ForgetResult:
        self.require_admin("forget snapshots")
        self.require_sound("forget")
        if not kw.get("dry_run"):
            self.audit.check_history()
        return forgetting.forget_snapshots(self, snaps, **kw)

    def forget_policy(self, policy: KeepPolicy, **kw) -> forgetting.ForgetResult:
        self.require_admin("forget snapshots")
        self.require_sound("forget")
        if not kw.get("dry_run"):
            self.audit.check_history()
        return forgetting.forget_policy(self, policy, **kw)

    def prune(self, **kw) -> prune.PruneReport:
        self.require_admin("prune")
        self.require_sound("prune")
        if not kw.get("dry_run"):
            self.audit.check_history()
        return prune.prune(self, **kw)

    def require_prunable(self) -> None:
        """Refuse (IntegrityError) what prune would refuse: `forget --prune` asks before it forgets."""
        preflight.require_sound(self, "prune")

    # -- keys ----------------------------------------------------------------

    def list_keys(self) -> list[dict]:
        """Every key file; revoked ones still stored (locked) say when they were revoked."""
        return self.key_ring.describe(self.key_id, self.key_ring.revocations())

    def add_key(self, password: str, *, kdf_n: int | None = None, role: str = keyfile.FULL) -> str:
        """Add a key file, protected as long as the longest lock, and held if any snapshot is.
        A `backup` key is write-only (crypto/keys.py): only a full key adds keys."""
        check_new_password(password)
        if role not in keyfile.ROLES:
            raise UsageError(f"the role must be one of {', '.join(keyfile.ROLES)}")
        self.require_admin("add a key")
        if role == keyfile.BACKUP and not self.keys.sealed_content:
            raise UsageError("write-only keys need a repository of format 2: run `amber upgrade` first")
        self.require_sound("add a key")
        self.audit.check_history()
        retention, held = locks.strongest_protection(self)
        keys = self.keys.backup_key() if role == keyfile.BACKUP else self.keys
        kid = self.key_ring.add(keys, password, self.clock, retention=retention, held=held, kdf_n=kdf_n)
        if keys.sealed_content:
            self.log_event("key-add", key=kid, role=role, author_key=_b64(author_public(keys)))
        else:
            self.log_event("key-add", key=kid)
        return kid

    def require_admin(self, what: str) -> None:
        """NotAllowed (exit 13) unless this is a full key: a write-only key changes no key,
        setting, lock release or deletion."""
        if not self.keys.can_read:
            raise NotAllowed(f"refusing to {what}: this is a write-only (backup) key; it needs a full key")

    def require_read(self, what: str) -> None:
        """NotAllowed (exit 13) unless this key opens content: a write-only key reads nothing back."""
        require_full(self.keys, what)

    def upgrade(self, *, kdf_n: int | None = None) -> dict:
        """Upgrade a repository of format 1 to format 2 by adding objects only: a key file for the
        same password holding the content key pair and admin key (the one this session opened is
        revoked, replaced by it) and an `upgrade` event pinning both public keys. Data written
        before stays sealed under the data key, which every key holds; from now on content, trees
        and snapshots are sealed to the content key, and `key add --role backup` works."""
        self.require_admin("upgrade the repository")
        if self.keys.sealed_content:
            raise UsageError("the repository is already of format 2")
        if self._password is None:
            raise UsageError("upgrade needs the repository opened with its password")
        self.require_sound("upgrade the repository")
        self.audit.check_history()
        keys = self.keys.with_content()
        retention, held = locks.strongest_protection(self)
        kid = self.key_ring.add(keys, self._password, self.clock, retention=retention, held=held, kdf_n=kdf_n)
        self.audit.author = keys.author_key()  # from the upgrade on, this session signs with the admin key
        self.log_event(
            "upgrade", format=2, key=kid, admin_key=_b64(author_public(keys)), content_key=_b64(keys.content_public)
        )
        old = self.key_id
        others = [k for k in self.key_ring.ids() if k not in (old, kid)]
        trust.revoke(self, old, replaced_by=kid)
        return {"format": 2, "key": kid, "replaced": old, "other_keys": others}

    def remove_key(self, ref: str) -> str:
        """Revoke a key file (a record naming its identity, and a `key-revoke` event), then delete
        it. A locked key file stays until its lock ends (reported through `warn`), revoked."""
        self.require_admin("remove a key")
        kid = self.key_ring.resolve(ref)
        if kid == self.key_id:
            raise UsageError("refusing to remove the key this session was opened with (`key passwd` replaces it)")
        self.require_sound("remove a key")
        self.audit.check_history()
        try:
            self.key_ring.records.get(rec.KEY_FILE, layout.key_file(kid))
        except IntegrityError:  # not a key file at all: nothing to revoke, only to delete
            self.key_ring.remove(kid)
            self.log_event("key-remove", key=kid)
            return kid
        trust.revoke(self, kid)
        return kid

    def change_password(self, password: str, *, kdf_n: int | None = None) -> str:
        """A new key file for the same master keys (`key-add`), then the one this session opened
        revoked (`key-revoke` with `replaced_by`); returns the new key's id."""
        self.require_admin("change a password")
        check_new_password(password)
        self.require_sound("change the password")
        self.audit.check_history()
        retention, held = locks.strongest_protection(self)
        kid = self.key_ring.add(self.keys, password, self.clock, retention=retention, held=held, kdf_n=kdf_n)
        self.log_event("key-add", key=kid, replaces=self.key_id)
        old, self.key_id = self.key_id, kid
        trust.revoke(self, old, replaced_by=kid)
        return kid

    # -- config pin and settings -------------------------------------------------------

    def require_sound(self, what: str) -> None:
        """Refuse a change (IntegrityError, exit 20) while the config does not match its pin."""
        if self.config_problems:
            raise IntegrityError(f"refusing to {what}: " + "; ".join(self.config_problems), remedy="repair-config")

    def repair_config(self) -> bool:
        """Put the config the init event pins back over a replaced one; False if nothing was wrong."""
        self.require_admin("repair the config")
        return trust.repair_config(self)

    def apply_settings(self, settings: settingsrec.Settings) -> None:
        """Put `settings` in force: a backup without a lock gets the default retention, else the
        minimum (governance)."""
        self.settings = settings
        default = settings.default_retention
        if default is None and settings.min_retention:
            default = {"mode": GOVERNANCE, "duration": settings.min_retention}
        self.config = dict(self.sealed_config, default_retention=default)

    def check_minimum(self, until: _dt.datetime, what: str) -> None:
        """Locked (exit 30) when a lock ending at `until` is shorter than the minimum retention."""
        seconds = self.settings.min_seconds()
        if not seconds:
            return
        now = self.clock.now()
        if until < now + _dt.timedelta(seconds=seconds - 5):  # the end was computed a moment ago
            least = (now + _dt.timedelta(seconds=seconds)).replace(microsecond=0)
            raise Locked(
                f"{what} ends {to_iso(until.replace(microsecond=0))}, before the repository's minimum "
                f"retention of {self.settings.min_retention} from now ({to_iso(least)})"
            )

    def change_settings(
        self,
        *,
        default_retention: dict | None = None,
        min_retention: str | None = None,
        lock_policy: dict | None = None,
        anomaly_thresholds: dict | None = None,
    ):
        """Write the next settings version and its `setting` event (the minimum only rises, a lock
        policy only lengthens; anomaly thresholds are backup/anomaly.py's)."""
        self.require_admin("change settings")
        return trust.change_settings(
            self,
            default_retention=default_retention,
            min_retention=min_retention,
            lock_policy=lock_policy,
            anomaly_thresholds=anomaly_thresholds,
        )

    def backup(self, paths, *, auto_hold: bool = True, **kw) -> BackupResult:
        """Back up `paths` (backup/run.py). When the changes against the parent raise an anomaly
        alarm (backup/anomaly.py) the snapshot stands; the parent, the last good state, is held
        (unless `auto_hold` is False) and an `anomaly` event records the alarm."""
        self.require_sound("back up")
        if kw.get("retention") is not None:
            self.check_minimum(kw["retention"].until, "the backup's retention")
        res = backup(self, paths, **kw)
        found = res.anomalies
        if found is None or not found.alarm:
            return res
        held = self._hold_parent(found, res.snapshot_id) if auto_hold else None
        found = dataclasses.replace(found, held=held)
        self.log_event(
            "anomaly", res.snapshot_id, parent=found.parent, signals=found.signals, reasons=found.reasons, held=held
        )
        return dataclasses.replace(res, anomalies=found)

    def anomalies(self) -> list[dict]:
        """The `anomaly` events of the audit log, oldest first (docs/AUDIT-LOG.md)."""
        out = []
        for ev, _raw in self.audit.entries():
            if ev.get("type") != "anomaly":
                continue
            d = ev.get("details") or {}
            out.append(
                {
                    "seq": ev["seq"],
                    "time": ev["time"],
                    "snapshot": ev.get("snapshot"),
                    "parent": d.get("parent"),
                    "held": d.get("held"),
                    "reasons": d.get("reasons") or [],
                    "signals": d.get("signals") or {},
                }
            )
        return out

    def _hold_parent(self, found, sid: str) -> str | None:
        """Hold the parent of an alarmed backup (an ordinary `hold` event); its id, or None
        (with a warning) when the hold could not be placed."""
        reason = f"anomaly alarm raised by backup {sid[:8]}: " + "; ".join(found.reasons)
        try:
            self.hold(self.find_snapshot(found.parent), reason[:1000])
        except AmberError as e:
            self.warn(f"the anomaly alarm could not hold the parent snapshot {found.parent[:8]}: {e}")
            return None
        return found.parent

    def backup_dry_run(self, paths, **kw) -> BackupResult:
        """What `backup` would store (backup/dryrun.py): nothing is written to the repository."""
        return dry_run(self, paths, **kw)

    def copy_from(
        self,
        source: "Repository",
        refs=(),
        *,
        hosts=(),
        tags=(),
        paths=(),
        retain: str | None = None,
        retention_mode: str | None = None,
        report: CopyReport | None = None,
    ) -> CopyReport:
        """Copy snapshots of `source` (those named by `refs`, else all; narrowed by host, tag
        and path) that are not copied yet (copy.py). `retain` (a duration, with
        `retention_mode`) replaces the lock each copy would get; never below the minimum."""
        source.require_read("copy from it")
        self.require_sound("copy snapshots")
        if source.id == self.id:
            raise UsageError(f"the source is this repository ({self.id[:10]}): nothing to copy")
        snaps = copying.select(source, refs, hosts, tags, paths)
        lock = self.retention(retain, mode=retention_mode) if retain is not None else None
        try:
            return copying.copy_snapshots(self, source, snaps, lock, report)
        finally:
            self.record_damage("copy")

    def restore(self, snap: Snapshot, target: str, **kw) -> RestoreStats:
        self.require_read("restore")
        try:
            stats = restore(self, snap, target, **kw)
        finally:
            self.record_damage("restore")  # the next backup then stores those blobs again
        try:  # a read-only client can restore without recording it
            self.log_event(
                "restore",
                snap.id,
                target=os.path.abspath(target),
                files=stats.files,
                bytes=stats.bytes_written,
                verified=bool(kw.get("verify")),
            )
        except AmberError as e:
            self.warn(f"the restore was not recorded in the audit log: {e}")
        return stats

    # -- repair --------------------------------------------------------------------

    def repair_packs(
        self, *, source: "Repository | None" = None, path: str | None = None, dry_run: bool = False
    ) -> repairing.PacksReport:
        """Store lost blobs again (repair.py), from another repository with this one's id key
        or from files under `path`."""
        self.require_admin("repair packs")
        if (source is None) == (path is None):
            raise UsageError("repair packs needs --from REPOSITORY or --from-path PATH")
        if not dry_run:
            self.require_sound("repair packs")
            self.audit.check_history()
        if source is not None:
            repairing.require_same_ids(self, source)
            offer = repairing.offer_from_repository(source)
            where = source.storage.describe()
        else:
            offer = repairing.offer_from_path(self.keys, self.config["chunker"], os.path.abspath(path or ""))
            where = os.path.abspath(path or "")
        return repairing.repair_packs(self, offer, where, dry_run=dry_run)

    def repair_index(self, *, dry_run: bool = False):
        """Index files made again from the packs' headers; unreadable ones superseded (repair.py)."""
        self.require_admin("repair the index")
        if not dry_run:
            self.require_sound("repair the index")
            self.audit.check_history()
        return repairing.repair_index(self, dry_run=dry_run)

    def repair_snapshots(self, snaps: list[Snapshot] | None = None, *, dry_run: bool = False):
        """New snapshots without the files whose data is lost (repair.py); the originals stay."""
        self.require_admin("repair snapshots")
        if not dry_run:
            self.require_sound("repair snapshots")
            self.audit.check_history()
        chosen = snaps if snaps is not None else [s for s in self.snapshots() if s.readable]
        return repairing.repair_snapshots(self, chosen, dry_run=dry_run)

    def drill(
        self, snap: Snapshot, *, sample: str | None = None, target: str | None = None, stats: RestoreStats | None = None
    ) -> drilling.DrillReport:
        """A restore drill (restore/drill.py): the snapshot, or a deterministic sample of its files,
        restored into `target` (else a scratch folder, removed after), every byte verified, timed,
        the full restore's time extrapolated; recorded as a `drill` event."""
        self.require_read("run a restore drill")
        spec = drilling.Sample.parse(sample)
        if target is not None and os.path.exists(target) and (not os.path.isdir(target) or os.listdir(target)):
            raise UsageError(f"--target {target}: a drill restores into an empty or new folder")
        files = [(path, int(node.get("size") or 0)) for path, node in self.walk(snap.tree) if node["type"] == "file"]
        chosen = drilling.choose(files, spec, snap.id)
        rep = drilling.DrillReport(
            snap.id, spec.describe(), total_files=len(files), total_bytes=sum(size for _p, size in files)
        )
        scratch = target or tempfile.mkdtemp(prefix="amber-drill-")
        rep.target, rep.kept = os.path.abspath(scratch), target is not None
        stats = stats or RestoreStats()
        started = drilling.timer()
        try:
            if chosen:
                restore(
                    self, snap, scratch, include=[] if spec.whole else [p for p, _s in chosen], verify=True, stats=stats
                )
        except RestoreFailed as e:
            rep.errors = e.problems
        finally:
            rep.seconds = drilling.timer() - started
            self.record_damage("drill")
            if target is None:
                shutil.rmtree(scratch, ignore_errors=True)
        rep.files, rep.bytes, rep.verified = stats.files, stats.bytes_written, stats.verified
        self.log_event(
            "drill",
            snap.id,
            sample=rep.sample,
            files=rep.files,
            bytes=rep.bytes,
            verified=rep.verified,
            seconds=round(rep.seconds, 3),
            throughput=round(rep.throughput),
            rto_seconds=round(rep.rto_seconds, 1),
            total_files=rep.total_files,
            total_bytes=rep.total_bytes,
            ok=rep.ok,
            errors=len(rep.errors or []),
        )
        return rep

    def lock_posture(self) -> list[str]:
        """Where the storage itself enforces less than this repository's settings promise
        (an S3 bucket's default retention or policy); other backends have nothing to say."""
        posture = getattr(self.storage, "lock_posture", None)
        if posture is None:
            return []
        default = self.config.get("default_retention") or {}
        seconds = duration_seconds(default["duration"]) if default else 0
        return posture(seconds, default.get("mode"))

    def check(
        self,
        read_data: bool = False,
        progress=None,
        record: bool = True,
        *,
        read_data_subset: str | None = None,
        since: str | None = None,
        rng=None,
    ) -> CheckReport:
        """`read_data_subset` (N/M, P%, SIZE) and `since` (a DURATION) imply `read_data`
        (repo/verified.py); the packs read clean are recorded as verified."""
        self.require_read("check (it reads every snapshot's trees)")
        subset, window = check_scope(read_data_subset, since)
        read_data = read_data or subset is not None or window is not None
        rep = check(self, read_data=read_data, progress=progress, subset=subset, since=window, rng=rng)
        rep.damage_recorded = self.record_damage("check --read-data" if read_data else "check")
        recorded = {q for _b, q in self.damage.notes}  # a damage record wins over a clean read
        clean = [(p, n) for p, n in rep.clean_packs.items() if p not in recorded]
        if clean:
            now = to_iso(self.clock.now())
            rep.packs_verified_recorded = verified.record(self.records, clean, now, socket.gethostname(), self.warn)
        errors, warnings = trust.keys_and_config_problems(self, self._password)
        rep.errors.extend(errors)
        rep.warnings.extend(warnings)
        rep.warnings.extend(self.lock_posture())
        if record:
            try:
                self.log_event(
                    "check",
                    read_data=read_data,
                    read_subset=rep.read_subset,
                    packs_read=rep.packs_read,
                    packs_skipped_verified=rep.packs_skipped_verified,
                    ok=rep.ok,
                    errors=len(rep.errors),
                    damaged_packs=rep.damaged_packs[:100],
                    damage_recorded=rep.damage_recorded,
                    damage_healed=len(rep.damage_healed),
                    damage_unhealed=len(rep.damage_unhealed),
                )
            except AmberError as e:  # a read-only client can check without recording it
                self.warn(f"the check was not recorded in the audit log: {e}")
        return rep


def check_scope(read_data_subset: str | None, since: str | None) -> tuple[verified.Subset | None, _dt.timedelta | None]:
    """`check --read-data-subset` and `--since` parsed; UsageError (exit 2) if malformed."""
    subset = verified.parse_subset(read_data_subset) if read_data_subset is not None else None
    window = _dt.timedelta(seconds=duration_seconds(since)) if since is not None else None
    return subset, window


def parse_anomaly_thresholds(text: str, current: dict | None = None) -> dict:
    """Anomaly thresholds from "changed=0.6,min-files=50" over `current` (backup/anomaly.py)."""
    return anomaly_rules.parse_thresholds(text, current)


def thresholds_in_force(stored: dict | None) -> dict:
    """The anomaly thresholds in force: the defaults, overridden by the stored setting."""
    return anomaly_rules.thresholds(stored)


def parse_lock_policy(text: str, mode: str | None = None) -> dict:
    """A lock policy from "daily=14d,weekly=8w,monthly=13mo,yearly=7y" (retention/tiers.py)."""
    return lock_tiers.parse(text, mode)


def _b64(raw: bytes | None) -> str:
    return base64.b64encode(raw or b"").decode()


def author_public(keys: MasterKeys) -> bytes:
    """The raw Ed25519 public key of `keys`' author key (format 2)."""
    author = keys.author_key()
    if author is None:
        raise ValueError("keys of format 1 have no author key")
    return author.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def check_new_password(password: str) -> None:
    """Refuse an empty password for a new repository or key (as restic does)."""
    if not isinstance(password, str) or password == "":
        raise UsageError("an empty password is not allowed")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("the password is not UTF-8 text") from None


def open_repository(url: str, password: str, **kw) -> Repository:
    return Repository.open(url, password, **kw)


def keep_policy(
    last: int = 0,
    hourly: int = 0,
    daily: int = 0,
    weekly: int = 0,
    monthly: int = 0,
    yearly: int = 0,
    within: str | None = None,
) -> KeepPolicy:
    """A keep policy as restic spells it; `within` is a duration such as 30d."""
    span = _dt.timedelta(seconds=duration_seconds(within)) if within is not None else None
    return KeepPolicy(last, hourly, daily, weekly, monthly, yearly, span)


__all__ = [
    "Repository",
    "Snapshot",
    "open_repository",
    "select_snapshots",
    "SnapshotFilter",
    "keep_policy",
    "verify_bundle",
    "BackupStats",
    "Listed",
    "Selection",
    "SourceScan",
    "listed_sources",
    "source_selection",
    "CopyReport",
    "RestoreStats",
    "EvidenceReport",
    "KeepPolicy",
    "Retention",
    "entry_json",
    "witness_target",
]
