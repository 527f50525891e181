"""One audit-log event as stored: its checks on read (docs/AUDIT-LOG.md §4.1, §4.2). Pure."""

from __future__ import annotations

import json
import re

from ..clock import from_iso
from ..errors import IntegrityError
from ..format.canonical import utf8_json
from . import merkle
from .authors import unb64

ENTRY_TYPE = re.compile(r"[a-z][a-z0-9-]{0,31}")
MAX_ENTRY_TEXT = 4096


def validate_entry(ev: dict, what: str) -> dict:
    """The fields every reader of a log entry relies on (docs/AUDIT-LOG.md §3): IntegrityError
    naming the entry otherwise. `details` is free-form but must be an object."""
    if type(ev.get("v")) is not int or ev["v"] != 1:
        raise IntegrityError(f"{what}: not an amber log entry (v)")
    if not isinstance(ev.get("type"), str) or not ENTRY_TYPE.fullmatch(ev["type"]):
        raise IntegrityError(f"{what}: type is not an event type")
    if not isinstance(ev.get("time"), str) or len(ev["time"]) > 64:
        raise IntegrityError(f"{what}: time is not an ISO 8601 time")
    try:
        from_iso(ev["time"])
    except (ValueError, OverflowError):
        raise IntegrityError(f"{what}: time is not an ISO 8601 time") from None
    if "snapshot" in ev and not _is_hex64(ev["snapshot"]):
        raise IntegrityError(f"{what}: snapshot is not 64 lowercase hex characters")
    actor = ev.get("actor", {})
    if not isinstance(actor, dict) or any(not isinstance(v, str) or len(v) > MAX_ENTRY_TEXT for v in actor.values()):
        raise IntegrityError(f"{what}: actor is not an object of strings")
    if not isinstance(ev.get("details", {}), dict):
        raise IntegrityError(f"{what}: details is not an object")
    if ("author" in ev or "sig" in ev) and (unb64(ev.get("author"), 32) is None or unb64(ev.get("sig"), 64) is None):
        raise IntegrityError(f"{what}: author and sig are not base64 of an Ed25519 public key and signature")
    if ev["type"] == "snapshot":
        d = ev.get("details", {})
        if not _is_hex64(ev.get("snapshot")) or not _is_hex64(d.get("tree")) or not _is_hex64(d.get("content_root")):
            raise IntegrityError(f"{what}: a snapshot event without a valid snapshot, tree and content root")
    return ev


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and not value.strip("0123456789abcdef")


def parse_entry(raw: bytes, seq: int, what: str) -> dict:
    """The event whose canonical bytes are `raw`, at position `seq`; IntegrityError naming
    `what` for anything that is not a canonical, well-formed event at that position."""
    try:
        ev = json.loads(raw)
    except (ValueError, RecursionError):
        raise IntegrityError(f"{what}: not JSON") from None
    if not isinstance(ev, dict) or utf8_json(ev) != raw:
        raise IntegrityError(f"{what}: not a canonical event")
    if type(ev.get("seq")) is not int or ev["seq"] != seq:
        raise IntegrityError(f"{what}: its seq is not its position {seq}")
    return validate_entry(ev, what)


def leaves(entries: list[tuple[dict, bytes]]) -> list[bytes]:
    """The leaf hash of each (event, canonical bytes) entry, in order."""
    return [merkle.leaf_hash(raw) for _ev, raw in entries]
