"""Choosing snapshots as a restic user does: --host/--path/--tag narrowing `latest` on every
command that takes a snapshot, `snapshots --group-by/--latest`, `forget --keep-tag/--group-by`,
and tags changed afterwards by `amber tag` (write-once `tag` events in the audit log)."""

from __future__ import annotations

import shlex

import pytest

from amber.repository import Repository

from cli_helpers import Amber, environment, write

pytestmark = pytest.mark.subprocess


@pytest.fixture
def three(repo: Amber, tmp_path) -> dict:
    """Snapshots of two folders from two hosts, oldest first:
    a1 (host alpha, /A, tag daily), b1 (host beta, /B, tags daily,db), a2 (host alpha, /A, none)."""
    a, b = tmp_path / "A", tmp_path / "B"
    write(a / "who.txt", b"A first\n")
    write(b / "who.txt", b"B only\n")
    ids = {"a1": repo.backup(a, args=("--host", "alpha", "--tag", "daily"))["snapshot_id"]}
    ids["b1"] = repo.backup(b, args=("--host", "beta", "--tag", "daily,db"))["snapshot_id"]
    write(a / "who.txt", b"A second\n")
    ids["a2"] = repo.backup(a, args=("--host", "alpha"))["snapshot_id"]
    return {"ids": ids, "A": a, "B": b}


def listed(repo: Amber, *args) -> list[str]:
    return [s["id"] for s in repo.snapshots(*args)]


def test_listing_filters_follow_restic(repo, three):
    ids, b = three["ids"], three["B"]
    assert listed(repo, "--host", "alpha") == [ids["a1"], ids["a2"]]
    assert listed(repo, "--host", "alpha", "--host", "beta") == [ids["a1"], ids["b1"], ids["a2"]]
    assert listed(repo, "--path", str(b)) == [ids["b1"]]
    assert listed(repo, "--path", str(b) + "/") == [ids["b1"]], "a trailing slash names the same path"
    assert listed(repo, "--tag", "daily,db") == [ids["b1"]], "a,b within one --tag: both"
    assert listed(repo, "--tag", "db", "--tag", "daily") == [ids["a1"], ids["b1"]], "two --tag: either"
    assert listed(repo, "--tag", "") == [ids["a2"]], "an empty tag list: untagged snapshots"
    assert listed(repo, "--host", "alpha", "--tag", "db") == []
    assert [s["tags"] for s in repo.snapshots()] == [["daily"], ["daily", "db"], []], "--tag a,b stores two tags"


def test_latest_is_narrowed_on_every_command(repo, three, tmp_path):
    ids, a, b = three["ids"], three["A"], three["B"]
    short = {k: v[:8] for k, v in ids.items()}
    assert repo.run("cat", "latest", f"{b}/who.txt", "--host", "beta").stdout == b"B only\n"
    assert repo.run("cat", "latest", f"{a}/who.txt", "--tag", "daily", "--host", "alpha").stdout == b"A first\n"
    assert repo.run("cat", "latest", f"{a}/who.txt").stdout == b"A second\n"
    assert repo.run("dump", "latest", f"{b}/who.txt", "--path", str(b)).stdout == b"B only\n"
    paths = [e["path"] for e in repo.json("ls", "latest", "--tag", "db")]
    assert f"{b}/who.txt" in paths and f"{a}/who.txt" not in paths
    d = repo.json("diff", "latest", "latest", "--host", "alpha")
    assert d["from"] == d["to"] == ids["a2"]
    assert repo.json("stats", "latest", "--host", "beta")["snapshots_count"] == 1
    assert repo.json("stats", "--host", "alpha")["snapshots_count"] == 2, "no SNAPSHOT: all those chosen"
    assert {m["snapshot"] for m in repo.json("find", "who.txt", "--tag", "daily")} == {ids["a1"], ids["b1"]}
    restored = repo.json("restore", "latest", "--path", str(b), "--target", tmp_path / "r")
    assert restored["snapshot_id"] == ids["b1"]
    assert (tmp_path / "r" / str(b).lstrip("/") / "who.txt").read_bytes() == b"B only\n"
    assert repo.json("drill", "latest", "--tag", "daily", "--host", "alpha")["snapshot_id"] == ids["a1"]
    assert repo.json("lock", "latest", "--host", "beta", "--for", "1d")["snapshot_id"] == ids["b1"]
    assert short["a1"] in repo.run("hold", "latest", "--tag", "daily", "--path", str(a), "--reason", "case 7").out
    assert short["a1"] in repo.run("release", "latest", "--tag", "daily", "--path", str(a)).out
    out = repo.run("evidence", "export", "latest", f"{b}/who.txt", "--host", "beta", "-o", tmp_path / "e.zip").out
    assert f"of snapshot {short['b1']}" in out
    assert repo.json("forget", "latest", "--host", "alpha", "--dry-run")["remove"] == [ids["a2"]]
    assert repo.json("tag", "latest", "--path", str(a), "--tag", "daily", "--add", "x")["snapshots"] == [ids["a1"]]
    r = repo.run("ls", "latest", "--host", "gamma", expect=None)
    assert r.rc != 0 and "--host gamma" in r.stderr, r
    # a snapshot named by id is taken as named (restic: the filters narrow only `latest`)
    assert repo.run("cat", ids["a1"], f"{a}/who.txt", "--host", "beta").stdout == b"A first\n"


