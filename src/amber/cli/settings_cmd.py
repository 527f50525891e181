"""`amber settings`: show the repository's settings, or change them (a new versioned record)."""

import click

from ..repository import parse_anomaly_thresholds, parse_lock_policy, thresholds_in_force
from .options import command, json_option
from .output import Output


def _lines(s: dict, pinned: bool | None) -> list[str]:
    dr = s.get("default_retention")
    return [
        f"settings version {s['version']}" + (" (the config's own)" if s["version"] == 0 else ""),
        f"default retention: {dr['duration']} ({dr['mode']})" if dr else "default retention: none",
        f"minimum retention: {s['min_retention'] or 'none'}",
        "lock policy: "
        + (
            ", ".join(f"{k}={v}" for k, v in s["lock_policy"]["tiers"].items()) + f" ({s['lock_policy']['mode']})"
            if s.get("lock_policy")
            else "none"
        ),
        "anomaly thresholds: " + ", ".join(f"{k.replace('_', '-')}={v}" for k, v in s["anomaly_thresholds"].items()),
        "config: pinned by the init event" if pinned else "config: not pinned (made by an earlier version)",
    ]


@command("settings")
@click.option("--default-retention", metavar="DURATION", help="lock every new snapshot this long")
@click.option("--retention-mode", type=click.Choice(["governance", "compliance"]), default=None)
@click.option("--min-retention", metavar="DURATION", help="raise the shortest lock amber sets (never lowered)")
@click.option(
    "--lock-policy", metavar="TIERS", help='e.g. "daily=14d,weekly=8w,monthly=13mo,yearly=7y" (only lengthened)'
)
@click.option("--lock-mode", type=click.Choice(["governance", "compliance"]), default=None, help="the policy's mode")
@click.option(
    "--anomaly-thresholds",
    metavar="NAME=VALUE,...",
    help='e.g. "changed=0.6,collapsed=0.4,min-files=50" (docs/ANOMALIES.md; 0 turns one off)',
)
@json_option
def settings(
    session, default_retention, retention_mode, min_retention, lock_policy, lock_mode, anomaly_thresholds, as_json
):
    """Show the settings in force; with options, change them (recorded, write-once)."""
    if retention_mode and default_retention is None:
        raise click.UsageError("--retention-mode needs --default-retention")
    if lock_mode and lock_policy is None:
        raise click.UsageError("--lock-mode needs --lock-policy")
    policy = parse_lock_policy(lock_policy, lock_mode) if lock_policy is not None else None
    r = session.open()
    anomaly = None
    if anomaly_thresholds is not None:
        anomaly = parse_anomaly_thresholds(anomaly_thresholds, r.settings.anomaly_thresholds)
    if default_retention is not None or min_retention is not None or policy is not None or anomaly is not None:
        retention = {"duration": default_retention, "mode": retention_mode} if default_retention is not None else None
        r.change_settings(
            default_retention=retention, min_retention=min_retention, lock_policy=policy, anomaly_thresholds=anomaly
        )
    doc = r.settings.to_json()
    doc["anomaly_thresholds"] = thresholds_in_force(r.settings.anomaly_thresholds)  # the defaults filled in
    doc["pinned"] = r.pinned_config is not None
    doc["problems"] = r.settings_problems + r.config_problems
    return Output(doc, _lines(doc, doc["pinned"]) + [f"problem: {p}" for p in doc["problems"]])
