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
    f.hex64(doc, "repaired_from", what, optional=True)
    if doc.get("lock_tier") is not None and doc["lock_tier"] not in ("daily", "weekly", "monthly", "yearly"):
        raise f.fail(what, "lock_tier", "is not a lock-policy tier")
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


# -- format 2: a header any key opens, and the document sealed to the content key ----------------
#
#     b"AMBS\x02" | u32 LE length of the header envelope | header envelope | document envelope
#
# The header envelope (KIND_SNAPSHOT_HEADER, under the data key) holds `ascii_json` of what a
# write-only key may see (HEADER_FIELDS), the writer key the document is sealed under and the
# fingerprint of the content key it is sealed to, and optionally the packs the snapshot uses
# (written by a write-only backup, so a write-only `lock` knows what to extend). The document
# envelope (KIND_SNAPSHOT, algorithm 2) holds the whole document, as in format 1.

MAGIC2 = b"AMBS\x02"
_LEN = 4
HEADER_FIELDS = ("time", "hostname", "username", "paths", "tags", "retention", "lock_tier")
MAX_HEADER = 16 << 20
MAX_PACKS = 1 << 20


def is_sealed(raw: bytes | memoryview) -> bool:
    return bytes(raw[: len(MAGIC2)]) == MAGIC2


def join_sealed(header_envelope: bytes, document_envelope: bytes) -> bytes:
    return MAGIC2 + len(header_envelope).to_bytes(_LEN, "little") + header_envelope + document_envelope


def split_sealed(raw: bytes, what: str) -> tuple[bytes, bytes]:
    """(header envelope, document envelope) of a format-2 snapshot object."""
    start = len(MAGIC2) + _LEN
    if not is_sealed(raw) or len(raw) < start:
        raise IntegrityError(f"{what}: not an amber snapshot of format 2")
    n = int.from_bytes(raw[len(MAGIC2) : start], "little")
    if n > MAX_HEADER or start + n >= len(raw):
        raise IntegrityError(f"{what}: header length {n} out of bounds")
    return raw[start : start + n], raw[start + n :]


def header_of(doc: dict, writer: str, recipient: str, packs: list[str] | None = None) -> dict:
    """The header of a document: its HEADER_FIELDS, the writer key (base64) and the recipient
    key's fingerprint (hex)."""
    head = {"v": 2, "writer": writer, "recipient": recipient}
    head.update({k: doc[k] for k in HEADER_FIELDS if k in doc})
    if packs is not None:
        head["packs"] = packs
    return head


def decode_header(raw: bytes, what: str) -> dict:
    try:
        head = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise IntegrityError(f"{what}: header is not valid JSON") from None
    if not isinstance(head, dict) or type(head.get("v")) is not int or head["v"] != 2:
        raise IntegrityError(f"{what}: not an amber snapshot header")
    f.time(head.get("time"), what, "time")
    f.text(head, "hostname", what)
    f.text(head, "username", what, optional=True)
    paths = f.strings(head.get("paths"), what, "paths")
    if any(not p.startswith("/") for p in paths):
        raise f.fail(what, "paths", "holds a path that is not absolute")
    if "tags" in head:
        f.strings(head["tags"], what, "tags")
    f.retention(head.get("retention"), what)
    f.text(head, "writer", what)
    f.text(head, "recipient", what)
    if len(head["recipient"]) != 16 or head["recipient"].strip("0123456789abcdef"):
        raise f.fail(what, "recipient", "is not 16 lowercase hex characters")
    packs = head.get("packs")
    if packs is not None and (
        not isinstance(packs, list) or len(packs) > MAX_PACKS or not all(f.is_hex64(p) for p in packs)
    ):
        raise f.fail(what, "packs", "is not a list of pack ids")
    return head


def header_matches(head: dict, doc: dict) -> bool:
    """Whether a header says what its document says (a full key checks it: a writer may lie)."""
    return all(head.get(k) == doc.get(k) for k in HEADER_FIELDS if k in head or k in doc)
