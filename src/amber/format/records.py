"""The small sealed JSON records: config (§6), lock events (§17.2), prune plans, tombstones
and run markers (§17.4). Each `validate_*` checks every field amber reads and raises
IntegrityError naming the object; pure, no I/O."""

from __future__ import annotations

import base64
import re

from ..errors import IntegrityError
from . import fields as f

# -- config (FORMAT.md §6) ----------------------------------------------------------------

CHUNK_MIN_RANGE = (64, 1 << 20)  # FastCDC 2020's own bounds on min, avg and max
CHUNK_AVG_RANGE = (256, 4 << 20)
CHUNK_MAX_RANGE = (1 << 10, 16 << 20)
PACK_SIZE_RANGE = (64 << 10, 1 << 30)  # offsets are u32: a pack stays far below 4 GiB
COMPRESSIONS = ("zstd",)
CHUNKERS = ("fastcdc2020",)
_REPO_ID = re.compile(r"[0-9a-f]{32}")


def validate_config(doc: dict, what: str = "config") -> dict:
    if type(doc.get("v")) is not int or doc["v"] not in (1, 2):
        raise IntegrityError(f"{what}: unsupported repository format {doc.get('v')!r}")
    if doc["v"] == 2:  # format 2: what holds user data is sealed to this content key (FORMAT.md §4.3)
        f.text(doc, "content_key", what)
        try:
            if len(base64.b64decode(doc["content_key"], validate=True)) != 32:
                raise ValueError
        except ValueError:
            raise f.fail(what, "content_key", "is not a base64 X25519 public key") from None
    elif "content_key" in doc:
        raise f.fail(what, "content_key", "belongs to a repository of format 2")
    if not isinstance(doc.get("id"), str) or not _REPO_ID.fullmatch(doc["id"]):
        raise f.fail(what, "id", "is not 32 lowercase hex characters")
    if "created" in doc:
        f.time(doc["created"], what, "created")
    ch = doc.get("chunker")
    if not isinstance(ch, dict):
        raise f.fail(what, "chunker", "is not an object")
    if ch.get("algorithm", CHUNKERS[0]) not in CHUNKERS:
        raise f.fail(what, "chunker.algorithm", f"is not one of {', '.join(CHUNKERS)}")
    lo = f.integer(ch.get("min"), what, "chunker.min", low=CHUNK_MIN_RANGE[0], high=CHUNK_MIN_RANGE[1])
    avg = f.integer(ch.get("avg"), what, "chunker.avg", low=CHUNK_AVG_RANGE[0], high=CHUNK_AVG_RANGE[1])
    hi = f.integer(ch.get("max"), what, "chunker.max", low=CHUNK_MAX_RANGE[0], high=CHUNK_MAX_RANGE[1])
    if not lo <= avg <= hi:
        raise f.fail(what, "chunker", "needs min <= avg <= max")
    if "normalization" in ch:
        f.integer(ch["normalization"], what, "chunker.normalization", high=3)
    f.integer(doc.get("pack_size"), what, "pack_size", low=PACK_SIZE_RANGE[0], high=PACK_SIZE_RANGE[1])
    if "parity" in doc:
        f.integer(doc["parity"], what, "parity", low=1, high=50)
    if doc.get("compression", COMPRESSIONS[0]) not in COMPRESSIONS:
        raise f.fail(what, "compression", f"is not one of {', '.join(COMPRESSIONS)}")
    _retention_settings(doc, what)
    f.text(doc, "program", what, optional=True)
    return doc


LOCK_TIERS = ("daily", "weekly", "monthly", "yearly")  # a lock policy's tiers (FORMAT.md §6.2)


# -- lock events (FORMAT.md §17.2) ------------------------------------------------------------

EVENT_TYPES = ("lock", "hold", "release", "forget", "unlock")


def validate_event(doc: dict, what: str) -> dict:
    if type(doc.get("v")) is not int or doc["v"] != 1:
        raise IntegrityError(f"{what}: not an amber event")
    kind = doc.get("type")
    if kind not in EVENT_TYPES:
        raise f.fail(what, "type", f"is not one of {', '.join(EVENT_TYPES)}")
    f.hex64(doc, "snapshot", what)
    f.time(doc.get("time"), what, "time")
    for name in ("host", "user", "key"):
        f.text(doc, name, what, optional=True)
    f.boolean(doc, "bypass_governance", what)
    f.boolean(doc, "trust_clock", what)
    if kind == "lock":
        f.mode(doc.get("mode"), what, "mode")
        f.time(doc.get("until"), what, "until")
    elif kind == "hold":
        f.text(doc, "reason", what, optional=True)
    elif kind == "forget":
        f.hex64(doc, "run", what, optional=True)
        if "snapshot_time" in doc:
            f.time(doc["snapshot_time"], what, "snapshot_time")
        f.text(doc, "hostname", what, optional=True)
        if "paths" in doc:
            f.strings(doc["paths"], what, "paths")
    return doc


