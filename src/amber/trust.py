"""What a password may open, and the settings a repository holds itself to.

- Opening (`Opener`): a key file is accepted only when the master keys it wraps
  open the audit log's first entry (the `init` event, which pins the config)
  and the config, and it is not revoked. Other key files the password unwraps
  are reported and skipped, so a planted key file, even a locked one, never
  makes a repository unopenable (FORMAT.md §5.3).
- The config pin: a config that does not match the pin is named, readers use
  the pinned config, and every change is refused until `repair_config` puts
  the pinned one back (FORMAT.md §6.1).
- Settings: write-once, versioned records, each with a `setting` event; the
  minimum retention only rises (`change_settings`).
- Revocation: a record naming the key's identity inside its file, and a
  `key-revoke` event (`revoke`).
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from .audit.log import AuditLog
from .clock import duration_seconds
from .crypto.aead import KIND_CONFIG, Sealer
from .crypto.keys import MasterKeys
from .errors import AlreadyExists, AmberError, IntegrityError, Locked, NotFound, UsageError, WrongPassword
from .format import fields, layout
from .repo import records as rec
from .repo import settings as settingsrec
from .repo.keys import KeyRing, identity
from .retention import locks, tiers
from .storage.base import GOVERNANCE, MODES, Storage


class Trusted(locks.RetentionTarget, Protocol):
    """What the key, config and settings checks read and write: the open repository's parts and
    what its opening found."""

    records: rec.Records
    audit: AuditLog
    keys: MasterKeys
    key_id: str
    sealed_config: dict
    pinned_config: dict | None
    key_problems: list[str]
    config_problems: list[str]
    pin_problems: list[str]
    revocation_problems: list[str]

    def warn(self, message: str) -> None: ...

    def require_sound(self, what: str) -> None: ...

    def apply_settings(self, settings: settingsrec.Settings) -> None: ...


def logged_settings(repo: Trusted) -> dict[int, dict]:
    """version -> the `setting` event that recorded it (through the client's summary of the
    log: only the events added since its last use are read)."""
    return dict(repo.audit.summary().settings)


def default_retention_setting(asked: dict | None) -> dict | None:
    """{"mode", "duration"} for the config, or None; an empty or zero duration is a usage error."""
    if asked is None or asked.get("duration") is None:
        if asked and asked.get("mode"):
            raise UsageError("a default retention mode needs a default retention duration")
        return None
    mode = asked.get("mode") or GOVERNANCE
    if mode not in MODES:
        raise UsageError("the retention mode must be governance or compliance", remedy="retention-mode")
    duration = asked["duration"]
    if duration_seconds(duration) <= 0:  # validates, and refuses an empty duration
        raise UsageError(f"the default retention {duration!r} is not a positive duration")
    duration = "".join(duration.split())
    try:
        fields.duration(duration, "default retention", "duration")  # what a reader of the config accepts
    except IntegrityError:
        raise UsageError(f"the default retention {duration!r} is not a positive duration") from None
    return {"mode": mode, "duration": duration}


def min_retention_setting(asked: str | None, default: dict | None) -> str | None:
    """The minimum retention as the config spells it, or None; the default may not be shorter."""
    if asked is None:
        return None
    asked = "".join(asked.split())
    try:
        fields.duration(asked, "minimum retention", "duration")
        seconds = duration_seconds(asked)
    except (IntegrityError, UsageError):
        raise UsageError(f"the minimum retention {asked!r} is not a positive duration such as 30d") from None
    if default is not None and duration_seconds(default["duration"]) < seconds:
        raise UsageError(f"the default retention {default['duration']} is shorter than the minimum retention {asked}")
    return asked


class Opened:
    """What one candidate key file opens: the config readers use, and what is wrong."""

    def __init__(self, config: dict, pinned: dict | None, problems=(), pin_problems=()) -> None:
        self.config = config
        self.pinned = pinned
        self.problems = list(problems)
        self.pin_problems = list(pin_problems)
        self.revocation_problems: list[str] = []


class Opener:
    """Decides whether master keys a key file unwraps open this repository: they open the audit
    log's first entry (the `init` event, which pins the config) and the config, or the pinned
    config stands in for a replaced one; and the key file is not revoked."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.opened: dict[str, Opened] = {}
        self.lenient: list[tuple[MasterKeys, str, Opened]] = []  # when entry 0 opens under no key

    def accept(self, keys: MasterKeys, kid: str, raw: bytes) -> None:
        sealer = Sealer(keys.data)
        try:
            init = AuditLog.init_event(self.storage, sealer)
        except IntegrityError as e:
            try:
                config, _plain = self._config(sealer)
            except IntegrityError:
                raise IntegrityError(
                    "its master keys open neither the config nor the audit log's first entry: "
                    "the key file of another repository (planted?)"
                ) from None
            problem = f"{e} — the config's pin cannot be read"
            self._not_revoked(keys, kid, raw, Opened(config, None, pin_problems=[problem]), lenient=True)
            raise IntegrityError(f"its master keys do not open the audit log's first entry ({e})") from None
        pin = pinned_by(init)
        try:
            plain = self._plain_config(sealer)
        except IntegrityError as e:
            if pin is None:
                raise
            why = "missing" if isinstance(e.__cause__, NotFound) else "content does not authenticate"
            opened = Opened(pin[1], pin[1], [f"{layout.CONFIG}: {why} — replaced or damaged ({e})"])
        else:
            if pin is None:
                opened = Opened(rec.CONFIG.decode(plain, layout.CONFIG), None)
            elif hashlib.sha256(plain).hexdigest() == pin[0]:
                opened = Opened(pin[1], pin[1])
            else:
                problem = (
                    f"{layout.CONFIG}: does not match the config pinned by the init event "
                    "(audit log entry 0) — replaced or shadowed"
                )
                opened = Opened(pin[1], pin[1], [problem])
        self._not_revoked(keys, kid, raw, opened)

    def _config(self, sealer: Sealer) -> tuple[dict, bytes]:
        plain = self._plain_config(sealer)
        return rec.CONFIG.decode(plain, layout.CONFIG), plain

    def _plain_config(self, sealer: Sealer) -> bytes:
        """The config's plaintext, authenticated under `sealer` (IntegrityError otherwise)."""
        try:
            stored = self.storage.get(layout.CONFIG)
        except NotFound as e:
            raise IntegrityError(f"{layout.CONFIG}: missing") from e
        return sealer.open(KIND_CONFIG, stored, layout.CONFIG)

    def _not_revoked(self, keys: MasterKeys, kid: str, raw: bytes, opened: Opened, lenient: bool = False) -> None:
        ring = KeyRing(rec.Records(self.storage, Sealer(keys.data)))
        revoked = ring.revocations(opened.revocation_problems).get(identity(raw))
        if revoked is not None:
            raise WrongPassword(
                f"the key this password opens ({layout.key_file(kid)}) was revoked on {revoked['time']} "
                f"({revoked['record']}): the password no longer opens the repository"
            )
        if lenient:
            self.lenient.append((keys, kid, opened))
        else:
            self.opened[kid] = opened