def test_group_by_json_has_restics_shape(repo, three):
    ids = three["ids"]
    groups = repo.json("snapshots", "--group-by", "host")
    assert [g["group_key"] for g in groups] == [
        {"hostname": "alpha", "paths": None, "tags": None},
        {"hostname": "beta", "paths": None, "tags": None},
    ]
    assert [[s["id"] for s in g["snapshots"]] for g in groups] == [[ids["a1"], ids["a2"]], [ids["b1"]]]
    assert all(
        {"id", "time", "hostname", "paths", "tags", "legal_hold"} <= set(s) for g in groups for s in g["snapshots"]
    )
    groups = repo.json("snapshots", "--group-by", "host,paths,tags")
    assert len(groups) == 3
    assert groups[1]["group_key"] == {"hostname": "beta", "paths": [str(three["B"])], "tags": ["daily", "db"]}
    text = repo.run("snapshots", "--group-by", "host").out
    assert "host [alpha]" in text and "host [beta]" in text
    assert repo.run("snapshots", "--group-by", "colour", expect=2).stderr


def test_latest_n_per_host_and_paths(repo, three):
    ids = three["ids"]
    assert listed(repo, "--latest", "1") == [ids["b1"], ids["a2"]]
    assert listed(repo, "--latest", "2") == [ids["a1"], ids["b1"], ids["a2"]]
    groups = repo.json("snapshots", "--latest", "1", "--group-by", "tags")
    assert {tuple(g["group_key"]["tags"]): [s["id"] for s in g["snapshots"]] for g in groups} == {
        ("daily",): [ids["a1"]],
        ("daily", "db"): [ids["b1"]],
        (): [ids["a2"]],
    }


def test_tag_add_remove_set_are_events_folded_into_everything(repo, three):
    ids = three["ids"]
    before = {p.name for p in (repo.repo / "snapshots").rglob("*") if p.is_file()}
    repo.run("tag", ids["a2"], "--add", "keep,monthly")
    repo.run("tag", ids["a2"], ids["a1"], "--remove", "monthly", "--add", "checked")
    repo.run("tag", ids["b1"], "--set", "db,weekly")
    tags = {s["id"]: s["tags"] for s in repo.snapshots()}
    assert tags == {ids["a1"]: ["daily", "checked"], ids["b1"]: ["db", "weekly"], ids["a2"]: ["keep", "checked"]}
    assert listed(repo, "--tag", "checked,keep") == [ids["a2"]]
    assert listed(repo, "--tag", "daily") == [ids["a1"]], "the tag --set took away"
    after = {p.name for p in (repo.repo / "snapshots").rglob("*") if p.is_file()}
    assert after == before, "no snapshot was rewritten"
    events = [e for e in repo.json("audit", "log") if e["type"] == "tag"]
    assert [(e["snapshot"], e["details"]) for e in events] == [
        (ids["a2"], {"add": ["keep", "monthly"], "remove": []}),
        (ids["a2"], {"add": ["checked"], "remove": ["monthly"]}),
        (ids["a1"], {"add": ["checked"], "remove": []}),
        (ids["b1"], {"add": ["weekly"], "remove": ["daily"]}),
    ]
    assert "tag" in repo.run("audit", "log").out
    # nothing to change: no event
    repo.run("tag", ids["a2"], "--add", "keep")
    assert len([e for e in repo.json("audit", "log") if e["type"] == "tag"]) == 4
    repo.run("tag", ids["b1"], "--set", "")
    assert repo.snapshots("--host", "beta")[0]["tags"] == []
    assert repo.run("tag", ids["b1"], "--set", "x", "--add", "y", expect=2).stderr
    assert repo.run("tag", ids["b1"], expect=2).stderr
    repo.run("audit", "verify")


def test_forget_keep_tag_with_group_by_never_removes_locked(repo, three):
    ids = three["ids"]
    repo.run("tag", ids["a1"], "--add", "precious")
    repo.run("lock", ids["b1"], "--for", "1d")
    doc = repo.json("forget", "--keep-tag", "precious", "--dry-run")
    assert doc["remove"] == [ids["a2"]] and ids["b1"] in doc["locked"]
    assert doc["reasons"][ids["a1"]] == ["has tags"]
    # one group for everything: keep-last 1 keeps only the newest of all
    doc = repo.json("forget", "--keep-last", "1", "--group-by", "", "--dry-run")
    assert doc["remove"] == [ids["a1"]] and doc["locked"] == [ids["b1"]]
    doc = repo.json("forget", "--keep-last", "1", "--keep-tag", "precious", "--group-by", "", "--dry-run")
    assert doc["remove"] == []
    # default grouping (host, paths): each group keeps its newest
    doc = repo.json("forget", "--keep-last", "1", "--dry-run")
    assert doc["remove"] == [ids["a1"]]
    doc = repo.json("forget", "--keep-tag", "precious")
    assert doc["remove"] == [ids["a2"]]
    assert set(listed(repo)) == {ids["a1"], ids["b1"]}


