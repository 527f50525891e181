"""The verdict: what an auditor should look at, judged from the report's document. Pure.

Each finding has a `severity` — `alert` (something failed or was tampered with), `warning`
(a safeguard was overridden or is missing), `notice` (worth knowing) — a stable `code` for
scripts, and a `message` in plain words. The thresholds are named here and in docs/REPORT.md.
"""

from __future__ import annotations

import datetime as _dt

from ..clock import from_iso

CHECK_DAYS = 30  # a repository should be checked at least this often
READ_DATA_DAYS = 90  # and its data read back (check --read-data) at least this often
DRILL_DAYS = 90  # a restore drill at least this often
HOST_DAYS = 7  # a host whose newest snapshot is older than this has stopped backing up
LISTED = 10  # ids named in one message at most

SEVERITIES = ("alert", "warning", "notice")


def findings(doc: dict, now: _dt.datetime) -> list[dict]:
    """Every finding, the most severe first (in the order found within one severity)."""
    out: list[dict] = []
    for judge in (_log, _checks, _drills, _anomalies, _overrides, _snapshots, _hosts, _setup):
        out.extend(judge(doc, now))
    return sorted(out, key=lambda f: SEVERITIES.index(f["severity"]))


def _finding(severity: str, code: str, message: str) -> dict:
    return {"severity": severity, "code": code, "message": message}


def _age_days(text: str | None, now: _dt.datetime) -> float | None:
    try:
        return (now - from_iso(text)).total_seconds() / 86400 if isinstance(text, str) else None
    except (ValueError, OverflowError):
        return None


def _at(text: object) -> str:
    """A recorded time as a reader reads it: to the minute, in UTC."""
    return f"{str(text)[:16].replace('T', ' ')} UTC" if text else "an unknown time"


def _ids(ids: list[str]) -> str:
    shown = ", ".join(i[:8] for i in ids[:LISTED])
    return shown + (f" and {len(ids) - LISTED} more" if len(ids) > LISTED else "")


def _log(doc: dict, now: _dt.datetime) -> list[dict]:
    log = doc["audit_log"]
    out = []
    verified = log.get("verified") or {}
    if verified.get("ok") is False:
        errors = verified.get("errors") or []
        out.append(
            _finding(
                "alert",
                "audit-log-errors",
                f"The audit log did not verify: {len(errors)} error(s), the first: {errors[0] if errors else '?'}",
            )
        )
    if log.get("read_errors"):
        out.append(
            _finding(
                "alert", "audit-log-unreadable", f"Events of the audit log could not be read: {log['read_errors'][0]}"
            )
        )
    for w in log.get("witnesses") or []:
        if w.get("ok") is False:
            out.append(
                _finding("alert", "witness-disagrees", f"Witness {w['name']} does not agree with the audit log.")
            )
        elif w.get("ok") is None:
            out.append(
                _finding("warning", "witness-unreached", f"Witness {w['name']} could not be reached or checked.")
            )
    if not log.get("witnesses"):
        out.append(
            _finding(
                "notice",
                "no-witness",
                "No witness keeps copies of the audit log's checkpoints outside the repository, so a rollback of "
                "the whole repository would be noticed only by clients that remember a checkpoint.",
            )
        )
    for r in log.get("trust_resets") or []:
        out.append(
            _finding(
                "warning",
                "trust-reset",
                f"The audit log's trust was reset on {_at(r['time'])} (event {r['event']}): {r['reason']}",
            )
        )
    return out


def _checks(doc: dict, now: _dt.datetime) -> list[dict]:
    checks = doc["checks"]
    last = checks.get("last")
    if last is None:
        return [_finding("warning", "no-check", "The repository has never been checked (`amber check`).")]
    out = []
    if last.get("ok") is False:
        out.append(
            _finding(
                "alert", "check-failed", f"The last check, on {_at(last['time'])}, found {last.get('errors')} error(s)."
            )
        )
    age = _age_days(last.get("time"), now)
    if age is not None and age > CHECK_DAYS:
        message = f"No check in {CHECK_DAYS} days: the last was on {_at(last['time'])}."
        out.append(_finding("warning", "check-old", message))
    read = checks.get("last_read_data")
    read_age = _age_days(read.get("time"), now) if read else None
    if read is None or (read_age is not None and read_age > READ_DATA_DAYS):
        since = f"since {_at(read['time'])}" if read else f"in the last {len(checks.get('recent') or [])} check(s)"
        out.append(
            _finding(
                "notice",
                "no-read-data",
                f"The stored data has not been read back and verified (`amber check --read-data`) {since}.",
            )
        )
    return out


