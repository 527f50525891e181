"""Snapshot documents: `ascii_json`, sealed as KIND_SNAPSHOT under snapshots/<id>.

`decode` validates every field amber reads (FORMAT.md §12) before anything
else sees the document: one malformed snapshot is an IntegrityError naming
it, never a crash in a reader.
"""

from __future__ import annotations

import json

from ..errors import IntegrityError
from . import fields as f
from .canonical import ascii_json

REQUIRED = ("time", "hostname", "paths", "tree", "content_root")
MAX_ID = (1 << 32) - 1  # uid and gid
SUMMARY_INTS = (
    "files_new",
    "files_changed",
    "files_unmodified",
    "dirs",
    "files_total",
    "bytes_total",
    "bytes_read",
    "bytes_added",
    "errors",
)
MAX_DURATION_S = 1e9  # seconds a backup may say it took (about 31 years)


def encode(doc: dict) -> bytes:
    return ascii_json(doc)


def decode(raw: bytes, what: str) -> dict:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise IntegrityError(f"{what}: not valid JSON") from None
    if not isinstance(doc, dict) or type(doc.get("v")) is not int or doc["v"] != 1:
        raise IntegrityError(f"{what}: not an amber snapshot")
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise IntegrityError(f"{what}: not an amber snapshot (no {', '.join(missing)})")
    validate(doc, what)
    return doc


def validate(doc: dict, what: str) -> dict:
    """Every field of a snapshot document amber reads, checked; IntegrityError naming `what`."""
    f.time(doc.get("time"), what, "time")
    f.text(doc, "hostname", what)
    f.text(doc, "username", what, optional=True)
    for name in ("uid", "gid"):
        if name in doc:
            f.integer(doc[name], what, name, high=MAX_ID)
    paths = f.strings(doc.get("paths"), what, "paths")
    if any(not p.startswith("/") for p in paths):
        raise f.fail(what, "paths", "holds a path that is not absolute")
    for name in ("tags", "excludes"):
        if name in doc:
            f.strings(doc[name], what, name)
    f.hex64(doc, "tree", what)
    f.hex64(doc, "content_root", what)
    f.hex64(doc, "parent", what, optional=True)
    f.hex64(doc, "run", what, optional=True)
    f.text(doc, "program", what, optional=True)
    f.retention(doc.get("retention"), what)
    summary = doc.get("summary", {})
    if not isinstance(summary, dict):
        raise f.fail(what, "summary", "is not an object")
    for name in SUMMARY_INTS:
        if name in summary:
            f.integer(summary[name], what, f"summary.{name}")
    if "duration_s" in summary:
        f.number(summary["duration_s"], what, "summary.duration_s", high=MAX_DURATION_S)
    return doc
