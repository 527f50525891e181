"""The report's pure parts: the lock horizon's buckets and the findings' thresholds."""

from __future__ import annotations

import datetime as dt

from amber.report.findings import CHECK_DAYS, DRILL_DAYS, findings
from amber.report.horizon import Protected, granularity, horizon

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def test_the_bucket_is_the_finest_that_needs_at_most_62():
    assert granularity(10 * DAY)[0] == "day"
    assert granularity(100 * DAY)[0] == "week"
    assert granularity(3 * 365 * DAY)[0] == "month"
    assert granularity(7 * 365 * DAY)[0] == "quarter"
    assert granularity(30 * 365 * DAY)[0] == "year"


def test_every_lock_ends_in_exactly_one_bucket_and_holds_outlast_them():
    snaps = [
        Protected("a", NOW + 3 * DAY, False, 10),
        Protected("b", NOW + 20 * DAY, True, 100),
        Protected("c", NOW - DAY, False, 1000),  # expired
        Protected("d", None, False, 5),  # never locked
    ]
    h = horizon(snaps, NOW)
    assert (h["granularity"], h["locked_now"], h["held_now"], h["unprotected_now"]) == ("day", 2, 1, 2)
    assert h["latest_expiry_snapshot"] == "b" and h["latest_expiry"] == "2030-01-21T00:00:00Z"
    b = h["buckets"]
    assert b[0] == {
        "date": "2030-01-01T00:00:00Z",
        "snapshots": 2,
        "bytes": 110,
        "locked": 2,
        "held": 1,
        "locks_ending": 0,
    }
    assert sum(x["locks_ending"] for x in b) == 2
    assert b[3]["locks_ending"] == 0 and b[2]["locks_ending"] == 1  # a's lock ends within its third day
    assert b[-1]["snapshots"] == 1 and b[-1]["locked"] == 0 and b[-1]["bytes"] == 100
    assert len(b) == 22


def test_no_lock_at_all_is_one_bucket():
    h = horizon([Protected("a", None, False, 1)], NOW)
    assert h["latest_expiry"] is None and len(h["buckets"]) == 1 and h["buckets"][0]["snapshots"] == 0


def doc(**parts) -> dict:
    """A report document with nothing in it, then `parts`."""
    base = {
        "repository": {"settings": {}, "settings_problems": []},
        "access": {"left_out": []},
        "snapshots": [],
        "hosts": [],
        "holds": [],
        "checks": {"total": 0, "last": None, "recent": [], "last_read_data": None},
        "drills": {"total": 0, "last": None, "recent": []},
        "anomalies": {"total": 0, "recent": []},
        "overrides": [],
        "audit_log": {"verified": {"ok": True}, "witnesses": [{"name": "w", "ok": True}], "trust_resets": []},
    }
    return base | parts


def codes(d: dict) -> list[str]:
    return [f["code"] for f in findings(d, NOW)]


def at(days_ago: float) -> str:
    return (NOW - dt.timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")


def test_old_or_failed_checks_and_drills_are_named():
    assert {"no-check", "no-drill", "no-snapshots"} <= set(codes(doc()))
    check = {"time": at(CHECK_DAYS + 1), "ok": True, "read_data": True}
    drill = {"time": at(DRILL_DAYS + 1), "ok": False}
    found = codes(doc(checks={"last": check, "recent": [check], "last_read_data": check}, drills={"last": drill}))
    assert "check-old" in found and "drill-old" in found and "drill-failed" in found
    assert "no-read-data" not in found  # read back 31 days ago: within 90
    assert found.index("drill-failed") < found.index("check-old"), "alerts come first"
    fresh = {"time": at(1), "ok": True, "read_data": False}
    assert "no-read-data" in codes(doc(checks={"last": fresh, "recent": [fresh], "last_read_data": None}))


def test_overrides_stale_hosts_and_disagreeing_witnesses():
    overrides = [
        {"kind": "trust-clock", "time": at(2), "description": "event 9 prune --trust-clock"},
        {"kind": "clock-jump", "confirmed": True, "description": "a confirmed jump"},
        {"kind": "clock-jump", "confirmed": False, "description": "an open jump"},
    ]
    log = {"verified": {"ok": False, "errors": ["x"]}, "witnesses": [{"name": "w", "ok": False}], "trust_resets": []}
    found = codes(doc(overrides=overrides, hosts=[{"hostname": "h", "last": at(8)}], audit_log=log))
    assert found.count("clock-jump") == 1 and "trust-clock" in found and "host-stale" in found
    assert "audit-log-errors" in found and "witness-disagrees" in found
