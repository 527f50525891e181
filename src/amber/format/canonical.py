"""The JSON encodings of FORMAT.md §2, one function each; every object names the one it uses.

- `ascii_json`: sorted keys, no whitespace, non-ASCII as \\uXXXX escapes. Config,
  trees (and so Merkle digests), snapshots.
- `utf8_json`: sorted keys, no whitespace, UTF-8; a lone surrogate as its \\udcXX
  escape. Audit-log entries (their leaf hashes).
- `sorted_json`: sorted keys, separators ", " and ": ". Lock events, prune plans,
  tombstones and run markers, master key material.
- `key_file_json`: sorted keys, indented by one space, then a newline. Key files.

Readers parse any JSON; only the audit log requires its entries to be
exactly `utf8_json` of what they decode to (its leaves hash those bytes).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import IntegrityError


def ascii_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def utf8_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "backslashreplace"
    )


def sorted_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True).encode()


def key_file_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1).encode() + b"\n"


def decode_object(raw: bytes, what: str, kind: str) -> dict:
    """A JSON object, or IntegrityError naming `what` (never a parser's exception)."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise IntegrityError(f"{what}: not valid JSON") from None
    if not isinstance(doc, dict):
        raise IntegrityError(f"{what}: not {kind}")
    return doc
