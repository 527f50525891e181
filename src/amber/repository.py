"""The library API: open or create a repository, then back up, browse, restore, check."""
from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import blake3

from . import __version__
from .clock import Clock, SystemClock, duration_seconds, from_iso, to_iso
from .crypto import keys as keyfile
from .crypto.aead import KIND_CONFIG, KIND_SNAPSHOT, Sealer
from .crypto.keys import MasterKeys
from .errors import (AlreadyExists, AmberError, IntegrityError, NotFound, RepositoryExists,
                     RepositoryNotFound, UsageError, WrongPassword)
from .format import snapshot as snapfmt
from .format import tree as treefmt
from .storage import Storage, open_storage
from .storage.base import GOVERNANCE, MODES
from .repo.blobs import BlobStore

FORMAT_VERSION = 1
CHUNK_MIN = 512 << 10
CHUNK_AVG = 512 << 10   # with pyfastcdc's cut-point skipping the mean is about 768 KiB
CHUNK_MAX = 8 << 20


@dataclass(frozen=True, slots=True)
class Snapshot:
    id: str
    time: _dt.datetime
    hostname: str
    username: str
    paths: list
    tags: list
    tree: str
    content_root: str
    retention: dict | None
    summary: dict
    doc: dict = field(repr=False)

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def to_json(self) -> dict:
        return {
            "id": self.id, "short_id": self.short_id, "time": to_iso(self.time),
            "hostname": self.hostname, "username": self.username, "paths": self.paths,
            "tags": self.tags, "tree": self.tree, "content_root": self.content_root,
            "retention": self.retention, "legal_hold": False, "summary": self.summary,
        }


