"""The config pin and the settings every change is held to.

A config that does not match the one the init event pins refuses every change
(`require_sound`); the settings in force (default and minimum retention, lock
policy, anomaly thresholds) are applied here and changed only by a `setting`
event (trust.py). Retention, backups and copies check their locks against the
minimum here, so the rule is stated once.
"""

from __future__ import annotations

import datetime as _dt

from .. import trust
from ..backup import anomaly as anomaly_rules
from ..clock import duration_seconds, to_iso
from ..errors import IntegrityError, Locked
from ..repo import settings as settingsrec
from ..retention import tiers as lock_tiers
from ..storage.base import GOVERNANCE
from .parts import RepositoryParts


class SettingsAndPin(RepositoryParts):
    """The config against its pin and the settings in force, which every change is held to."""

    def require_sound(self, what: str) -> None:
        """Refuse a change (IntegrityError, exit 20) while the config does not match its pin."""
        if self.config_problems:
            raise IntegrityError(f"refusing to {what}: " + "; ".join(self.config_problems), remedy="repair-config")

    def repair_config(self) -> bool:
        """Put the config the init event pins back over a replaced one; False if nothing was wrong."""
        self.require_admin("repair the config")
        return trust.repair_config(self)

    def apply_settings(self, settings: settingsrec.Settings) -> None:
        """Put `settings` in force: a backup without a lock gets the default retention, else the
        minimum (governance)."""
        self.settings = settings
        default = settings.default_retention
        if default is None and settings.min_retention:
            default = {"mode": GOVERNANCE, "duration": settings.min_retention}
        self.config = dict(self.sealed_config, default_retention=default)

    def check_minimum(self, until: _dt.datetime, what: str) -> None:
        """Locked (exit 30) when a lock ending at `until` is shorter than the minimum retention."""
        seconds = self.settings.min_seconds()
        if not seconds:
            return
        now = self.clock.now()
        if until < now + _dt.timedelta(seconds=seconds - 5):  # the end was computed a moment ago
            least = (now + _dt.timedelta(seconds=seconds)).replace(microsecond=0)
            raise Locked(
                f"{what} ends {to_iso(until.replace(microsecond=0))}, before the repository's minimum "
                f"retention of {self.settings.min_retention} from now ({to_iso(least)})"
            )

    def change_settings(
        self,
        *,
        default_retention: dict | None = None,
        min_retention: str | None = None,
        lock_policy: dict | None = None,
        anomaly_thresholds: dict | None = None,
    ):
        """Write the next settings version and its `setting` event (the minimum only rises, a lock
        policy only lengthens; anomaly thresholds are backup/anomaly.py's)."""
        self.require_admin("change settings")
        return trust.change_settings(
            self,
            default_retention=default_retention,
            min_retention=min_retention,
            lock_policy=lock_policy,
            anomaly_thresholds=anomaly_thresholds,
        )

    def lock_posture(self) -> list[str]:
        """Where the storage itself enforces less than this repository's settings promise
        (an S3 bucket's default retention or policy); other backends have nothing to say."""
        posture = getattr(self.storage, "lock_posture", None)
        if posture is None:
            return []
        default = self.config.get("default_retention") or {}
        seconds = duration_seconds(default["duration"]) if default else 0
        return posture(seconds, default.get("mode"))


def parse_anomaly_thresholds(text: str, current: dict | None = None) -> dict:
    """Anomaly thresholds from "changed=0.6,min-files=50" over `current` (backup/anomaly.py)."""
    return anomaly_rules.parse_thresholds(text, current)


def thresholds_in_force(stored: dict | None) -> dict:
    """The anomaly thresholds in force: the defaults, overridden by the stored setting."""
    return anomaly_rules.thresholds(stored)


def parse_lock_policy(text: str, mode: str | None = None) -> dict:
    """A lock policy from "daily=14d,weekly=8w,monthly=13mo,yearly=7y" (retention/tiers.py)."""
    return lock_tiers.parse(text, mode)
