"""The report as plain text for a terminal: the findings first, then a short line per part.

Every figure comes from the document (model.build); the page and --json hold the details.
"""

from __future__ import annotations

LISTED = 10  # holds, checks, drills and overrides shown here at most


def _when(iso: str | None) -> str:
    return iso[:16].replace("T", " ") + " UTC" if iso else "never"


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _ok(ok: bool | None) -> str:
    return {True: "passed", False: "FAILED"}.get(ok, "unknown")  # type: ignore[arg-type]


def render(doc: dict) -> list[str]:
    """The summary as lines."""
    lines = _head(doc) + [""] + _findings(doc) + [""]
    for part in (_snapshots, _horizon, _holds, _checks, _drills, _anomalies, _overrides, _audit):
        lines += part(doc) + [""]
    return lines[:-1]


def _head(doc: dict) -> list[str]:
    r, s = doc["repository"], doc["repository"]["settings"]
    policy = s.get("lock_policy")
    default = s.get("default_retention")
    return [
        f"compliance report of repository {r['id']} ({r['location']})",
        f"generated {_when(doc['report']['generated'])} with a {doc['access']['role']} key",
        f"default lock: {default['duration'] + ' ' + default['mode'] if default else 'none'}; "
        f"minimum lock: {s.get('min_retention') or 'none'}; lock schedule: "
        + (", ".join(f"{k}={v}" for k, v in policy["tiers"].items()) + f" ({policy['mode']})" if policy else "none"),
    ] + [f"left out: {note}" for note in doc["access"]["left_out"]]


def _findings(doc: dict) -> list[str]:
    if not doc["findings"]:
        return ["findings: none"]
    return ["findings:"] + [f"  {f['severity'].upper():<8} {f['message']}" for f in doc["findings"]]


def _snapshots(doc: dict) -> list[str]:
    out = [f"snapshots: {len(doc['snapshots'])} on {len(doc['hosts'])} host(s)"]
    for h in doc["hosts"]:
        out.append(
            f"  {h['hostname']}: {h['snapshots']} snapshot(s), newest {_when(h['last'])}, "
            f"{h['locked']} locked, {h['held']} held, {h['unprotected']} unprotected"
        )
    return out


def _horizon(doc: dict) -> list[str]:
    h = doc["lock_horizon"]
    out = [
        f"lock horizon: {h['locked_now']} snapshot(s) locked now, {h['held_now']} held, "
        f"{h['unprotected_now']} unprotected; the latest lock ends {_when(h['latest_expiry'])}"
    ]
    for b in [b for b in h["buckets"] if b["locks_ending"]][:LISTED]:
        out.append(
            f"  from {_when(b['date'])}: {b['snapshots']} protected ({_size(b['bytes'])}), "
            f"{b['locks_ending']} lock(s) end within the {h['granularity']}"
        )
    return out


def _holds(doc: dict) -> list[str]:
    out = [f"legal holds: {len(doc['holds'])}"]
    for h in doc["holds"][:LISTED]:
        out.append(f"  {h['snapshot'][:8]} ({h['hostname']}) since {_when(h['since'])}: {h['reason']}")
    return out


def _checks(doc: dict) -> list[str]:
    c = doc["checks"]
    last, read = c["last"], c.get("last_read_data")
    if last is None:
        return ["checks: none recorded"]
    return [
        f"checks: {c['total']}; the last {_when(last['time'])}: {_ok(last['ok'])}"
        + (" (data read back)" if last.get("read_data") else ""),
        "  data last read back: "
        + (f"{_when(read['time'])}, {_ok(read['ok'])}" if read else "not in the recent checks"),
    ]


def _drills(doc: dict) -> list[str]:
    d = doc["drills"]
    if d["last"] is None:
        return ["restore drills: none recorded"]
    out = [f"restore drills: {d['total']}"]
    for r in d["recent"][:LISTED]:
        out.append(
            f"  {_when(r['time'])} {str(r.get('snapshot'))[:8]} ({r['sample']}): {_ok(r['ok'])}, "
            f"{_size(r['throughput'])}/s, full restore estimated at {r['rto_seconds']} s"
        )
    return out


def _anomalies(doc: dict) -> list[str]:
    a = doc["anomalies"]
    out = [f"ransomware alarms: {a['total']}"]
    for r in a["recent"][:LISTED]:
        out.append(f"  {_when(r['time'])} backup {str(r['snapshot'])[:8]}: {'; '.join(r['reasons'])}")
    return out


def _overrides(doc: dict) -> list[str]:
    found = doc["overrides"]
    out = [f"overrides (--bypass-governance, --trust-clock, clock jumps): {len(found)}"]
    out += [f"  {_when(o['time'])} {o['description']}" for o in found[:LISTED]]
    return out


def _audit(doc: dict) -> list[str]:
    a = doc["audit_log"]
    v = a.get("verified") or {}
    cp = a.get("checkpoint")
    out = [
        f"audit log: {a['events']} events, verification {_ok(v.get('ok'))}, newest checkpoint "
        + (f"{cp['size']} events ({_when(cp['time'])})" if cp else "none"),
        f"  settings changes: {max(0, len(doc['settings_changes']) - 1)}; trust resets: {len(a['trust_resets'])}",
    ]
    for w in a["witnesses"]:
        out.append(f"  witness {w['name']} ({w['url']}): newest checkpoint {w['newest_size']}, {_ok(w['ok'])}")
    return out
