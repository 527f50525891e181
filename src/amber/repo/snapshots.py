"""Snapshots: the model, and the store that lists, reads, writes and finds them."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ..clock import from_iso, to_iso
from ..errors import IntegrityError, NotFound, UsageError
from ..format import layout
from ..format import snapshot as snapfmt
from ..storage.base import Retention
from . import records as rec


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

    @classmethod
    def from_doc(cls, sid: str, doc: dict, what: str) -> "Snapshot":
        """The snapshot of a document; every field is checked first (format/snapshot.validate)."""
        if not isinstance(doc, dict):
            raise IntegrityError(f"{what}: not an amber snapshot")
        snapfmt.validate(doc, what)
        try:
            return cls(
                id=sid,
                time=from_iso(doc["time"]),
                hostname=doc["hostname"],
                username=doc.get("username", ""),
                paths=list(doc["paths"]),
                tags=list(doc.get("tags", [])),
                tree=doc["tree"],
                content_root=doc["content_root"],
                retention=doc.get("retention"),
                summary=dict(doc.get("summary", {})),
                doc=doc,
            )
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
            raise IntegrityError(f"{what}: malformed snapshot ({e})") from None

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "short_id": self.short_id,
            "time": to_iso(self.time),
            "hostname": self.hostname,
            "username": self.username,
            "paths": self.paths,
            "tags": self.tags,
            "tree": self.tree,
            "content_root": self.content_root,
            "retention": self.retention,
            "legal_hold": False,
            "summary": self.summary,
        }


def select_snapshots(snaps: Iterable[Snapshot], *, tags=(), hosts=()) -> list[Snapshot]:
    """The snapshots with any of `tags` and of any of `hosts` (an empty filter passes all)."""
    want_tags, want_hosts = set(tags), set(hosts)
    return [
        s for s in snaps if (not want_tags or want_tags & set(s.tags)) and (not want_hosts or s.hostname in want_hosts)
    ]


class SnapshotStore:
    """The repository's snapshots, read once and cached until one is written or removed."""

    def __init__(self, records: rec.Records, warn: Callable[[str], None]) -> None:
        self.records = records
        self.warn = warn
        self.errors: list[str] = []  # snapshots that could not be read (check reports them)
        self.bad: dict[str, str] = {}  # snapshot id -> why it could not be read
        self._cache: list[Snapshot] | None = None
        self._copies: str | None = None  # folder of local copies of the stored documents, while `cached`

    @contextlib.contextmanager
    def cached(self, folder: str) -> Iterator[None]:
        """Read snapshot documents through local copies of their stored bytes, kept in `folder`.

        A snapshot document never changes (its name is the hash of its stored bytes), so
        a backup need not fetch every one of them again each time: it keeps the sealed
        bytes as stored (encrypted at rest) and authenticates a copy exactly as it would
        the stored object, reading the object again when the copy fails. The listing is
        always fresh, and copies of snapshots no longer listed are removed. Only for
        readers that need the documents, not their state in storage: `check` reads storage."""
        previous, self._copies = self._copies, folder
        try:
            yield
        finally:
            self._copies = previous

    def all(self) -> list[Snapshot]:
        """Every readable snapshot, oldest first."""
        if self._cache is None:
            out, self.errors = self.scan()
            for e in self.errors:
                self.warn(f"skipping an unreadable snapshot: {e} (a check reports it)")
            out.sort(key=lambda s: (s.time, s.id))
            self._cache = out
        return list(self._cache)

    def scan(self) -> tuple[list[Snapshot], list[str]]:
        """Read every snapshot afresh: (the readable ones, in storage order; what was wrong with the others).

        One that vanishes between the listing and the read (a forget running beside) is
        no error: it is simply gone."""
        out, errors = [], []
        bad: dict[str, str] = {}
        listed = self.records.listing(layout.SNAPSHOTS)
        for info in listed:
            sid = layout.last(info.key)
            try:
                out.append(self._load_copy(sid) if self._copies else self.load(sid))
            except NotFound:
                continue
            except IntegrityError as e:
                msg = str(e) if str(e).startswith(info.key) else f"{info.key}: {e}"
                errors.append(msg)
                bad[sid] = msg
        self.bad = bad
        if self._copies:
            self._remove_copies({layout.last(info.key) for info in listed})
        return out, errors

    def load(self, sid: str) -> Snapshot:
        key = layout.snapshot(sid)
        return Snapshot.from_doc(sid, self.records.get(rec.SNAPSHOT, key), key)

    def _load_copy(self, sid: str) -> Snapshot:
        """A snapshot read through its local copy (see `cached`)."""
        key = layout.snapshot(sid)
        path = os.path.join(self._copies or "", sid)
        try:
            with open(path, "rb") as f:
                return Snapshot.from_doc(sid, self.records.open(rec.SNAPSHOT, key, f.read()), key)
        except (OSError, IntegrityError):
            pass  # no copy, or a damaged one: read the stored object
        raw = self.records.storage.get(key)
        snap = Snapshot.from_doc(sid, self.records.open(rec.SNAPSHOT, key, raw), key)
        _write_copy(self._copies or "", sid, raw)
        return snap

    def _remove_copies(self, listed: set[str]) -> None:
        try:
            names = os.listdir(self._copies or "")
        except OSError:
            return
        for name in names:
            if name not in listed:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self._copies or "", name))

    def save(self, doc: dict, retention: Retention | None = None) -> str:
        if self._copies:  # keep the stored bytes: the writer need not fetch them back
            sid, raw = self.records.seal(rec.SNAPSHOT, doc)
            self.records.storage.put(layout.snapshot(sid), raw, retention=retention)
            _write_copy(self._copies, sid, raw)
        else:
            sid = self.records.put(rec.SNAPSHOT, doc, layout.snapshot, retention)
        self._cache = None
        return sid

    def delete(self, sid: str, *, bypass_governance: bool = False) -> None:
        self.records.storage.delete(layout.snapshot(sid), bypass_governance=bypass_governance)
        self._cache = None

    def find(self, ref: str) -> Snapshot:
        """By full id, a prefix of at least 8 hex characters, or 'latest'.

        A stored snapshot that the reference names but that cannot be read (damaged, malformed,
        or swapped for another snapshot's bytes) is an IntegrityError, never "no snapshot"."""
        snaps = self.all()
        if ref == "latest":
            if not snaps:
                raise NotFound("the repository has no snapshots")
            return snaps[-1]
        ref = ref.lower()
        if len(ref) < 8 or any(c not in "0123456789abcdef" for c in ref):
            raise UsageError(f"snapshot {ref!r}: give a full id, a prefix of at least 8 hex characters, or 'latest'")
        matches = [s for s in snaps if s.id.startswith(ref)]
        bad = sorted(sid for sid in self.bad if sid.startswith(ref))
        if len(matches) + len(bad) > 1:
            raise UsageError(f"snapshot prefix {ref} is ambiguous")
        if bad:
            raise IntegrityError(f"snapshot {bad[0][:8]} cannot be read: {self.bad[bad[0]]}", remedy="check")
        if not matches:
            raise NotFound(f"no snapshot {ref}")
        return matches[0]

    def stored_at(self, sid: str) -> _dt.datetime | None:
        """When storage says the snapshot document was written (None if unknown or gone)."""
        try:
            return self.records.storage.stat(layout.snapshot(sid)).modified
        except NotFound:
            return None

    def forget(self) -> None:
        self._cache = None


def _write_copy(folder: str, sid: str, raw: bytes) -> None:
    """Keep a snapshot's stored bytes locally (a copy we cannot write only costs a read)."""
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".snapshot-")
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, os.path.join(folder, sid))
    except OSError:
        pass
