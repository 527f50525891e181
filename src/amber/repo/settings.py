"""Repository settings after `init`: versioned write-once records, each with its audit event.

The config is written once and pinned by the `init` event; a setting changed
later (default retention, minimum retention) is a new `settings/<version>`
record holding the full settings from then on (FORMAT.md §6.1), followed by
a `setting` audit event that names its version and the SHA-256 of its stored
bytes. A record counts only when it authenticates and its event is in the
log: one planted beside them is ignored and reported. The minimum retention
never goes down: the effective minimum is the highest any logged version set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from ..clock import duration_seconds
from ..crypto.aead import KIND_CONFIG
from ..errors import IntegrityError, NotFound, UsageError
from ..format import canonical, layout
from ..format import records as recordfmt
from . import records as rec

SETTINGS: rec.RecordType[dict] = rec.RecordType(
    "settings record",
    KIND_CONFIG,
    canonical.sorted_json,
    lambda raw, what: recordfmt.validate_settings(canonical.decode_object(raw, what, "a settings record"), what),
)


@dataclass(frozen=True, slots=True)
class Settings:
    version: int  # 0: the config's own
    default_retention: dict | None  # {"mode", "duration"}
    min_retention: str | None  # a duration
    lock_policy: dict | None = None  # {"tiers": {tier: duration}, "mode"} (retention/tiers.py)
    anomaly_thresholds: dict | None = None  # name -> number over the defaults (backup/anomaly.py)

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "default_retention": self.default_retention,
            "min_retention": self.min_retention,
            "lock_policy": self.lock_policy,
            "anomaly_thresholds": self.anomaly_thresholds,
        }

    def record(self) -> dict:
        """The settings record of this version (FORMAT.md §6.1); `lock_policy` and
        `anomaly_thresholds` only when set."""
        doc = {"v": 1, **self.to_json()}
        for name in ("lock_policy", "anomaly_thresholds"):
            if doc[name] is None:
                del doc[name]
        return doc

    def min_seconds(self) -> float:
        return duration_seconds(self.min_retention) if self.min_retention else 0


def from_config(config: dict) -> Settings:
    return Settings(
        0,
        config.get("default_retention"),
        config.get("min_retention"),
        config.get("lock_policy"),
        config.get("anomaly_thresholds"),
    )


def logged_settings(entries) -> dict[int, dict]:
    """version -> the `setting` event that recorded it (the first one for a version)."""
    out: dict[int, dict] = {}
    for ev, _raw in entries:
        d = ev.get("details") if ev.get("type") == "setting" else None
        v = d.get("version") if isinstance(d, dict) else None
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
            out.setdefault(v, ev)
    return out


def stored_versions(records: rec.Records, problems: list[str]) -> dict[int, str]:
    """version -> key of every `settings/` object; other names there go to `problems`."""
    out: dict[int, str] = {}
    for info in records.listing(layout.SETTINGS):
        v = layout.settings_version(info.key)
        if v is None:
            problems.append(f"{info.key}: not a settings record name, ignored")
        else:
            out[v] = info.key
    return out


def effective(records: rec.Records, config: dict, logged: Callable[[], dict[int, dict]]) -> tuple[Settings, list[str]]:
    """(the settings in force, problems). `logged` reads the audit log's `setting` events; it is
    called only when a settings record or a stray object exists (the log is then read once)."""
    problems: list[str] = []
    stored = stored_versions(records, problems)
    current = from_config(config)
    if not stored and not problems:
        return current, []
    events = logged()
    floor = current.min_retention
    policy = current.lock_policy
    for v in sorted(set(stored) | set(events)):
        key = layout.settings_record(v)
        ev = events.get(v)
        if ev is None:
            problems.append(f"{key}: not recorded in the audit log (no `setting` event): ignored — planted?")
            continue
        floor = _higher(floor, (ev.get("details") or {}).get("min_retention"))
        try:
            current = _read(records, key, v, ev)
        except IntegrityError as e:
            problems.append(str(e) if str(e).startswith(key) else f"{key}: {e}")
        floor = _higher(floor, current.min_retention)
        policy = _longer_policy(policy, current.lock_policy)
    if floor != current.min_retention or policy != current.lock_policy:
        current = Settings(current.version, current.default_retention, floor, policy, current.anomaly_thresholds)
    return current, problems


def _longer_policy(a: dict | None, b: dict | None) -> dict | None:
    """Each tier the longer of two lock policies; compliance if either is (a policy never shortens)."""
    if a is None or b is None:
        return a or b
    tiers = dict(a["tiers"])
    for name, duration in b["tiers"].items():
        if name not in tiers or duration_seconds(duration) > duration_seconds(tiers[name]):
            tiers[name] = duration
    mode = "compliance" if "compliance" in (a["mode"], b["mode"]) else "governance"
    return {"tiers": tiers, "mode": mode}


def _read(records: rec.Records, key: str, version: int, ev: dict) -> Settings:
    """The record of `version`, checked against its `setting` event."""
    try:
        raw = records.storage.get(key)
    except NotFound:
        raise IntegrityError(
            f"{key}: missing, but audit log event {ev.get('seq')} recorded it (deleted behind the log)"
        ) from None
    if hashlib.sha256(raw).hexdigest() != (ev.get("details") or {}).get("sha256"):
        raise IntegrityError(
            f"{key}: does not match its `setting` event {ev.get('seq')} in the audit log — replaced or damaged"
        )
    doc = records.open(SETTINGS, key, raw, named=False)
    if doc["version"] != version:
        raise IntegrityError(f"{key}: holds version {doc['version']}")
    return Settings(
        version,
        doc.get("default_retention"),
        doc.get("min_retention"),
        doc.get("lock_policy"),
        doc.get("anomaly_thresholds"),
    )


def _higher(a: str | None, b) -> str | None:
    """The longer of two minimum retentions (an invalid one counts as none)."""
    try:
        sb = duration_seconds(b) if isinstance(b, str) and b else 0
    except (UsageError, OverflowError):
        sb = 0
    sa = duration_seconds(a) if a else 0
    return b if sb > sa else a


def next_version(records: rec.Records, logged: dict[int, dict]) -> int:
    """The next free version: above every stored object and every logged version, so a planted
    record never blocks a change."""
    stored = stored_versions(records, [])
    return max([0, *stored, *logged]) + 1


def seal(records: rec.Records, settings: Settings) -> tuple[bytes, str]:
    """(stored bytes, their SHA-256 hex) of a settings record."""
    _name, raw = records.seal(SETTINGS, settings.record())
    return raw, hashlib.sha256(raw).hexdigest()