def test_write_only_key_adds_tags_but_removes_none(tmp_path):
    admin = Amber(tmp_path / "admin", subprocess=True)
    admin.create()
    src = tmp_path / "src"
    write(src / "f", b"f\n")
    sid = admin.backup(src, args=("--tag", "keep"))["snapshot_id"]
    admin.run("key", "add", "--role", "backup", env=admin.env(AMBER_NEW_PASSWORD="backup pw"))
    host = Amber(tmp_path / "host", password="backup pw", subprocess=True)
    host.repo, host.url = admin.repo, admin.url
    host.run("tag", "latest", "--add", "from-host")
    r = host.run("tag", "latest", "--remove", "keep", expect=13)
    assert "write-only" in r.stderr
    assert host.snapshots()[0]["tags"] == ["keep", "from-host"]
    # the same removal written behind the CLI's back is not honoured by anyone
    with environment(host.env()):
        r = Repository.open(host.url, "backup pw")
        r.log_event("tag", sid, None, add=[], remove=["keep"])
        r.close()
    assert admin.snapshots()[0]["tags"] == ["keep", "from-host"]
    assert admin.json("forget", "--keep-tag", "keep", "--dry-run")["remove"] == []
    bad = admin.run("audit", "verify", expect=None)
    assert bad.rc == 20 and "may not write it" in bad.stderr + bad.out, bad


def test_hostile_tag_events_are_ignored_and_reported(repo, three):
    ids = three["ids"]
    with environment(repo.env()):
        r = Repository.open(repo.url, repo.password)
        r.log_event("tag", ids["a1"], None, add="not-a-list", remove=[])
        r.log_event("tag", ids["a1"], None, add=[7, None], remove=[])
        r.log_event("tag", ids["a1"], None, add=["x" * 5000], remove=[])
        r.log_event("tag", ids["a1"], None, add=[""], remove=[])
        r.log_event("tag", ids["a1"], None, add=[{"nested": []}], remove="daily")
        r.log_event("tag", "0" * 64, None, add=["ghost"], remove=[])
        r.close()
    assert [s["tags"] for s in repo.snapshots()] == [["daily"], ["daily", "db"], []]
    assert listed(repo, "--tag", "ghost") == []
    v = repo.run("audit", "verify")
    text = v.out + v.stderr
    assert text.count("not a tag change") == 5, v
    assert "names a snapshot the log does not show" in text, v
    repo.run("forget", "--keep-tag", "daily", "--dry-run")


# -- --password-command ----------------------------------------------------------------------------


def test_password_command(repo, tmp_path):
    script = tmp_path / "pw.sh"
    script.write_text(f"#!/bin/sh\nprintf '%s\\nsecond line\\n' {shlex.quote(repo.password)}\n", encoding="utf-8")
    script.chmod(0o755)
    env = repo.env(AMBER_PASSWORD=None, AMBER_PASSWORD_COMMAND=str(script))
    assert repo.run("snapshots", "--json", env=env).json() == []
    env = repo.env(AMBER_PASSWORD=None)
    assert repo.run("--password-command", str(script), "snapshots", env=env).rc == 0
    assert repo.run("snapshots", "--password-command", f"'{script}'", env=env).rc == 0
    failing = repo.env(AMBER_PASSWORD=None, AMBER_PASSWORD_COMMAND="sh -c 'exit 3'")
    r = repo.run("snapshots", env=failing, expect=1)
    assert "password command" in r.stderr and "exit 3" in r.stderr
    r = repo.run("snapshots", env=repo.env(AMBER_PASSWORD=None, AMBER_PASSWORD_COMMAND="/no/such/cmd"), expect=1)
    assert "/no/such/cmd" in r.stderr
    r = repo.run("snapshots", env=repo.env(AMBER_PASSWORD=None, AMBER_PASSWORD_COMMAND="echo wrong"), expect=12)
    r = repo.run("snapshots", env=repo.env(AMBER_PASSWORD=None, AMBER_PASSWORD_COMMAND="true"), expect=1)
    assert "no password" in r.stderr
    both = repo.env(AMBER_PASSWORD_COMMAND=str(script), AMBER_PASSWORD_FILE=str(script))
    assert "mutually exclusive" in repo.run("snapshots", env=both, expect=2).stderr


def test_from_password_command_for_copy(repo, tmp_path):
    other = Amber(tmp_path / "other", password="the other one")
    other.create()
    write(tmp_path / "s" / "f", b"f\n")
    other.backup(tmp_path / "s")
    env = repo.env(AMBER_FROM_PASSWORD_COMMAND="echo 'the other one'")
    doc = repo.run("copy", "--from", other.url, "--json", env=env).json()
    assert len(doc["copied"]) == 1
