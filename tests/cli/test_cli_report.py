"""`amber report`: the compliance report of a repository made by the real CLI — backups on
two hosts under a lock policy, a lock shortened with --bypass-governance, a forget with
--trust-clock, a legal hold, checks, a drill and a settings change — checked against what
the other commands say, then opened in a real headless Chromium (Playwright driving the
system's browser) and compared with --json."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from fakeclock import LIBFAKETIME, NO_FAKETIME, moved_clock

from cli_helpers import Amber, environment, make_source

HOSTILE_HOST = "<img src=x onerror=window.__pwned=1>"
HOSTILE_TAG = "<b>bold</b>"
HOLD_REASON = "case 42 <script>window.__pwned=2</script> & </script><p>"


class Scenario:
    """A user's repository, with the ids and outputs the report must agree with."""

    def __init__(self, base: Path, subprocess: bool = False) -> None:
        u = self.user = Amber(base / "user", subprocess=subprocess)
        u.create()
        src = Path(make_source(base / "src", {"a.txt": b"alpha\n" * 100, "b.bin": os.urandom(50_000)}))
        u.run("settings", "--lock-policy", "daily=14d,weekly=8w")
        self.tiered = u.backup(src, args=("--host", "alpha", "--tag", HOSTILE_TAG))["snapshot_id"]
        (src / "c.txt").write_bytes(b"charlie\n")  # the second of the day fills no tier: no lock
        self.unlocked = u.backup(src, args=("--host", "alpha"))["snapshot_id"]
        self.bypassed = u.backup(src, args=("--host", HOSTILE_HOST))["snapshot_id"]
        u.run("lock", self.bypassed, "--for", "100d", "--mode", "governance")
        u.run("lock", self.bypassed, "--for", "70d", "--bypass-governance")
        self.forgotten = u.backup(src, args=("--host", "alpha", "--tag", "gone"))["snapshot_id"]
        u.run("forget", self.forgotten, "--trust-clock")
        u.run("hold", self.tiered, "--reason", HOLD_REASON)
        u.run("check")
        u.run("check", "--read-data")
        self.drill = u.json("drill", self.tiered, "--sample", "1")
        u.run("settings", "--min-retention", "1d")
        self.snapshots = {s["id"]: s for s in u.snapshots()}
        self.log = u.json("audit", "log")

    def report(self, *args, **kw) -> dict:
        return self.user.json("report", *args, **kw)


@pytest.fixture
def scenario(tmp_path, in_subprocess) -> Scenario:
    """Made by real `amber` processes in the tests marked `subprocess`, in this process elsewhere."""
    return Scenario(tmp_path, in_subprocess)


def test_the_report_shows_what_the_other_commands_say(scenario):
    doc = scenario.report()
    snaps = scenario.snapshots
    assert [s["id"] for s in doc["snapshots"]] == list(snaps)  # oldest first, as `snapshots`
    for s in doc["snapshots"]:
        want = snaps[s["id"]]
        assert (s["hostname"], s["tags"], s["lock_tier"]) == (want["hostname"], want["tags"], want["lock_tier"])
        assert s["bytes"] == want["summary"]["bytes_total"] and s["files"] == want["summary"]["files_total"]
        if want["retention"] is None:
            assert s["lock"] is None
        else:
            assert s["lock"]["until"] == want["retention"]["until"] and s["lock"]["mode"] == want["retention"]["mode"]
    by_id = {s["id"]: s for s in doc["snapshots"]}
    assert by_id[scenario.unlocked]["lock"] is None and by_id[scenario.tiered]["lock_tier"] == "weekly"
    assert by_id[scenario.bypassed]["hostname"] == HOSTILE_HOST
    assert by_id[scenario.bypassed]["overrides"], "the shortened lock is shown on its snapshot"

    hold_event = next(e for e in scenario.log if e["type"] == "hold")
    assert doc["holds"] == [
        {
            "reason": HOLD_REASON,
            "since": hold_event["time"],
            "event": hold_event["seq"],
            "snapshot": scenario.tiered,
            "hostname": "alpha",
        }
    ]
    assert [h["hostname"] for h in doc["hosts"]] == sorted(["alpha", HOSTILE_HOST])