# -- prune plans, tombstones, run markers (FORMAT.md §17.4) -------------------------------------

MAX_PACKS = 1 << 24  # packs one plan or tombstone names


MAX_RUN_TEXT = 256  # characters of a run marker's host, machine_id and boot_id
MAX_BEAT = 86400  # seconds between a run's heartbeats, at most


def validate_prune(doc: dict, what: str) -> dict:
    """A run marker (under running/), a heartbeat (beats/), or a plan or tombstone (prune/)."""
    if type(doc.get("v")) is not int or doc["v"] != 1:
        raise IntegrityError(f"{what}: not an amber prune record")
    f.time(doc.get("time"), what, "time")
    if what.startswith("running/"):
        if "pid" in doc:
            f.integer(doc["pid"], what, "pid", high=(1 << 32) - 1)
        for name in ("host", "machine_id", "boot_id"):
            f.text(doc, name, what, optional=True, limit=MAX_RUN_TEXT)
        for name in ("pidns", "pid_start"):
            if name in doc:
                f.integer(doc[name], what, name)
        if "beat" in doc:
            f.integer(doc["beat"], what, "beat", low=1, high=MAX_BEAT)
        return doc
    if what.startswith("beats/"):
        f.hex64(doc, "run", what)
        return doc
    packs = doc.get("packs")
    if not isinstance(packs, list) or len(packs) > MAX_PACKS or not all(f.is_hex64(p) for p in packs):
        raise f.fail(what, "packs", "is not a list of 64-hex pack ids")
    return doc


# -- settings records and key revocations (FORMAT.md §6.1, §5.3) ----------------------------------

MAX_SETTINGS_VERSION = 10**12 - 1  # 12 digits in its name


def validate_settings(doc: dict, what: str) -> dict:
    """`settings/<version>`: the full settings from that version on."""
    if type(doc.get("v")) is not int or doc["v"] != 1 or "revoked" in doc:
        raise IntegrityError(f"{what}: not an amber settings record")
    f.integer(doc.get("version"), what, "version", low=1, high=MAX_SETTINGS_VERSION)
    _retention_settings(doc, what)
    return doc


def validate_revocation(doc: dict, what: str) -> dict:
    """`revoked/<name>`: a key file's identity that no longer opens the repository."""
    if type(doc.get("v")) is not int or doc["v"] != 1:
        raise IntegrityError(f"{what}: not an amber revocation")
    f.hex64(doc, "revoked", what)
    f.hex64(doc, "key", what)
    f.time(doc.get("time"), what, "time")
    for name in ("host", "user", "by"):
        f.text(doc, name, what, optional=True)
    return doc


def _retention_settings(doc: dict, what: str) -> None:
    """`default_retention` (null or {"mode", "duration"}) and `min_retention` (null or a
    duration): the settings the config holds first and settings records later."""
    dr = doc.get("default_retention")
    if dr is not None:
        if not isinstance(dr, dict):
            raise f.fail(what, "default_retention", "is neither null nor an object")
        f.mode(dr.get("mode"), what, "default_retention.mode")
        f.duration(dr.get("duration"), what, "default_retention.duration")
    if doc.get("min_retention") is not None:
        f.duration(doc["min_retention"], what, "min_retention")
    lp = doc.get("lock_policy")
    if lp is not None:
        if not isinstance(lp, dict) or not isinstance(lp.get("tiers"), dict) or not lp["tiers"]:
            raise f.fail(what, "lock_policy", "is not an object with tiers")
        for name, duration in lp["tiers"].items():
            if name not in LOCK_TIERS:
                raise f.fail(what, "lock_policy.tiers", f"names {str(name)[:40]!r}, not one of {', '.join(LOCK_TIERS)}")
            f.duration(duration, what, f"lock_policy.tiers.{name}")
        f.mode(lp.get("mode"), what, "lock_policy.mode")
    _anomaly_thresholds(doc.get("anomaly_thresholds"), what)


def _anomaly_thresholds(at: object, what: str) -> None:
    """`anomaly_thresholds` (null or an object of at most 32 short names, each a number from 0
    to 1e9); which names mean what is the backup's business (docs/ANOMALIES.md)."""
    if at is None:
        return
    if not isinstance(at, dict) or len(at) > 32:
        raise f.fail(what, "anomaly_thresholds", "is not an object of at most 32 thresholds")
    for name, v in at.items():
        if not isinstance(name, str) or not 0 < len(name) <= 32:
            raise f.fail(what, "anomaly_thresholds", "has a name that is not short text")
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1e9:
            raise f.fail(what, f"anomaly_thresholds.{name}", "is not a number from 0 to 1e9")