def pinned_by(init: dict | None) -> tuple[str, dict] | None:
    """(SHA-256 hex, config) the init event pins, or None (an older repository: unpinned)."""
    if init is None or init.get("type") != "init":
        return None
    d = init.get("details") or {}
    sha, config = d.get("config_sha256"), d.get("config")
    if not isinstance(sha, str) or not isinstance(config, dict):
        return None
    try:
        config = rec.CONFIG.decode(rec.CONFIG.encode(config), "the config pinned by the init event")
    except IntegrityError:
        return None
    if hashlib.sha256(rec.CONFIG.encode(config)).hexdigest() != sha:
        return None
    return sha, config


def write_over(storage: Storage, key: str, raw: bytes) -> None:
    """Store `raw` at `key` over what is there, for putting back what the repository pins
    elsewhere: a backend that can (S3: a new version over the replaced one; local: the file's
    bytes, its lock records kept) does it in one step; elsewhere the object is deleted first,
    which a wrapper such as append-only refuses."""
    put_over = getattr(storage, "put_over", None)
    if put_over is not None:
        put_over(key, raw)
        return
    try:
        storage.delete(key)
    except NotFound:
        pass
    storage.put(key, raw)


def revoke(repo: Trusted, kid: str, **details) -> None:
    retention, held = locks.strongest_protection(repo)
    ident, record = repo.key_ring.revoke(kid, repo.clock, by=repo.key_id, retention=retention, held=held)
    repo.log_event("key-revoke", key=kid, identity=ident, record=record, **details)
    try:
        repo.key_ring.remove(kid)
    except Locked as e:
        repo.warn(f"{layout.key_file(kid)} is revoked, but stays stored until its lock ends ({e})")
        return
    repo.log_event("key-remove", key=kid)


def revoked_problems(repo: Trusted, entries) -> list[str]:
    """Revocations the log records (`key-revoke` events) whose record is missing."""
    problems = list(repo.revocation_problems)
    stored = {info.key for info in repo.records.listing(layout.REVOKED)}
    try:
        mine = identity(repo.storage.get(layout.key_file(repo.key_id)))
    except (IntegrityError, NotFound):
        mine = None
    for ev, _raw in entries:
        d = ev.get("details") or {}
        if ev.get("type") != "key-revoke":
            continue
        if mine is not None and d.get("identity") == mine:
            problems.append(
                f"{layout.key_file(repo.key_id)}: opened this session, but audit log event {ev.get('seq')} "
                "revoked it (its revocation record is gone)"
            )
        if d.get("record") not in stored:
            problems.append(
                f"{d.get('record')}: the revocation of keys/{str(d.get('key'))[:16]} (audit log event "
                f"{ev.get('seq')}) is missing — deleted behind the log; the key stays revoked in the log"
            )
    return problems