def test_checks_drills_overrides_and_settings_come_from_the_audit_log(scenario):
    doc = scenario.report()
    log = scenario.log
    checks = [e for e in log if e["type"] == "check"]
    assert doc["checks"]["total"] == 2 and doc["checks"]["last"]["event"] == checks[-1]["seq"]
    assert doc["checks"]["last"]["read_data"] is True and doc["checks"]["last"]["ok"] is True
    assert doc["checks"]["last_read_data"]["event"] == checks[-1]["seq"]

    drill = doc["drills"]["last"]
    assert doc["drills"]["total"] == 1 and drill["snapshot"] == scenario.tiered
    for field in ("sample", "files", "bytes", "verified", "total_files", "total_bytes", "ok"):
        assert drill[field] == scenario.drill[field], field
    assert drill["rto_seconds"] == round(scenario.drill["rto_seconds"], 1)

    bypass = next(e for e in log if e["type"] == "lock" and e["details"].get("bypass_governance"))
    forget = next(e for e in log if e["type"] == "forget")
    assert [(o["kind"], o["event_type"], o["event"], o["snapshot"], o["time"]) for o in doc["overrides"]] == [
        ("bypass-governance", "lock", bypass["seq"], scenario.bypassed, bypass["time"]),
        ("trust-clock", "forget", forget["seq"], scenario.forgotten, forget["time"]),
    ]
    assert [(c["version"], c["min_retention"]) for c in doc["settings_changes"]] == [(0, None), (1, None), (2, "1d")]
    assert doc["settings_changes"][1]["lock_policy"]["tiers"] == {"daily": "14d", "weekly": "8w"}
    assert doc["repository"]["settings"]["version"] == 2 and doc["repository"]["settings"]["min_retention"] == "1d"

    audit = doc["audit_log"]
    assert audit["events"] == len(log) and audit["checkpoint"]["size"] == len(log)
    assert audit["checkpoint"]["time"] == log[-1]["time"] and audit["verified"]["ok"] is True
    assert audit["by_type"]["snapshot"] == 4 and audit["by_type"]["lock"] == 2 and audit["by_type"]["forget"] == 1
    assert scenario.forgotten not in {s["id"] for s in doc["snapshots"]}
    assert len(scenario.user.json("audit", "log")) == len(log), "a report records nothing"


def test_the_lock_horizon_and_the_findings(scenario):
    doc = scenario.report()
    h = doc["lock_horizon"]
    assert (h["locked_now"], h["held_now"], h["unprotected_now"]) == (2, 1, 1)
    bypassed_until = scenario.snapshots[scenario.bypassed]["retention"]["until"]
    assert h["latest_expiry"] == bypassed_until and h["latest_expiry_snapshot"] == scenario.bypassed
    first, last = h["buckets"][0], h["buckets"][-1]
    sizes = {s["id"]: s["bytes"] for s in doc["snapshots"]}
    assert first["snapshots"] == 2 and first["bytes"] == sizes[scenario.tiered] + sizes[scenario.bypassed]
    assert last["snapshots"] == 1 and last["held"] == 1, "after every lock ends only the held snapshot stays"
    assert sum(b["locks_ending"] for b in h["buckets"]) == 2

    codes = {f["code"]: f for f in doc["findings"]}
    assert scenario.unlocked[:8] in codes["snapshots-without-lock"]["message"]
    assert scenario.bypassed[:8] in codes["bypass-governance"]["message"]
    assert codes["bypass-governance"]["severity"] == "warning"
    assert "holds" in codes and "no-witness" in codes
    assert not {"no-check", "no-drill", "check-failed", "drill-failed", "audit-log-errors"} & set(codes)
    assert [f["severity"] for f in doc["findings"]] == sorted(
        (f["severity"] for f in doc["findings"]), key=("alert", "warning", "notice").index
    )


def test_the_text_summary_names_the_findings(scenario):
    out = scenario.user.run("report").out
    assert "findings:" in out and "--bypass-governance" in out and HOLD_REASON in out
    assert "legal holds: 1" in out and "restore drills: 1" in out and "checks: 2" in out


def test_an_anomaly_event_is_shown_as_an_alert(scenario):
    """The `anomaly` event as its contract has it (written here through the library)."""
    from amber.repository import Repository

    u = scenario.user
    with environment(u.env()):
        r = Repository.open(u.url, u.password)
        r.log_event(
            "anomaly",
            scenario.bypassed,
            parent=scenario.tiered,
            signals={"changed_share": 0.93, "incompressible_share": 0.88},
            reasons=["93% of the files changed", "<i>ransom note</i> README_DECRYPT.txt"],
            held=scenario.tiered,
        )
        r.close()
    doc = scenario.report()
    assert doc["anomalies"]["total"] == 1
    a = doc["anomalies"]["recent"][0]
    assert (a["snapshot"], a["parent"], a["held"]) == (scenario.bypassed, scenario.tiered, scenario.tiered)
    assert a["signals"]["changed_share"] == 0.93
    assert any(f["code"] == "anomaly" and f["severity"] == "alert" for f in doc["findings"])


