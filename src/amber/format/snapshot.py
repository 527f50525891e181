"""Snapshot documents: `ascii_json`, sealed as KIND_SNAPSHOT under snapshots/<id>."""

from __future__ import annotations

import json

from ..errors import IntegrityError
from .canonical import ascii_json

REQUIRED = ("time", "hostname", "paths", "tree", "content_root")


def encode(doc: dict) -> bytes:
    return ascii_json(doc)


def decode(raw: bytes, what: str) -> dict:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise IntegrityError(f"{what}: not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("v") != 1 or any(k not in doc for k in REQUIRED):
        raise IntegrityError(f"{what}: not an amber snapshot")
    return doc