class Repository:
    """An open repository. Create with `Repository.init`, open with `Repository.open`."""

    def __init__(self, storage: Storage, keys: MasterKeys, config: dict, key_id: str,
                 clock: Clock | None = None) -> None:
        self.storage = storage
        self.keys = keys
        self.config = config
        self.key_id = key_id
        self.clock = clock or SystemClock()
        self.sealer = Sealer(keys.data)
        self.store = BlobStore(storage, keys, pack_target=config.get("pack_size", 16 << 20))
        self._index_loaded = False
        self._snapshots: list[Snapshot] | None = None
        self._events: dict | None = None
        self._audit = None
        self.snapshot_errors: list[str] = []  # snapshots that could not be read (see check)
        self.warn = lambda message: None      # where the library reports what it skips
        self.index_errors: list[str] = []

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    def init(cls, url: str, password: str, *, default_retention: dict | None = None,
             clock: Clock | None = None, kdf_n: int = keyfile.SCRYPT_N,
             storage_options: Mapping[str, str] | None = None) -> "Repository":
        """Create a repository. `default_retention` ({"duration": "30d", "mode": None}) locks
        every new snapshot; its mode defaults to governance, and storage must enforce it."""
        storage = open_storage(url, create=True, options=storage_options)
        if storage.exists("config") or any(True for _ in storage.list("keys/")):
            raise RepositoryExists(f"a repository already exists at {url}")
        default_retention = _default_retention(default_retention)
        if default_retention is not None:
            check = getattr(storage, "check_object_lock", None)
            if check is not None:
                check()  # an S3 bucket must be versioned with Object Lock before locks are promised
        keys = MasterKeys.generate()
        clock = clock or SystemClock()
        config = {
            "v": FORMAT_VERSION, "id": uuid.uuid4().hex, "created": to_iso(clock.now()),
            "chunker": {"algorithm": "fastcdc2020", "min": CHUNK_MIN, "avg": CHUNK_AVG, "max": CHUNK_MAX,
                        "normalization": 1},
            "pack_size": 16 << 20, "compression": "zstd", "default_retention": default_retention,
            "program": f"amber {__version__}",
        }
        raw_key = keyfile.wrap(keys, password, n=kdf_n, clock=clock)
        key_id = blake3.blake3(raw_key).hexdigest()
        storage.put(f"keys/{key_id}", raw_key)
        storage.put("config", Sealer(keys.data).seal(KIND_CONFIG, treefmt.canonical(config)))
        repo = cls(storage, keys, config, key_id, clock)
        repo.log_event("init", repository=config["id"], format=FORMAT_VERSION, key=key_id,
                       default_retention=default_retention, public_key=repo.audit.vkey())
        return repo

    @classmethod
    def open(cls, url: str, password: str, *, clock: Clock | None = None,
             storage_options: Mapping[str, str] | None = None) -> "Repository":
        storage = open_storage(url, options=storage_options)
        if not storage.exists("config"):
            raise RepositoryNotFound(f"no repository at {url}", remedy="init")
        key_infos = list(storage.list("keys/"))
        if not key_infos:
            raise IntegrityError(f"{url}: repository has no key files")
        keys = key_id = None
        for info in key_infos:
            try:
                keys = keyfile.unwrap(storage.get(info.key), password)
                key_id = info.key.split("/", 1)[1]
                break
            except (WrongPassword, IntegrityError):
                continue
        if keys is None:
            raise WrongPassword("wrong password or no key found")
        try:
            config = json.loads(Sealer(keys.data).open(KIND_CONFIG, storage.get("config")))
        except ValueError:
            raise IntegrityError("config: not valid JSON") from None
        if not isinstance(config, dict):
            raise IntegrityError("config: not an amber config")
        if config.get("v") != FORMAT_VERSION:
            raise IntegrityError(f"config: unsupported repository format {config.get('v')!r}")
        return cls(storage, keys, config, key_id, clock)

    def close(self) -> None:
        self.storage.close()

    @property
    def id(self) -> str:
        return self.config["id"]

    def load_index(self, force: bool = False) -> None:
        """Read the index (once; `force` reads it again, as another client may have changed it)."""
        if force and self._index_loaded:
            self.store.reset_index()
            self._index_loaded = False
        if not self._index_loaded:
            from .retention.prune import load_records

            tombs, plans = load_records(self)
            self.store.tombstones = tombs
            self.store.doomed = set().union(*plans.values()) if plans else set()
            self.index_errors = self.store.load_index()
            self._index_loaded = True

    # -- audit log ---------------------------------------------------------------

    @property
    def audit(self):
        from .audit.log import AuditLog

        if self._audit is None:
            self._audit = AuditLog(self)
        return self._audit

    def log_event(self, kind: str, snapshot: str | None = None, lock=None, **details) -> dict:
        """Append one event to the audit log (after the change it records is stored)."""
        return self.audit.append(kind, snapshot, lock, **details)

    # -- retention -------------------------------------------------------------

    def events(self) -> dict[str, list[dict]]:
        if self._events is None:
            from .retention.locks import load_events

            self._events = load_events(self)
        return self._events

    def invalidate_events(self) -> None:
        self._events = None

    def invalidate_snapshots(self) -> None:
        self._snapshots = None

    def protection(self, snap):
        from .retention.locks import protection

        return protection(self, snap)

    def lock_end(self, duration: str | None = None, date: str | None = None):
        """When a lock asked for as a duration from now, or as an end date, ends."""
        from .retention.locks import resolve_until

        return resolve_until(self, duration, date)

    def lock(self, snap, mode: str | None, until, bypass_governance: bool = False):
        """Lock or extend. Without a mode: the snapshot's active mode, else the repository's
        default mode, else governance."""
        from .retention.locks import lock

        if mode is None:
            cur = self.protection(snap)
            default = (self.config.get("default_retention") or {}).get("mode")
            mode = (cur.mode if cur.locked(self.clock.now()) else None) or default or GOVERNANCE
        self.audit.check_history()  # never change a rolled-back or forked repository
        return lock(self, snap, mode, until, bypass_governance)

    def hold(self, snap, reason: str):
        from .retention.locks import hold

        self.audit.check_history()
        return hold(self, snap, reason)

    def release(self, snap):
        from .retention.locks import release

        self.audit.check_history()
        return release(self, snap)

    def forget(self, snaps, **kw):
        from .retention.forget import forget_snapshots

        if not kw.get("dry_run"):
            self.audit.check_history()
        return forget_snapshots(self, snaps, **kw)

    def forget_policy(self, policy, **kw):
        from .retention.forget import forget_policy

        if not kw.get("dry_run"):
            self.audit.check_history()
        return forget_policy(self, policy, **kw)

    def prune(self, **kw):
        from .retention.prune import prune

        if not kw.get("dry_run"):
            self.audit.check_history()
        return prune(self, **kw)

    def snapshot_json(self, snap) -> dict:
        p = self.protection(snap)
        out = snap.to_json()
        out["retention"] = p.retention_json(self.clock.now())
        out["legal_hold"] = p.hold
        if p.hold:
            out["legal_hold_reason"] = p.hold_reason
        return out

    # -- keys ----------------------------------------------------------------

    def list_keys(self) -> list[dict]:
        out = []
        for info in self.storage.list("keys/"):
            kid = info.key.split("/", 1)[1]
            try:
                doc = keyfile.key_file_info(self.storage.get(info.key))
            except IntegrityError as e:
                out.append({"id": kid, "current": kid == self.key_id, "error": str(e)})
                continue
            out.append({"id": kid, "current": kid == self.key_id, "created": doc.get("created"),
                        "host": doc.get("host"), "user": doc.get("user"), "kdf": doc["kdf"]})
        return out

    def add_key(self, password: str) -> str:
        """Add a key file, protected as long as the longest lock, and held if any snapshot is."""
        from .retention.locks import strongest_protection

        self.audit.check_history()
        retention, held = strongest_protection(self)
        raw = keyfile.wrap(self.keys, password, clock=self.clock)
        kid = blake3.blake3(raw).hexdigest()
        self.storage.put(f"keys/{kid}", raw, retention=retention)
        if held:
            self.storage.set_legal_hold(f"keys/{kid}", True)
        self.log_event("key-add", key=kid)
        return kid

    def remove_key(self, ref: str) -> str:
        matches = [k["id"] for k in self.list_keys() if k["id"].startswith(ref)]
        if not matches:
            raise NotFound(f"no key {ref!r}")
        if len(matches) > 1:
            raise UsageError(f"key prefix {ref!r} is ambiguous")
        kid = matches[0]
        if kid == self.key_id:
            raise UsageError("refusing to remove the key this session was opened with")
        self.audit.check_history()
        self.storage.delete(f"keys/{kid}")
        self.log_event("key-remove", key=kid)
        return kid

    # -- snapshots -----------------------------------------------------------

    def snapshots(self, *, tags=(), hosts=()) -> list[Snapshot]:
        """Every readable snapshot, oldest first (with any of `tags`, of any of `hosts`).
        Unreadable ones are reported by `check`, not here."""
        if self._snapshots is None:
            out = []
            self.snapshot_errors = []
            for info in self.storage.list("snapshots/"):
                try:
                    out.append(self.load_snapshot(info.key.split("/", 1)[1]))
                except (IntegrityError, NotFound) as e:
                    self.snapshot_errors.append(str(e))
                    self.warn(f"skipping an unreadable snapshot: {e} (a check reports it)")
            out.sort(key=lambda s: (s.time, s.id))
            self._snapshots = out
        return select_snapshots(self._snapshots, tags=tags, hosts=hosts)

    def load_snapshot(self, sid: str) -> Snapshot:
        key = f"snapshots/{sid}"
        raw = self.storage.get(key)
        if blake3.blake3(raw).hexdigest() != sid:
            raise IntegrityError(f"{key}: content does not match its name")
        doc = snapfmt.decode(self.sealer.open(KIND_SNAPSHOT, raw, key), key)
        try:
            return Snapshot(
                id=sid, time=from_iso(doc["time"]), hostname=str(doc["hostname"]),
                username=str(doc.get("username", "")), paths=list(doc["paths"]),
                tags=list(doc.get("tags", [])), tree=str(doc["tree"]), content_root=str(doc["content_root"]),
                retention=doc.get("retention"), summary=dict(doc.get("summary", {})), doc=doc)
        except (TypeError, ValueError) as e:
            raise IntegrityError(f"{key}: malformed snapshot ({e})") from None

    def save_snapshot(self, doc: dict, retention=None) -> str:
        raw = self.sealer.seal(KIND_SNAPSHOT, snapfmt.encode(doc))
        sid = blake3.blake3(raw).hexdigest()
        self.storage.put(f"snapshots/{sid}", raw, retention=retention)
        self._snapshots = None
        return sid

    def find_snapshot(self, ref: str) -> Snapshot:
        snaps = self.snapshots()
        if ref == "latest":
            if not snaps:
                raise NotFound("the repository has no snapshots")
            return snaps[-1]
        ref = ref.lower()
        if len(ref) < 8 or any(c not in "0123456789abcdef" for c in ref):
            raise UsageError(f"snapshot {ref!r}: give a full id, a prefix of at least 8 hex characters, or 'latest'")
        matches = [s for s in snaps if s.id.startswith(ref)]
        if not matches:
            raise NotFound(f"no snapshot {ref}")
        if len(matches) > 1:
            raise UsageError(f"snapshot prefix {ref} is ambiguous")
        return matches[0]

    # -- trees ---------------------------------------------------------------

    def load_tree(self, tree_id: str) -> list[dict]:
        bid = bytes.fromhex(tree_id)
        cached = self.store.tree_cache.get(bid)
        if cached is not None:
            return cached
        self.load_index()
        # A blob id names plaintext, so a data blob with the same bytes is the same tree.
        nodes = treefmt.decode(self.store.read(bid), f"tree {tree_id[:16]}")
        if len(self.store.tree_cache) > 100_000:
            self.store.tree_cache.clear()
        self.store.tree_cache[bid] = nodes
        return nodes

    def walk(self, tree_id: str, prefix: str = ""):
        """(path, node) for every node below the tree, depth first, parents first."""
        for node in self.load_tree(tree_id):
            path = f"{prefix}/{node['name']}"
            yield path, node
            if node["type"] == "dir" and node.get("subtree"):
                yield from self.walk(node["subtree"], path)

    def referenced_blobs(self, snaps) -> set[bytes]:
        """Every blob (trees and file content) the given snapshots reference."""
        used: set[bytes] = set()
        seen: set[str] = set()

        def visit(tree_id: str) -> None:
            if tree_id in seen:
                return
            seen.add(tree_id)
            used.add(bytes.fromhex(tree_id))
            for node in self.load_tree(tree_id):
                if node["type"] == "dir" and node.get("subtree"):
                    visit(node["subtree"])
                elif node["type"] == "file":
                    used.update(bytes.fromhex(h) for h in node.get("content") or ())

        for s in snaps:
            visit(s.tree)
        return used

    def copy_file(self, node: dict, out, what: str) -> None:
        """Write a file node's content to `out`, checking it against the node's SHA-256."""
        import hashlib

        self.load_index()
        h = hashlib.sha256()
        for hid in node.get("content") or []:
            data = self.store.read(bytes.fromhex(hid))
            h.update(data)
            out.write(data)
        if h.hexdigest() != node.get("sha256"):
            raise IntegrityError(f"{what}: content does not match its SHA-256 in the snapshot")

    def node_at(self, snap: Snapshot, path: str) -> dict | None:
        """The node at an absolute path inside a snapshot; a synthetic node for '/'."""
        parts = [p for p in path.split("/") if p]
        node = {"name": "/", "type": "dir", "subtree": snap.tree}
        for part in parts:
            if node["type"] != "dir" or not node.get("subtree"):
                return None
            node = next((n for n in self.load_tree(node["subtree"]) if n["name"] == part), None)
            if node is None:
                return None
        return node

    # -- operations (engine modules do the work) -------------------------------

    def backup(self, paths, **kw):
        from .backup.archiver import backup

        return backup(self, paths, **kw)

    def restore(self, snap: Snapshot, target: str, **kw):
        from .restore.restorer import restore

        stats = restore(self, snap, target, **kw)
        try:  # a read-only client can restore without recording it
            self.log_event("restore", snap.id, target=os.path.abspath(target), files=stats.files,
                           bytes=stats.bytes_written, verified=bool(kw.get("verify")))
        except AmberError as e:
            self.warn(f"the restore was not recorded in the audit log: {e}")
        return stats

    def check(self, read_data: bool = False, progress=None, record: bool = True):
        from .check import check

        rep = check(self, read_data=read_data, progress=progress)
        if record:
            try:
                self.log_event("check", read_data=read_data, ok=rep.ok, errors=len(rep.errors),
                               damaged_packs=rep.damaged_packs[:100])
            except AmberError as e:  # a read-only client can check without recording it
                self.warn(f"the check was not recorded in the audit log: {e}")
        return rep

    def cache_dir(self) -> str:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "amber", self.id)


def select_snapshots(snaps, *, tags=(), hosts=()) -> list[Snapshot]:
    """The snapshots with any of `tags` and of any of `hosts` (an empty filter passes all)."""
    tags, hosts = set(tags), set(hosts)
    return [s for s in snaps if (not tags or tags & set(s.tags)) and (not hosts or s.hostname in hosts)]


def _default_retention(asked: dict | None) -> dict | None:
    if not asked or not asked.get("duration"):
        if asked and asked.get("mode"):
            raise UsageError("a default retention mode needs a default retention duration")
        return None
    mode = asked.get("mode") or GOVERNANCE
    if mode not in MODES:
        raise UsageError("the retention mode must be governance or compliance", remedy="retention-mode")
    duration_seconds(asked["duration"])  # validates
    return {"mode": mode, "duration": asked["duration"]}


def open_repository(url: str, password: str, **kw) -> Repository:
    return Repository.open(url, password, **kw)


__all__ = ["Repository", "Snapshot", "open_repository", "AmberError", "AlreadyExists"]