def test_a_write_only_key_reports_what_it_can_and_says_what_it_left_out(scenario, tmp_path):
    u = scenario.user
    u.run("key", "add", "--role", "backup", env=u.env(AMBER_NEW_PASSWORD="backup host"))
    host = Amber(tmp_path / "host", password="backup host")
    host.repo, host.url = u.repo, u.url
    full, partial = scenario.report(), host.json("report")
    assert partial["access"]["role"] == "backup" and partial["access"]["left_out"]
    assert any(f["code"] == "partial-report" for f in partial["findings"])
    assert [s["id"] for s in partial["snapshots"]] == [s["id"] for s in full["snapshots"]]
    for a, b in zip(partial["snapshots"], full["snapshots"]):  # sizes from the snapshot events
        assert (a["bytes"], a["files"], a["lock"], a["hold"]) == (b["bytes"], b["files"], b["lock"], b["hold"])
    assert partial["holds"] == full["holds"] and partial["drills"]["total"] == 1
    page = tmp_path / "partial.html"
    host.run("report", "--html", page)
    assert "write-only" in embedded(page)["access"]["left_out"][0]


def test_the_page_embeds_exactly_the_json_document_and_escapes_it(scenario, tmp_path):
    page = tmp_path / "report.html"
    doc = scenario.report("--html", page)
    html = page.read_text()
    assert embedded(page) == doc
    assert HOLD_REASON not in html and "<script>window.__pwned" not in html and HOSTILE_HOST not in html
    assert len(re.findall(r"<script\b", html)) == 3  # the data, Chart.js and the page's own script
    assert not re.search(r"<(script|link|img|iframe|object)\b[^>]*\b(src|href|data)\s*=", html, re.I), (
        "nothing is fetched"
    )


def test_an_unwritable_page_is_a_clear_error(scenario, tmp_path):
    r = scenario.user.run("report", "--html", tmp_path / "missing" / "report.html", expect=1)
    assert "cannot write the report" in r.stderr and "missing" in r.stderr


def embedded(page: Path) -> dict:
    """The JSON document in the page's amber-report-data element."""
    html = page.read_text()
    m = re.search(r'<script type="application/json" id="amber-report-data">(.*?)</script>', html, re.S)
    assert m, "the page has no embedded document"
    return json.loads(m.group(1))


# -- in a real browser ------------------------------------------------------------------------


