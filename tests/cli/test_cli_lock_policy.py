"""`amber init --lock-policy` and `amber settings --lock-policy`, as a user types them."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import Amber, make_source


def test_a_lock_policy_from_the_command_line(tmp_path):
    u = Amber(tmp_path / "u")
    u.run("init", "--lock-policy", "daily=14d,weekly=8w,monthly=13mo,yearly=7y", "--lock-mode", "compliance")
    src = Path(make_source(tmp_path / "src", {"a.txt": b"a\n"}))
    first = u.backup(src)["snapshot_id"]
    second = u.backup(src)["snapshot_id"]
    listed = {s["id"]: s for s in u.snapshots()}
    assert listed[first]["lock_tier"] == "yearly" and listed[first]["retention"]["mode"] == "compliance"
    assert listed[second]["lock_tier"] is None and listed[second]["retention"] is None
    assert "yearly" in u.run("snapshots").out
    shown = u.json("settings")["lock_policy"]
    assert shown == {"tiers": {"daily": "14d", "weekly": "8w", "monthly": "13mo", "yearly": "7y"}, "mode": "compliance"}
    u.run(
        "settings", "--lock-policy", "daily=7d,weekly=8w,monthly=13mo,yearly=7y", "--lock-mode", "compliance", expect=30
    )
    u.run("settings", "--lock-policy", "daily=30d,weekly=8w,monthly=13mo,yearly=7y", "--lock-mode", "compliance")
    assert u.json("settings")["lock_policy"]["tiers"]["daily"] == "30d"
    assert [e for e in u.json("audit", "log") if e["type"] == "setting"][-1]["details"]["lock_policy"]["tiers"][
        "daily"
    ] == "30d"
    u.run("forget", first, expect=30)  # compliance: locked


def test_a_malformed_policy_is_refused_before_anything_is_made(tmp_path):
    u = Amber(tmp_path / "u")
    for bad in (("--lock-policy", "hourly=1d"), ("--lock-policy", "daily=soon"), ("--lock-mode", "compliance")):
        u.run("init", *bad, expect=2)
    assert not u.repo.exists() or not any(u.repo.iterdir())
