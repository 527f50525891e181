"""The folders a mount shows above the snapshots' own trees, as restic lays them out.

    snapshots/<time>/<the backed-up absolute paths>   every snapshot, and `latest` -> the newest
    ids/<short id>/...
    hosts/<host>/<time>/...                          and hosts/<host>/latest
    tags/<tag>/<time>/...                            and tags/<tag>/latest

<time> is the snapshot's time in UTC, ISO 8601 to the second (2026-12-02T05:40:12Z);
snapshots of the same second get -1, -2, ... in the order of their ids. Host names and
tags are file names here: a '/' in one becomes '_', and one that cannot be a file name
('', '.', '..', or with NUL) is left out of hosts/ and tags/.

Pure: built from a list of snapshots, no I/O.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from ..repo.snapshots import Snapshot

TOP = ("hosts", "ids", "snapshots", "tags")
LATEST = "latest"


@dataclass(frozen=True, slots=True)
class Link:
    """A symbolic link the mount shows (`latest`)."""

    target: str


FOLDER = "folder"  # the value of a name that is itself a folder of the views

Entry = Snapshot | Link | str


@dataclass(frozen=True, slots=True)
class Views:
    """Every folder above the snapshots: its path ('' is the root, 'hosts/h1') -> name -> entry,
    and per folder the newest time of a snapshot below it (its mtime)."""

    folders: dict[str, dict[str, Entry]]
    times: dict[str, _dt.datetime]


def time_names(snaps: list[Snapshot]) -> dict[str, str]:
    """snapshot id -> its folder name, unique among `snaps`."""
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for s in sorted(snaps, key=lambda s: (s.time, s.id)):
        base = s.time.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        n = seen.get(base, 0)
        seen[base] = n + 1
        out[s.id] = base if n == 0 else f"{base}-{n}"
    return out


def file_name(text: str) -> str | None:
    """A host name or tag as a file name, or None where it cannot be one."""
    name = text.replace("/", "_")
    if name in ("", ".", "..") or "\x00" in name:
        return None
    return name


def build(snaps: list[Snapshot]) -> Views:
    """The views of these snapshots (oldest first or in any order)."""
    snaps = sorted(snaps, key=lambda s: (s.time, s.id))
    names = time_names(snaps)
    folders: dict[str, dict[str, Entry]] = {"": dict.fromkeys(TOP, FOLDER)}
    folders.update({top: {} for top in TOP})
    shorts = [s.short_id for s in snaps]
    for s in snaps:
        short = s.short_id if shorts.count(s.short_id) == 1 else s.id
        folders["ids"][short] = s
        _add(folders, "snapshots", names[s.id], s)
        host = file_name(s.hostname)
        if host is not None:
            _add(folders, f"hosts/{host}", names[s.id], s)
            folders["hosts"][host] = FOLDER
        for tag in s.tags:
            t = file_name(tag)
            if t is not None:
                _add(folders, f"tags/{t}", names[s.id], s)
                folders["tags"][t] = FOLDER
    times: dict[str, _dt.datetime] = {}
    for path, entries in folders.items():
        if not entries or path in ("", "ids", "hosts", "tags"):
            continue
        newest = _newest(entries)
        entries[LATEST] = Link(names[newest.id])
        times[path] = newest.time
    if snaps:
        times[""] = times["hosts"] = times["tags"] = times["ids"] = snaps[-1].time
    return Views(folders, times)


def _add(folders: dict[str, dict[str, Entry]], path: str, name: str, snap: Snapshot) -> None:
    folders.setdefault(path, {})[name] = snap


def _newest(entries: dict[str, Entry]) -> Snapshot:
    return max((e for e in entries.values() if isinstance(e, Snapshot)), key=lambda s: (s.time, s.id))
