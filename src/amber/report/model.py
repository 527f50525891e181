"""The compliance report as one JSON document, gathered from an open repository.

Everything the page, the text summary and `report --json` show comes from `build`: the
renderers add nothing but layout and explanations, so what an auditor reads in the page
is exactly what a script reads in the JSON (docs/REPORT.md describes every field).

Only what the session's key opens is read. A write-only (backup) key opens the audit log,
the lock records and each snapshot's header, not the snapshot documents sealed to the
content key: sizes and file counts then come from the snapshots' audit-log events, and
`access.left_out` says so.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections import Counter
from collections.abc import Iterable

from ..audit import checkpoint as cpfmt
from ..audit import witness as wit
from ..clock import from_iso, to_iso
from ..errors import AmberError, CheckpointError
from ..repository import Repository
from ..retention import clockguard
from ..version import __version__
from . import findings as verdicts
from .horizon import Protected, horizon

REPORT_VERSION = 1
RECENT = 20  # checks and drills listed, newest first (the totals count them all)
MOST_LISTED = 200  # anomalies, overrides, setting changes and verification messages listed at most

CHECK_FIELDS = ("read_data", "read_subset", "ok", "errors", "packs_read", "packs_skipped_verified")
DRILL_FIELDS = (
    "sample",
    "files",
    "bytes",
    "verified",
    "seconds",
    "throughput",
    "rto_seconds",
    "total_files",
    "total_bytes",
    "ok",
    "errors",
)
BACKUP_KEY_LEFT_OUT = (
    "The snapshots' own documents (file lists, trees and each backup's summary) are sealed to the "
    "repository's content key, which a write-only (backup) key does not hold: they were not opened. "
    "Each snapshot's size and file count are taken from its audit-log event instead."
)


def build(repo: Repository) -> dict:
    """The whole report of `repo` as it is now (`repo.clock`)."""
    now = repo.clock.now()
    read_errors: list[str] = []
    events = [ev for ev, _raw in repo.audit.honoured(read_errors)]
    snapshots = _snapshots(repo, events)
    doc = {
        "report": {"version": REPORT_VERSION, "generated": to_iso(now), "program": f"amber {__version__}"},
        "repository": _repository(repo),
        "access": _access(repo),
        "snapshots": snapshots,
        "unreadable_snapshots": list(repo.snapshot_errors)[:MOST_LISTED],
        "hosts": _hosts(snapshots),
        "lock_horizon": horizon(_protected(snapshots), now),
        "holds": [dict(s["hold"], snapshot=s["id"], hostname=s["hostname"]) for s in snapshots if s["hold"]],
        "checks": _history(events, "check", CHECK_FIELDS),
        "drills": _history(events, "drill", DRILL_FIELDS),
        "anomalies": _anomalies(events),
        "overrides": _overrides(repo, events),
        "settings_changes": _setting_changes(events),
        "audit_log": _audit_log(repo, events, read_errors),
    }
    doc["checks"]["last_read_data"] = next((c for c in doc["checks"]["recent"] if c.get("read_data")), None)
    doc["findings"] = verdicts.findings(doc, now)
    return doc


# -- the repository and the key ----------------------------------------------------------------


def _repository(repo: Repository) -> dict:
    where = repo.storage.describe()
    config = repo.sealed_config
    return {
        "id": repo.id,
        "format": config.get("v", 1),
        "backend": where.partition(":")[0] if ":" in where else where,
        "location": where,
        "created": config.get("created"),
        "program": config.get("program"),
        "parity_percent": config.get("parity", 0),
        "settings": repo.settings.to_json(),
        "settings_problems": list(repo.settings_problems) + list(repo.config_problems),
    }


def _access(repo: Repository) -> dict:
    full = repo.keys.can_read
    return {
        "key": repo.key_id[:16],
        "role": "full" if full else "backup",
        "left_out": [] if full else [BACKUP_KEY_LEFT_OUT],
    }


# -- snapshots -----------------------------------------------------------------------------------


def _snapshots(repo: Repository, events: list[dict]) -> list[dict]:
    """Every readable snapshot, oldest first, with its lock, hold and the overrides that touched it."""
    logged = {ev["snapshot"]: ev for ev in events if ev.get("type") == "snapshot" and ev.get("snapshot")}
    held_since = _hold_times(events)
    overrides = repo.snapshot_overrides()
    out = []
    for s in repo.snapshots():
        j = repo.snapshot_json(s, overrides)
        ev = logged.get(s.id)
        details = _details(ev) if ev else {}
        summary = j.get("summary") or {}
        lock = j.get("retention")
        out.append(
            {
                "id": s.id,
                "short_id": s.short_id,
                "time": j["time"],
                "hostname": j["hostname"],
                "username": j.get("username", ""),
                "paths": j["paths"],
                "tags": j["tags"],
                "bytes": _int(summary.get("bytes_total", details.get("bytes"))),
                "files": _int(summary.get("files_total", details.get("files"))),
                "lock": {"mode": lock["mode"], "until": lock["until"], "active": bool(lock.get("active"))}
                if lock
                else None,
                "lock_tier": j.get("lock_tier"),
                "hold": {"reason": j.get("legal_hold_reason"), **held_since.get(s.id, {"since": None, "event": None})}
                if j.get("legal_hold")
                else None,
                "event": ev.get("seq") if ev else None,
                "overrides": [o["description"] for o in j.get("overrides", [])],
            }
        )
    return out


def _hold_times(events: list[dict]) -> dict[str, dict]:
    """snapshot id -> when its standing hold was placed (the first `hold` since its last `release`)."""
    out: dict[str, dict] = {}
    for ev in events:
        sid = ev.get("snapshot")
        if ev.get("type") == "hold" and sid and sid not in out:
            out[sid] = {"since": ev.get("time"), "event": ev.get("seq")}
        elif ev.get("type") == "release" and sid:
            out.pop(sid, None)
    return out


def _hosts(snapshots: list[dict]) -> list[dict]:
    by_host: dict[str, list[dict]] = {}
    for s in snapshots:
        by_host.setdefault(s["hostname"], []).append(s)
    return [
        {
            "hostname": host,
            "snapshots": len(snaps),
            "first": snaps[0]["time"],
            "last": snaps[-1]["time"],
            "locked": sum(1 for s in snaps if s["lock"] and s["lock"]["active"]),
            "held": sum(1 for s in snaps if s["hold"]),
            "unprotected": sum(1 for s in snaps if _unprotected(s)),
        }
        for host, snaps in sorted(by_host.items())
    ]


def _unprotected(s: dict) -> bool:
    return not s["hold"] and not (s["lock"] and s["lock"]["active"])


def _protected(snapshots: list[dict]) -> Iterable[Protected]:
    for s in snapshots:
        until = from_iso(s["lock"]["until"]) if s["lock"] else None
        yield Protected(s["id"], until, bool(s["hold"]), s["bytes"] or 0)


# -- what the audit log records -------------------------------------------------------------------


def _history(events: list[dict], kind: str, fields: tuple[str, ...]) -> dict:
    """The events of one kind: how many, and the newest RECENT with the fields the page shows."""
    found = [ev for ev in events if ev.get("type") == kind]
    recent = []
    for ev in reversed(found[-RECENT:]):
        d = _details(ev)
        row = {"event": ev.get("seq"), "time": ev.get("time"), "by": _actor(ev)}
        if ev.get("snapshot"):
            row["snapshot"] = ev["snapshot"]
        row.update({f: d.get(f) for f in fields})
        recent.append(row)
    return {"total": len(found), "last": recent[0] if recent else None, "recent": recent}


def _anomalies(events: list[dict]) -> dict:
    """`anomaly` events (a backup's ransomware signals crossed a threshold), newest first."""
    found = [ev for ev in events if ev.get("type") == "anomaly"]
    rows = []
    for ev in reversed(found[-MOST_LISTED:]):
        d = _details(ev)
        signals = d.get("signals") if isinstance(d.get("signals"), dict) else {}
        reasons = d.get("reasons") if isinstance(d.get("reasons"), list) else []
        rows.append(
            {
                "event": ev.get("seq"),
                "time": ev.get("time"),
                "snapshot": ev.get("snapshot") or d.get("snapshot"),
                "parent": d.get("parent"),
                "signals": signals,
                "reasons": [str(r) for r in reasons],
                "held": d.get("held"),
            }
        )
    return {"total": len(found), "recent": rows}


def _overrides(repo: Repository, events: list[dict]) -> list[dict]:
    """Every --bypass-governance and --trust-clock, and every change made under a clock jump."""
    times = {ev.get("seq"): ev.get("time") for ev in events}
    return [
        {
            "kind": o.kind,
            "event_type": o.type,
            "snapshot": o.snapshot,
            "event": o.event,
            "time": times.get(o.event),
            "confirmed": o.confirmed,
            "description": o.describe(),
        }
        for o in clockguard.repository_overrides(repo)[:MOST_LISTED]
    ]


def _setting_changes(events: list[dict]) -> list[dict]:
    """The settings the repository was made with, then each `setting` event, oldest first."""
    out = []
    for ev in events:
        d = _details(ev)
        if ev.get("type") == "init":
            config = d.get("config") if isinstance(d.get("config"), dict) else {}
            row = {"version": 0, "default_retention": d.get("default_retention"), "min_retention": None}
            row.update(min_retention=d.get("min_retention"), lock_policy=config.get("lock_policy"))
        elif ev.get("type") == "setting":
            row = {f: d.get(f) for f in ("version", "default_retention", "min_retention", "lock_policy")}
        else:
            continue
        out.append(dict(row, event=ev.get("seq"), time=ev.get("time"), by=_actor(ev)))
    return out[:MOST_LISTED]


def _audit_log(repo: Repository, events: list[dict], read_errors: list[str]) -> dict:
    """The log's size, newest checkpoint, verification from this client's remembered checkpoint,
    its witnesses (the newest checkpoint each holds), and every trust reset."""
    out: dict = {
        "events": len(events),
        "first_event": events[0].get("time") if events else None,
        "last_event": events[-1].get("time") if events else None,
        "by_type": dict(sorted(Counter(str(ev.get("type")) for ev in events).items())),
        "checkpoint": _checkpoint(repo, events),
        "trust_resets": [
            {"event": ev.get("seq"), "time": ev.get("time"), "reason": _details(ev).get("reason")}
            for ev in events
            if ev.get("type") == "trust-reset"
        ],
        "read_errors": read_errors[:MOST_LISTED],
    }
    out.update(_verification(repo))
    return out


def _checkpoint(repo: Repository, events: list[dict]) -> dict | None:
    """The newest signed checkpoint: its size, root, and the time of the last event it covers."""
    try:
        cp = cpfmt.parse(repo.latest_checkpoint())[0]
    except (AmberError, CheckpointError):
        return None
    last = events[cp.size - 1].get("time") if 0 < cp.size <= len(events) else None
    return {"size": cp.size, "root": cp.root.hex(), "time": last}


def _verification(repo: Repository) -> dict:
    """`audit verify` from this client's remembered checkpoint, without remembering anything."""
    try:
        rep = repo.verify_audit_log(remember=False)
    except AmberError as e:
        return {"verified": {"ok": False, "errors": [str(e)], "warnings": []}, "witnesses": []}
    witnesses = [
        {"name": w.get("name"), "url": w.get("url"), "newest_size": w.get("size"), "ok": w.get("ok")}
        for w in rep.witnesses
    ]
    known = {w["name"] for w in witnesses}
    for w in repo.witness_list():  # a TSA witness is checked by its timestamps, not listed above
        if w["name"] not in known:
            witnesses.append({"name": w["name"], "url": w.get("url"), "newest_size": None, "ok": None})
    cosigned = _cosignatures(repo)
    for w in witnesses:
        w["cosigned"] = cosigned.get(w["name"])
        stamps = [t for t in rep.timestamps if t.get("tsa") == w["name"]]
        if stamps:
            newest = max(stamps, key=lambda t: t.get("size") or 0)
            w.update(newest_size=newest.get("size"), ok=newest.get("ok"), timestamp=newest.get("gen_time"))
    return {
        "verified": {
            "ok": rep.ok,
            "size": rep.size,
            "remembered_size": rep.remembered,
            "errors": rep.errors[:MOST_LISTED],
            "warnings": rep.warnings[:MOST_LISTED],
        },
        "witnesses": witnesses,
    }


def _cosignatures(repo: Repository) -> dict[str, dict]:
    """name -> the size and time of the newest checkpoint each `amber serve` witness cosigned
    for this client (kept in its state, its cosignature checked against the pinned key)."""
    out = {}
    for w in repo.audit.witnesses(lambda message: None):
        if not isinstance(w, wit.RestWitness):
            continue
        try:
            with open(os.path.join(w.state_dir, "cosigned"), "rb") as f:
                cp, stamp = cpfmt.verify_cosignature(f.read(cpfmt.MAX_NOTE), w.signer, w.key)
        except (OSError, CheckpointError, ValueError):
            continue
        out[w.name] = {"size": cp.size, "time": to_iso(_dt.datetime.fromtimestamp(stamp, _dt.UTC))}
    return out


# -- small helpers -------------------------------------------------------------------------------


def _details(ev: dict | None) -> dict:
    d = (ev or {}).get("details")
    return d if isinstance(d, dict) else {}


def _actor(ev: dict) -> str | None:
    a = ev.get("actor")
    if not isinstance(a, dict):
        return None
    return f"{a.get('user', '?')}@{a.get('host', '?')}"


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