def _drills(doc: dict, now: _dt.datetime) -> list[dict]:
    last = doc["drills"].get("last")
    if last is None:
        return [_finding("warning", "no-drill", "No restore drill has been run (`amber drill`).")]
    out = []
    if last.get("ok") is False:
        out.append(_finding("alert", "drill-failed", f"The last restore drill, on {_at(last['time'])}, failed."))
    age = _age_days(last.get("time"), now)
    if age is not None and age > DRILL_DAYS:
        message = f"No restore drill in {DRILL_DAYS} days: the last was on {_at(last['time'])}."
        out.append(_finding("warning", "drill-old", message))
    return out


def _anomalies(doc: dict, now: _dt.datetime) -> list[dict]:
    return [
        _finding(
            "alert",
            "anomaly",
            f"Backup {str(a.get('snapshot'))[:8]} on {_at(a.get('time'))} raised a ransomware alarm: "
            + ("; ".join(a.get("reasons") or []) or "see its signals")
            + (f" (snapshot {str(a['held'])[:8]} was held)" if a.get("held") else ""),
        )
        for a in doc["anomalies"]["recent"]
    ]


def _overrides(doc: dict, now: _dt.datetime) -> list[dict]:
    out = []
    for o in doc["overrides"]:
        if o["kind"] == "clock-jump":
            if not o.get("confirmed"):
                out.append(_finding("warning", "clock-jump", f"Unconfirmed clock jump: {o['description']}."))
            continue
        when = f" on {_at(o['time'])}" if o.get("time") else ""
        out.append(_finding("warning", o["kind"], f"--{o['kind']} was used{when}: {o['description']}."))
    return out


def _snapshots(doc: dict, now: _dt.datetime) -> list[dict]:
    snaps = doc["snapshots"]
    unreadable = doc.get("unreadable_snapshots") or []
    out = []
    if unreadable:
        message = f"{len(unreadable)} snapshot(s) could not be read: {unreadable[0]}"
        out.append(_finding("alert", "snapshots-unreadable", message))
    if not snaps:
        return out + [_finding("warning", "no-snapshots", "The repository holds no snapshot.")]
    unprotected = [s["id"] for s in snaps if not s["hold"] and not (s["lock"] and s["lock"]["active"])]
    if unprotected:
        out.append(
            _finding(
                "warning",
                "snapshots-without-lock",
                f"{len(unprotected)} of {len(snaps)} snapshot(s) have no active lock or hold and can be deleted: "
                + _ids(unprotected)
                + ".",
            )
        )
    unlogged = [s["id"] for s in snaps if s.get("event") is None]
    if unlogged:
        out.append(
            _finding(
                "alert",
                "snapshots-not-logged",
                f"{len(unlogged)} snapshot(s) have no audit-log event: {_ids(unlogged)}.",
            )
        )
    held = [h["snapshot"] for h in doc["holds"]]
    if held:
        out.append(_finding("notice", "holds", f"{len(held)} snapshot(s) are on legal hold: {_ids(held)}."))
    return out


def _hosts(doc: dict, now: _dt.datetime) -> list[dict]:
    out = []
    for h in doc["hosts"]:
        age = _age_days(h["last"], now)
        if age is not None and age > HOST_DAYS:
            out.append(
                _finding(
                    "warning",
                    "host-stale",
                    f"Host {h['hostname']} has not been backed up in {int(age)} days (last {_at(h['last'])}).",
                )
            )
    return out


def _setup(doc: dict, now: _dt.datetime) -> list[dict]:
    repo, out = doc["repository"], []
    for p in repo.get("settings_problems") or []:
        out.append(_finding("alert", "settings-problem", f"Settings: {p}"))
    settings = repo.get("settings") or {}
    modes = {(settings.get("default_retention") or {}).get("mode"), (settings.get("lock_policy") or {}).get("mode")}
    modes |= {s["lock"]["mode"] for s in doc["snapshots"] if s["lock"] and s["lock"]["active"]}
    if "governance" in modes:
        out.append(
            _finding(
                "notice",
                "governance-locks",
                "Some locks are in governance mode: an administrator can shorten them with --bypass-governance "
                "(always recorded in the audit log). Compliance-mode locks cannot be shortened by anyone.",
            )
        )
    for note in doc["access"].get("left_out") or []:
        out.append(_finding("notice", "partial-report", note))
    return out
