"""Verification records (FORMAT.md §8.2): which packs `check` read whole and found clean, and when.

A verification record is sealed canonical JSON under `verified/<hex BLAKE3(stored bytes)>`:

    {"v": 1, "time": "<ISO 8601>", "host": "<name>",
     "verified": [{"pack": "<64 hex>", "size": <bytes>}, ...]}

Records are only ever added, and they are hints: a record lets
`check --since` skip reading a pack again, nothing more. `validate` checks
every field amber reads and raises IntegrityError naming the object. Pure:
no I/O.
"""

from __future__ import annotations

from ..errors import IntegrityError
from . import fields as f

MAX_PACKS = 1 << 16  # packs one record names; a writer splits longer lists
MAX_HOST = 256


def document(time: str, host: str, packs: list[tuple[str, int]]) -> dict:
    """The record naming `packs` (pack hex, size in bytes) as read clean at `time`."""
    return {"v": 1, "time": time, "host": host[:MAX_HOST], "verified": [{"pack": p, "size": n} for p, n in packs]}


def validate(doc: dict, what: str) -> dict:
    """The record, or IntegrityError naming `what` and the first field that is wrong."""
    if type(doc.get("v")) is not int or doc["v"] != 1:
        raise IntegrityError(f"{what}: not an amber verification record")
    f.time(doc.get("time"), what, "time")
    f.text(doc, "host", what, optional=True, limit=MAX_HOST)
    packs = doc.get("verified")
    if not isinstance(packs, list) or not 1 <= len(packs) <= MAX_PACKS:
        raise f.fail(what, "verified", f"is not a list of 1 to {MAX_PACKS} entries")
    for i, entry in enumerate(packs):
        if not isinstance(entry, dict):
            raise f.fail(what, f"verified[{i}]", "is not an object")
        f.hex64(entry, "pack", what)
        f.integer(entry.get("size"), what, f"verified[{i}].size")
    return doc


def packs(doc: dict) -> list[tuple[bytes, int]]:
    """(pack id, size) of every entry of a validated record."""
    return [(bytes.fromhex(e["pack"]), e["size"]) for e in doc["verified"]]
