"""Where every object lives in storage: each prefix and each name, in one place.

The layout is FORMAT.md §3. Names derived from content are the unkeyed
BLAKE3 of the stored bytes, in lowercase hex; the audit log numbers its
objects instead. Nothing else in amber spells a storage key.
"""

from __future__ import annotations

CONFIG = "config"
KEYS = "keys/"
DATA = "data/"
INDEX = "index/"
SNAPSHOTS = "snapshots/"
LOCKS = "locks/"
PRUNE = "prune/"
RUNNING = "running/"
BEATS = "beats/"  # heartbeats of running backups (FORMAT.md §17.4)
LOG = "log/"
LOG_ENTRIES = "log/entries/"
LOG_CHECKPOINTS = "log/checkpoints/"
LOG_TILE = "log/tile/"  # the tiled log (docs/AUDIT-LOG.md §2.2); names in audit/tiles.py
LOG_TIMESTAMPS = "log/timestamps/"  # RFC 3161 timestamps of checkpoints (docs/AUDIT-LOG.md §14.6)
SETTINGS = "settings/"
REVOKED = "revoked/"
DAMAGE = "damage/"
PARITY = "parity/"  # Reed–Solomon parity of each pack (FORMAT.md §8.3)
SUPERSEDED = "superseded/"  # index files `repair index` replaced (FORMAT.md §9.1)
VERIFIED = "verified/"

PLAN = "plan-"
TOMB = "tomb-"
SEQ_DIGITS = 12


def key_file(key_id: str) -> str:
    return KEYS + key_id


def pack(pack_id: bytes) -> str:
    h = pack_id.hex()
    return f"{DATA}{h[:2]}/{h}"


def index_file(name: str) -> str:
    return INDEX + name


def snapshot(snapshot_id: str) -> str:
    return SNAPSHOTS + snapshot_id


def event(snapshot_id: str, event_id: str) -> str:
    return f"{LOCKS}{snapshot_id}/{event_id}"


def prune_plan(name: str) -> str:
    return PRUNE + PLAN + name


def prune_tomb(name: str) -> str:
    return PRUNE + TOMB + name


def run_marker(name: str) -> str:
    return RUNNING + name


def heartbeat(name: str) -> str:
    return BEATS + name


def settings_record(version: int) -> str:
    return f"{SETTINGS}{version:0{SEQ_DIGITS}d}"


def settings_version(key: str) -> int | None:
    """The version a `settings/` key names, or None if it is not one."""
    name = key[len(SETTINGS) :] if key.startswith(SETTINGS) else ""
    return int(name) if len(name) == SEQ_DIGITS and name.isascii() and name.isdigit() else None


def revocation(name: str) -> str:
    return REVOKED + name


def damage_record(name: str) -> str:
    return DAMAGE + name


def parity(pack_id: bytes) -> str:
    """The parity object of a pack."""
    return PARITY + pack_id.hex()


def superseded_record(name: str) -> str:
    return SUPERSEDED + name


def verified_record(name: str) -> str:
    return VERIFIED + name


def log_entry(seq: int) -> str:
    return f"{LOG_ENTRIES}{seq:0{SEQ_DIGITS}d}"


def log_checkpoint(size: int) -> str:
    return f"{LOG_CHECKPOINTS}{size:0{SEQ_DIGITS}d}"


def log_timestamp(tsa: str, size: int) -> str:
    """Where the timestamp a time-stamping authority witness gave the checkpoint of `size` is kept."""
    return f"{LOG_TIMESTAMPS}{tsa}/{size:0{SEQ_DIGITS}d}"


def log_slot(key: str, folder: str = LOG_ENTRIES) -> int | None:
    """The number a well-formed `log/entries/` (or, given `folder`, `log/checkpoints/`) key
    carries: exactly 12 ASCII digits after the folder; None for any other name."""
    name = key[len(folder) :] if key.startswith(folder) else ""
    if len(name) != SEQ_DIGITS or not (name.isascii() and name.isdigit()):
        return None
    return int(name)


def last(key: str) -> str:
    """The key's last segment."""
    return key.rsplit("/", 1)[-1]


def content_name(key: str) -> str:
    """The hash a content-named object's key carries (`plan-`/`tomb-` taken off)."""
    name = last(key)
    for tag in (PLAN, TOMB):
        if name.startswith(tag):
            return name[len(tag) :]
    return name


def pack_id(key: str) -> bytes | None:
    """The pack id a `data/` key names, or None if it is not a well-formed pack key."""
    name = last(key)
    if len(name) != 64:
        return None
    try:
        pid = bytes.fromhex(name)
    except ValueError:
        return None
    return pid if key == pack(pid) else None


def event_key_parts(key: str) -> tuple[str, str] | None:
    """(snapshot id, event id) of a `locks/` key, or None if it is not one."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != LOCKS:
        return None
    return parts[1], parts[2]
