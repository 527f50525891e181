"""Damage records (FORMAT.md §8.1): which copies of which blobs were found damaged, when, by what.

A damage record is sealed canonical JSON under `damage/<hex BLAKE3(stored bytes)>`:

    {"v": 1, "time": "<ISO 8601>", "found_by": "<what read it>", "host": "<name>",
     "damaged": [{"blob": "<64 hex>", "pack": "<64 hex>", "problem": "<text>"}, ...]}

Records are only ever added. Every reader treats one as hostile: `validate`
checks each field amber reads and raises IntegrityError naming the object.
Pure: no I/O.
"""

from __future__ import annotations

from ..errors import IntegrityError
from . import fields as f

MAX_PAIRS = 1 << 16  # (blob, pack) pairs one record names; a writer splits longer lists
MAX_FOUND_BY = 256  # characters of `found_by` and `host`
MAX_PROBLEM = 1024  # characters of one pair's `problem`


def document(time: str, found_by: str, host: str, pairs: list[tuple[str, str, str]]) -> dict:
    """The record naming `pairs` (blob hex, pack hex, problem), cut to the format's limits."""
    return {
        "v": 1,
        "time": time,
        "found_by": found_by[:MAX_FOUND_BY],
        "host": host[:MAX_FOUND_BY],
        "damaged": [{"blob": b, "pack": p, "problem": why[:MAX_PROBLEM]} for b, p, why in pairs],
    }


def validate(doc: dict, what: str) -> dict:
    """The record, or IntegrityError naming `what` and the first field that is wrong."""
    if type(doc.get("v")) is not int or doc["v"] != 1:
        raise IntegrityError(f"{what}: not an amber damage record")
    f.time(doc.get("time"), what, "time")
    f.text(doc, "found_by", what, limit=MAX_FOUND_BY)
    f.text(doc, "host", what, optional=True, limit=MAX_FOUND_BY)
    damaged = doc.get("damaged")
    if not isinstance(damaged, list) or not 1 <= len(damaged) <= MAX_PAIRS:
        raise f.fail(what, "damaged", f"is not a list of 1 to {MAX_PAIRS} entries")
    for i, pair in enumerate(damaged):
        if not isinstance(pair, dict):
            raise f.fail(what, f"damaged[{i}]", "is not an object")
        f.hex64(pair, "blob", what)
        f.hex64(pair, "pack", what)
        f.text(pair, "problem", what, optional=True, limit=MAX_PROBLEM)
    return doc


def pairs(doc: dict) -> list[tuple[bytes, bytes]]:
    """(blob id, pack id) of every entry of a validated record."""
    return [(bytes.fromhex(p["blob"]), bytes.fromhex(p["pack"])) for p in doc["damaged"]]
