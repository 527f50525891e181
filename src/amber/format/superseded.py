"""Supersede records (FORMAT.md §9.1): index files that `repair index` replaced.

A supersede record is sealed canonical JSON under `superseded/<hex BLAKE3(stored bytes)>`:

    {"v": 1, "time": "<ISO 8601>", "host": "<name>",
     "superseded": [{"key": "index/<64 hex>", "sha256": "<64 hex of its stored bytes>", "problem": "<text>"}, ...],
     "by": ["index/<64 hex>", ...]}

An index file is superseded only while its stored bytes have the SHA-256 the record names:
bytes written over it later are not. Pure: no I/O.
"""

from __future__ import annotations

from ..errors import IntegrityError
from . import fields as f

MAX_ENTRIES = 1 << 16
MAX_TEXT = 1024


def document(time: str, host: str, superseded: list[tuple[str, str, str]], by: list[str]) -> dict:
    """The record naming `superseded` (key, SHA-256 hex, problem), replaced by the index files `by`."""
    return {
        "v": 1,
        "time": time,
        "host": host[:MAX_TEXT],
        "superseded": [{"key": k, "sha256": h, "problem": why[:MAX_TEXT]} for k, h, why in superseded],
        "by": by,
    }


def validate(doc: dict, what: str) -> dict:
    """The record, or IntegrityError naming `what` and the first field that is wrong."""
    if type(doc.get("v")) is not int or doc["v"] != 1:
        raise IntegrityError(f"{what}: not an amber supersede record")
    f.time(doc.get("time"), what, "time")
    f.text(doc, "host", what, optional=True, limit=MAX_TEXT)
    entries = doc.get("superseded")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
        raise f.fail(what, "superseded", f"is not a list of 1 to {MAX_ENTRIES} entries")
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise f.fail(what, f"superseded[{i}]", "is not an object")
        _index_key(e.get("key"), what, f"superseded[{i}].key")
        f.hex64(e, "sha256", what)
        f.text(e, "problem", what, optional=True, limit=MAX_TEXT)
    by = doc.get("by")
    if not isinstance(by, list) or len(by) > MAX_ENTRIES:
        raise f.fail(what, "by", "is not a list of index files")
    for i, key in enumerate(by):
        _index_key(key, what, f"by[{i}]")
    return doc


def _index_key(key: object, what: str, field: str) -> str:
    if not isinstance(key, str) or not key.startswith("index/") or not f.is_hex64(key[len("index/") :]):
        raise f.fail(what, field, "is not an index file's key")
    return key
