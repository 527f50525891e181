"""Shared helpers for the retention tests: a repository on local storage with a fake clock
(`init_repo(path, clock)` and `open_repo(path, clock)` come from tests/sources.py).

The Repository, its storage and the test all use one `FakeClock`, so locks
expire when the test moves the clock, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

from amber.clock import FakeClock
from amber.format.layout import pack as pack_key
from amber.storage.base import Retention

from sources import KDF_N, PASSWORD, PAST_NS, init_repo, make_source, open_repo, rand, write  # noqa: F401 - re-exported

START = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)

HOUR = 3600
DAY = 24 * HOUR


def backup(
    repo,
    src,
    *,
    clock: FakeClock | None = None,
    mode: str | None = None,
    seconds: float | None = None,
    step: float = 60,
    **kw,
):
    """Back up `src`, locked for `seconds` in `mode` if given, then advance the clock by `step`."""
    retention = None
    if seconds is not None:
        retention = Retention(mode or "governance", repo.clock.now() + dt.timedelta(seconds=seconds))
    res = repo.backup([src], retention=retention, **kw)
    snap = repo.find_snapshot(res.snapshot_id)
    if clock is not None and step:
        clock.advance(step)
    return snap


def data_keys(repo) -> set[str]:
    return {i.key for i in repo.storage.list("data/")}


def packs_of(repo, snap) -> set[str]:
    """The pack keys holding blobs a snapshot needs."""
    from amber.retention.locks import needed_objects

    return {k for k in needed_objects(repo, snap) if k.startswith("data/")}


def pack_of_file(repo, snap, path: str) -> str:
    repo.load_index()
    node = repo.node_at(snap, path)
    assert node is not None and node["type"] == "file", path
    return pack_key(repo.blobs.lookup(bytes.fromhex(node["content"][0])).pack)


def tree_digest(root) -> dict:
    """rel path -> sha256 of every file below root."""
    out = {}
    for folder, _dirs, files in os.walk(os.fspath(root)):
        for n in files:
            p = os.path.join(folder, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def restored(target, src) -> str:
    return os.path.join(os.fspath(target), os.path.abspath(os.fspath(src)).lstrip("/"))


def lock_records_dir(repo_path, key: str) -> Path:
    return Path(repo_path, ".locks", *key.split("/"))