def repair_config(repo: Trusted) -> bool:
    """Write the config the init event pins back over a replaced one (local: the file's bytes,
    its lock records kept; S3: a new version), with a `repair` event, protected as long as the
    longest lock. False when nothing was wrong."""
    if repo.pinned_config is None:
        raise IntegrityError(
            "the init event (audit log entry 0) pins no config: there is nothing to put back"
            + ("; " + "; ".join(repo.pin_problems) if repo.pin_problems else "")
        )
    if not repo.config_problems:
        return False
    repo.audit.check_history()
    retention, held = locks.strongest_protection(repo)
    _name, raw = repo.records.seal(rec.CONFIG, repo.pinned_config)
    write_over(repo.storage, layout.CONFIG, raw)
    if retention is not None:  # as long as every snapshot needs it
        locks.extend_objects(repo, [layout.CONFIG], retention)
    if held:
        repo.storage.set_legal_hold(layout.CONFIG, True)
    fixed, repo.config_problems = repo.config_problems, []
    repo.log_event("repair", what="config", problems=fixed, sha256=hashlib.sha256(raw).hexdigest())
    return True


def change_settings(
    repo,
    *,
    default_retention: dict | None = None,
    min_retention: str | None = None,
    lock_policy: dict | None = None,
    anomaly_thresholds: dict | None = None,
) -> settingsrec.Settings:
    """Write the next settings version and its `setting` event. The minimum may only be
    raised and a lock policy only lengthened (Locked, exit 30); the default may not be below
    the minimum (usage error). Anomaly thresholds change either way: an admin decides, and
    the event records it."""
    repo.require_sound("change a setting")
    repo.audit.check_history()
    logged = logged_settings(repo)
    current, _problems = settingsrec.effective(repo.records, repo.sealed_config, lambda: logged)
    default = current.default_retention
    if default_retention is not None:
        default = default_retention_setting(default_retention)
    minimum = current.min_retention
    if min_retention is not None:
        minimum = min_retention_setting(min_retention, None)
        if current.min_retention and duration_seconds(minimum) < current.min_seconds():
            raise Locked(
                f"the minimum retention is {current.min_retention}: it can be raised, never lowered (asked: {minimum})"
            )
    min_retention_setting(minimum, default)  # the default is never below the minimum
    policy = current.lock_policy
    if lock_policy is not None:
        why = tiers.not_shorter(lock_policy, current.lock_policy)
        if why is not None:
            raise Locked(f"the lock policy may only be lengthened: {why}")
        policy = lock_policy
    anomaly = anomaly_thresholds if anomaly_thresholds is not None else current.anomaly_thresholds
    retention, held = locks.strongest_protection(repo)
    for _ in range(100):
        new = settingsrec.Settings(settingsrec.next_version(repo.records, logged), default, minimum, policy, anomaly)
        raw, sha = settingsrec.seal(repo.records, new)
        try:
            repo.storage.put(layout.settings_record(new.version), raw, retention=retention)
            break
        except AlreadyExists:  # another writer's, or a planted one: the next version
            logged = logged_settings(repo)
    else:
        raise AmberError("could not write a settings record (too much contention)")
    if held:
        repo.storage.set_legal_hold(layout.settings_record(new.version), True)
    repo.log_event("setting", sha256=sha, **new.to_json())
    repo.apply_settings(new)
    return new


# -- operations ------------------------------------------------------------


def keys_and_config_problems(repo: Trusted, password: str | None) -> tuple[list[str], list[str]]:
    """(errors, warnings) about key files, the config pin, settings records and revocations.
    With the `password` the session opened with, key files the open never reached are tried."""
    errors: list[str] = []
    entries = repo.audit.honoured([])  # a setting or revocation the log does not honour counts for nothing
    _settings, settings_problems = settingsrec.effective(
        repo.records, repo.sealed_config, lambda: settingsrec.logged_settings(entries)
    )
    errors.extend(repo.key_problems)
    if password is not None:
        reported = {p.split(":", 1)[0] for p in repo.key_problems} | {layout.key_file(repo.key_id)}
        errors.extend(repo.key_ring.others_opened(password, repo.keys, reported))
    errors.extend(repo.config_problems + repo.pin_problems + settings_problems)
    errors.extend(revoked_problems(repo, entries))
    warnings = []
    if repo.pinned_config is None and not repo.pin_problems:
        warnings.append("config: not pinned (the repository was made before the init event recorded it)")
    return errors, warnings