def chromium() -> str | None:
    """The system's Chromium (Debian's `chromium` package), else AMBER_TEST_CHROMIUM."""
    found = os.environ.get("AMBER_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and os.path.exists(found) else None


@pytest.fixture
def browser():
    """A headless Chromium driven by Playwright; never one Playwright downloads itself."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the `test` extra)")
    exe = chromium()
    if exe is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`; quickstart.py test installs it)")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=args, headless=True)
        yield b
        b.close()


class Opened:
    """A page opened from a file, with every console message, page error and request seen."""

    def __init__(self, browser, path: Path) -> None:
        self.console: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        self.url = path.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_function("window.amberReport && window.amberReport.rendered === true", timeout=20_000)

    def assert_clean(self) -> None:
        assert not self.errors, f"errors in the page: {self.errors}"
        assert not [m for m in self.console if m.startswith(("error", "warning"))], self.console
        assert not self.failed, f"failed requests: {self.failed}"
        assert self.requests == [self.url], f"the page fetched more than itself: {self.requests}"

    def rows(self, table: str) -> list[dict]:
        """Each row of a table as {data-field: text}, with its data-key as `_key`."""
        return self.page.evaluate(
            """(id) => Array.from(document.querySelectorAll('#' + id + ' tbody tr')).map(tr => {
                 const row = {_key: tr.getAttribute('data-key')};
                 tr.querySelectorAll('td').forEach(td => { row[td.getAttribute('data-field')] = td.textContent; });
                 return row; })""",
            table,
        )

    def painted(self, canvas: str) -> int:
        """How many pixels of a canvas were drawn on."""
        return self.page.evaluate(
            """(id) => { const c = document.getElementById(id);
                 if (!c || !c.width || !c.height) return 0;
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }""",
            canvas,
        )


def shown_time(iso: str) -> str:
    return iso[:19].replace("T", " ") + " UTC"


@pytest.mark.subprocess
def test_the_page_in_chromium_shows_what_json_says(scenario, browser, tmp_path):
    page = tmp_path / "report.html"
    doc = scenario.report("--html", page)
    opened = Opened(browser, page)
    shot = tmp_path / "report.png"
    opened.page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot of the report: {shot}")
    opened.assert_clean()

    for canvas, chart in (("timeline-chart", "timeline"), ("horizon-chart", "horizon")):
        assert opened.painted(canvas) > 1000, f"{canvas} was not drawn"
        assert opened.page.evaluate(f"!!window.amberReport.charts.{chart}")
    assert opened.page.evaluate("window.amberReport.charts.timeline.data.labels.length") == len(doc["snapshots"])

    rows = opened.rows("snapshots-table")
    assert [r["_key"] for r in rows] == [s["id"] for s in reversed(doc["snapshots"])]
    for r, s in zip(rows, reversed(doc["snapshots"])):
        assert r["hostname"] == s["hostname"] and r["tags"] == (", ".join(s["tags"]) or "—")
        assert r["until"] == (shown_time(s["lock"]["until"]) if s["lock"] else "—")
        assert r["hold"] == (s["hold"]["reason"] if s["hold"] else "—")
        assert r["tier"] == (s["lock_tier"] or "—")
    datetimes = opened.page.evaluate(
        """Array.from(document.querySelectorAll('#snapshots-table tbody tr')).map(tr => {
             const t = tr.querySelector('td[data-field=until] time'); return t && t.getAttribute('datetime'); })"""
    )
    assert datetimes == [s["lock"]["until"] if s["lock"] else None for s in reversed(doc["snapshots"])]
    hosts = opened.rows("hosts-table")
    assert [(h["_key"], int(h["snapshots"])) for h in hosts] == [(h["hostname"], h["snapshots"]) for h in doc["hosts"]]

    holds = opened.rows("holds-table")
    assert [(h["_key"], h["reason"], h["since"]) for h in holds] == [
        (h["snapshot"], h["reason"], shown_time(h["since"])) for h in doc["holds"]
    ]
    assert len(opened.rows("checks-table")) == doc["checks"]["total"]
    drills = opened.rows("drills-table")
    assert [(d["_key"], d["result"]) for d in drills] == [(str(d["event"]), "passed") for d in doc["drills"]["recent"]]
    overrides = opened.rows("overrides-table")
    assert [o["_key"] for o in overrides] == [f"{o['kind']}:{o['event']}" for o in doc["overrides"]]
    assert [o["kind"] for o in overrides] == ["--bypass-governance", "--trust-clock"]
    findings = opened.page.evaluate(
        "Array.from(document.querySelectorAll('#findings li')).map(li => li.getAttribute('data-code'))"
    )
    assert findings == [f["code"] for f in doc["findings"]]
    assert opened.page.evaluate("document.querySelectorAll('#anomalies-table').length") == 1  # "None." paragraph


def test_hostile_names_and_reasons_show_as_text_and_run_nothing(scenario, browser, tmp_path):
    page = tmp_path / "report.html"
    scenario.report("--html", page)
    opened = Opened(browser, page)
    opened.assert_clean()
    assert opened.page.evaluate("typeof window.__pwned") == "undefined"
    assert opened.page.evaluate("document.querySelectorAll('img, b, p script, td script, td p').length") == 0
    assert opened.page.evaluate("document.scripts.length") == 3
    cell = opened.page.locator(f'#holds-table tr[data-key="{scenario.tiered}"] td[data-field="reason"]')
    assert cell.text_content() == HOLD_REASON
    host = opened.page.locator(f'#snapshots-table tr[data-key="{scenario.bypassed}"] td[data-field="hostname"]')
    assert host.text_content() == HOSTILE_HOST


def test_an_empty_repository_renders_too(amber, browser, tmp_path):
    amber.create()
    page = tmp_path / "empty.html"
    doc = amber.json("report", "--html", page)
    assert doc["snapshots"] == [] and any(f["code"] == "no-snapshots" for f in doc["findings"])
    opened = Opened(browser, page)
    opened.assert_clean()
    assert opened.painted("horizon-chart") > 0
    assert opened.page.evaluate("document.getElementById('timeline-chart')") is None


def test_a_report_over_months_buckets_the_horizon(amber, tmp_path):
    """Locks of years: the horizon is sampled by quarter, and ends after the latest expiry."""
    amber.create()
    src = make_source(tmp_path / "src", {"a": b"a"})
    sid = amber.backup(src)["snapshot_id"]
    amber.run("lock", sid, "--for", "7y", "--mode", "compliance")
    h = amber.json("report")["lock_horizon"]
    assert h["granularity"] == "quarter" and h["buckets"][-1]["snapshots"] == 0
    latest = dt.datetime.fromisoformat(h["latest_expiry"].replace("Z", "+00:00"))
    last = dt.datetime.fromisoformat(h["buckets"][-1]["date"].replace("Z", "+00:00"))
    assert dt.timedelta(0) < last - latest <= dt.timedelta(days=91)


def test_a_witness_is_listed_with_its_newest_checkpoint_and_a_rollback_is_an_alert(amber, tmp_path):
    amber.create()
    src = make_source(tmp_path / "src", {"a": b"a"})
    amber.backup(src)
    amber.run("audit", "witness", "add", "w1", "--dir", tmp_path / "witness")
    amber.backup(src)
    doc = amber.json("report")
    events = doc["audit_log"]["events"]
    assert doc["audit_log"]["witnesses"] == [
        {"name": "w1", "url": f"local:{tmp_path / 'witness'}", "newest_size": events, "ok": True, "cosigned": None}
    ]
    assert "no-witness" not in {f["code"] for f in doc["findings"]}

    saved = tmp_path / "saved"
    shutil.copytree(amber.repo, saved)  # the repository as it is now, to be put back later
    amber.backup(src, args=("--tag", "later"))
    shutil.rmtree(amber.repo)
    shutil.copytree(saved, amber.repo)  # a rollback: the witness holds a newer checkpoint
    for d in (amber.state, amber.cache):  # a client that never saw this repository
        shutil.rmtree(d)
        d.mkdir()
    doc = amber.json("report", quiet=False)
    codes = {f["code"]: f["severity"] for f in doc["findings"]}
    assert doc["audit_log"]["witnesses"][0]["ok"] is False and codes["witness-disagrees"] == "alert"
    assert codes["audit-log-errors"] == "alert" and doc["audit_log"]["verified"]["ok"] is False


def test_a_snapshot_replaced_by_junk_is_an_alert_not_a_crash(amber, tmp_path):
    """An attacker with write access to the folder replaces a snapshot object with junk."""
    amber.create()
    src = make_source(tmp_path / "src", {"a": b"a"})
    kept = amber.backup(src)["snapshot_id"]
    (Path(src) / "b").write_bytes(b"b")
    victim = amber.backup(src)["snapshot_id"]
    stored = amber.repo / "snapshots" / victim
    os.chmod(stored, 0o644)
    stored.write_bytes(os.urandom(300))
    page = tmp_path / "report.html"
    doc = amber.json("report", "--html", page, quiet=False)
    assert [s["id"] for s in doc["snapshots"]] == [kept]
    assert any(victim in u for u in doc["unreadable_snapshots"])
    codes = {f["code"]: f for f in doc["findings"]}
    assert codes["snapshots-unreadable"]["severity"] == "alert" and victim in codes["snapshots-unreadable"]["message"]
    assert codes["audit-log-errors"]["severity"] == "alert"
    assert embedded(page) == doc


@pytest.mark.skipif(LIBFAKETIME is None, reason=NO_FAKETIME)
@pytest.mark.subprocess
def test_months_of_backups_under_a_lock_policy(amber, browser, tmp_path):
    """Backups over three months (the clock moved forward), checked once, never drilled: the
    report made on the last day agrees with `snapshots` of that day, and says the check is old."""
    amber.create()
    amber.run("settings", "--lock-policy", "daily=14d,weekly=8w,monthly=13mo")
    src = Path(make_source(tmp_path / "src", {"a": b"a"}))
    for day in (0, 20, 45, 80):
        env = moved_clock(amber.env(), f"+{day}d")
        (src / f"day{day}").write_bytes(str(day).encode())
        amber.json("backup", src, env=env, quiet=False)
        if day == 20:
            amber.run("check", env=env)
    last = moved_clock(amber.env(), "+80d")
    page = tmp_path / "months.html"
    doc = amber.json("report", "--html", page, env=last, quiet=False)
    snaps = amber.json("snapshots", env=last, quiet=False)
    assert [(s["id"], s["lock"]["until"], s["lock_tier"]) for s in doc["snapshots"]] == [
        (s["id"], s["retention"]["until"], s["lock_tier"]) for s in snaps
    ]
    assert all(s["lock_tier"] for s in doc["snapshots"]), "each backup was the first of its day at least"
    codes = {f["code"] for f in doc["findings"]}
    assert {"check-old", "no-drill"} <= codes and "no-check" not in codes
    assert doc["lock_horizon"]["latest_expiry"] == max(s["retention"]["until"] for s in snaps)
    opened = Opened(browser, page)
    opened.assert_clean()
    assert opened.painted("timeline-chart") > 1000 and opened.painted("horizon-chart") > 1000
    assert [r["_key"] for r in opened.rows("snapshots-table")] == [s["id"] for s in reversed(snaps)]
