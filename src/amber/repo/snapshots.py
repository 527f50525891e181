"""Snapshots: the model, and the store that lists, reads, writes and finds them."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..clock import from_iso, to_iso
from ..errors import IntegrityError, NotFound, UsageError
from ..format import layout
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
        try:
            return cls(
                id=sid,
                time=from_iso(doc["time"]),
                hostname=str(doc["hostname"]),
                username=str(doc.get("username", "")),
                paths=list(doc["paths"]),
                tags=list(doc.get("tags", [])),
                tree=str(doc["tree"]),
                content_root=str(doc["content_root"]),
                retention=doc.get("retention"),
                summary=dict(doc.get("summary", {})),
                doc=doc,
            )
        except (TypeError, ValueError, AttributeError) as e:
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
        self._cache: list[Snapshot] | None = None

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
        """Read every snapshot afresh: (the readable ones, in storage order; what was wrong with the others)."""
        out, errors = [], []
        for info in self.records.storage.list(layout.SNAPSHOTS):
            try:
                out.append(self.load(layout.last(info.key)))
            except (IntegrityError, NotFound) as e:
                errors.append(str(e))
        return out, errors

    def load(self, sid: str) -> Snapshot:
        key = layout.snapshot(sid)
        return Snapshot.from_doc(sid, self.records.get(rec.SNAPSHOT, key), key)

    def save(self, doc: dict, retention: Retention | None = None) -> str:
        sid = self.records.put(rec.SNAPSHOT, doc, layout.snapshot, retention)
        self._cache = None
        return sid

    def delete(self, sid: str, *, bypass_governance: bool = False) -> None:
        self.records.storage.delete(layout.snapshot(sid), bypass_governance=bypass_governance)
        self._cache = None

    def find(self, ref: str) -> Snapshot:
        """By full id, a prefix of at least 8 hex characters, or 'latest'."""
        snaps = self.all()
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

    def stored_at(self, sid: str) -> _dt.datetime | None:
        """When storage says the snapshot document was written (None if unknown or gone)."""
        try:
            return self.records.storage.stat(layout.snapshot(sid)).modified
        except NotFound:
            return None

    def forget(self) -> None:
        self._cache = None
