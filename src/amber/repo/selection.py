"""Choosing snapshots as restic does (pure): filters, groups, the newest per group, and the
tags that `tag` events add to and remove from a snapshot after it was written.

Filters (`--host`, `--path`, `--tag`): a snapshot passes when its host is any of those given,
its paths include every path given, and it has every tag of at least one `--tag` list
("a,b" means a and b; two `--tag`s mean either; an empty list matches untagged snapshots).
They narrow what `latest` means; a snapshot named by id is taken as named.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import UsageError
from ..format.fields import MAX_LIST, MAX_TEXT
from .snapshots import Snapshot

GROUP_FIELDS = {"host": "host", "hosts": "host", "path": "paths", "paths": "paths", "tag": "tags", "tags": "tags"}
MAX_TAG = MAX_TEXT  # characters of one tag in a `tag` event: as in a snapshot (format/fields.py)
MAX_TAGS = MAX_LIST  # tags one `tag` event may add or remove: as many as a snapshot may hold


def tag_list(text: str) -> frozenset[str]:
    """The tags of one comma-separated `--tag` value, empty parts dropped."""
    return frozenset(t.strip() for t in text.split(",") if t.strip())


def _clean_path(p: str) -> str:
    return posixpath.normpath(p) if p.startswith("/") else p.rstrip("/") or p


@dataclass(frozen=True, slots=True)
class SnapshotFilter:
    """`--host`, `--path` and `--tag` as restic reads them (see the module docstring)."""

    hosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    tags: tuple[frozenset[str], ...] = ()

    @classmethod
    def of(cls, hosts: Iterable[str] = (), paths: Iterable[str] = (), tags: Iterable[str] = ()) -> SnapshotFilter:
        return cls(tuple(hosts), tuple(_clean_path(p) for p in paths), tuple(tag_list(t) for t in tags))

    def empty(self) -> bool:
        return not (self.hosts or self.paths or self.tags)

    def matches(self, snap: Snapshot) -> bool:
        if self.hosts and snap.hostname not in self.hosts:
            return False
        if self.paths and not set(self.paths) <= {_clean_path(p) for p in snap.paths}:
            return False
        if self.tags:
            have = set(snap.tags)
            return any((not want and not have) or (want and want <= have) for want in self.tags)
        return True

    def select(self, snaps: Iterable[Snapshot]) -> list[Snapshot]:
        return [s for s in snaps if self.matches(s)]

    def describe(self) -> str:
        """The filters as given, for a message such as "no snapshot of host x"."""
        parts = [f"--host {h}" for h in self.hosts] + [f"--path {p}" for p in self.paths]
        parts += [f"--tag {','.join(sorted(t))}" for t in self.tags]
        return " ".join(parts)


def parse_group_by(text: str | None) -> tuple[str, ...]:
    """The fields of `--group-by host,paths,tags` (any of them, in that order); () for ""."""
    if not text:
        return ()
    fields = set()
    for part in text.split(","):
        name = GROUP_FIELDS.get(part.strip())
        if name is None:
            raise UsageError(f"--group-by: {part.strip()!r} is not host, paths or tags")
        fields.add(name)
    return tuple(f for f in ("host", "paths", "tags") if f in fields)


def group_key(snap: Snapshot, fields: tuple[str, ...]) -> dict:
    """restic's group key: hostname, paths and tags (sorted) where grouped by, else null."""
    return {
        "hostname": snap.hostname if "host" in fields else None,
        "paths": sorted(snap.paths) if "paths" in fields else None,
        "tags": sorted(snap.tags) if "tags" in fields else None,
    }


def group(snaps: Iterable[Snapshot], fields: tuple[str, ...]) -> list[tuple[dict, list[Snapshot]]]:
    """(group key, its snapshots in the order given), groups in the order first seen."""
    out: dict[tuple, tuple[dict, list[Snapshot]]] = {}
    for s in snaps:
        key = group_key(s, fields)
        ident = (key["hostname"], tuple(key["paths"] or ()), tuple(key["tags"] or ()))
        out.setdefault(ident, (key, []))[1].append(s)
    return list(out.values())


def newest(snaps: list[Snapshot], n: int) -> list[Snapshot]:
    """The newest `n` snapshots of each host and set of paths (restic's `--latest`), oldest first."""
    per: dict[tuple, list[Snapshot]] = {}
    for s in sorted(snaps, key=lambda s: (s.time, s.id), reverse=True):
        kept = per.setdefault((s.hostname, tuple(s.paths)), [])
        if len(kept) < n:
            kept.append(s)
    chosen = {s.id for kept in per.values() for s in kept}
    return [s for s in snaps if s.id in chosen]


# -- tags changed after the fact: `tag` events of the audit log ---------------------------------------


def tag_change(ev: dict) -> tuple[str, list[str], list[str]] | None:
    """(snapshot id, tags added, tags removed) of a well-formed `tag` event, else None."""
    d = ev.get("details")
    sid = ev.get("snapshot")
    if ev.get("type") != "tag" or not isinstance(d, dict) or not isinstance(sid, str):
        return None
    add, remove = d.get("add", []), d.get("remove", [])
    for tags in (add, remove):
        if type(tags) is not list or len(tags) > MAX_TAGS:
            return None
        # commas are allowed: a snapshot written before `--tag a,b` meant two tags may hold one
        if any(type(t) is not str or not t or len(t) > MAX_TAG for t in tags):
            return None
    return sid, add, remove


def tag_problem(ev: dict) -> str | None:
    """Why a `tag` event changes nothing (it is malformed), for `audit verify`; None if it is well-formed."""
    if ev.get("type") != "tag" or tag_change(ev) is not None:
        return None
    return (
        f"event {ev.get('seq')} (tag, {ev.get('time')}): not a tag change (add and remove must be lists "
        f"of at most {MAX_TAGS} tags of 1 to {MAX_TAG} characters): ignored"
    )


def apply_tags(tags: list[str], changes: Iterable[tuple[list[str], list[str]]]) -> list[str]:
    """`tags` after each (add, remove) in order: added ones appended, then removed ones dropped."""
    out = list(tags)
    for add, remove in changes:
        out += [t for t in add if t not in out]
        out = [t for t in out if t not in remove]
    return out


def with_tags(snaps: Iterable[Snapshot], events: Iterable[dict]) -> list[Snapshot]:
    """The snapshots with their `tag` events (honoured log events, in log order) folded in.
    An event naming no snapshot given changes nothing; a malformed one is skipped."""
    changes: dict[str, list[tuple[list[str], list[str]]]] = {}
    for ev in events:
        change = tag_change(ev)
        if change is not None:
            changes.setdefault(change[0], []).append(change[1:])
    return [dataclasses.replace(s, tags=apply_tags(s.tags, changes[s.id])) if s.id in changes else s for s in snaps]


def select_snapshots(snaps: Iterable[Snapshot], *, tags=(), hosts=(), paths=()) -> list[Snapshot]:
    """The snapshots passing `--tag`, `--host` and `--path` filters (an empty filter passes all)."""
    return SnapshotFilter.of(hosts, paths, tags).select(snaps)
