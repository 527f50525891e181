"""The folders a mount shows above the snapshots, and the attributes it reads from nodes (pure)."""

from __future__ import annotations

import base64
import datetime as dt

from amber.mount import views
from amber.mount.fs import Mount
from amber.mount.nodeattrs import MAX_NLINK, MAX_XATTR_VALUE, inode_number, xattrs
from amber.repo.snapshots import Snapshot

T0 = dt.datetime(2026, 12, 2, 5, 40, 12, 500000, tzinfo=dt.UTC)


def snap(sid: str, *, seconds: int = 0, host: str = "h1", tags=()) -> Snapshot:
    return Snapshot(
        id=sid * 8,
        time=T0 + dt.timedelta(seconds=seconds),
        hostname=host,
        username="u",
        paths=["/data"],
        tags=list(tags),
        tree="0" * 64,
        content_root="0" * 64,
        retention=None,
        summary={},
        doc={},
    )


def test_snapshots_are_named_by_their_utc_second_and_latest_links_the_newest():
    a, b, c = snap("aaaaaaaa"), snap("bbbbbbbb"), snap("cccccccc", seconds=60, tags=["daily"])
    v = views.build([c, b, a])
    assert set(v.folders["snapshots"]) == {
        "2026-12-02T05:40:12Z",
        "2026-12-02T05:40:12Z-1",
        "2026-12-02T05:41:12Z",
        "latest",
    }
    assert v.folders["snapshots"]["2026-12-02T05:40:12Z"] is a  # same second: in the order of ids
    assert v.folders["snapshots"]["latest"] == views.Link("2026-12-02T05:41:12Z")
    assert set(v.folders["ids"]) == {"aaaaaaaa", "bbbbbbbb", "cccccccc"}
    assert v.folders["hosts"] == {"h1": views.FOLDER}
    assert v.folders["tags/daily"] == {"2026-12-02T05:41:12Z": c, "latest": views.Link("2026-12-02T05:41:12Z")}
    assert v.folders[""] == dict.fromkeys(views.TOP, views.FOLDER)


def test_host_names_and_tags_that_cannot_be_file_names_are_made_safe_or_left_out():
    v = views.build([snap("aaaaaaaa", host="../etc", tags=["a/b", "..", "", "x\x00y"])])
    assert set(v.folders["hosts"]) == {".._etc"}
    assert set(v.folders["tags"]) == {"a_b"}


def test_no_snapshots_no_latest():
    v = views.build([])
    assert v.folders["snapshots"] == {} and v.folders["ids"] == {}


def test_xattrs_are_read_from_the_node_and_malformed_ones_left_out():
    good = base64.b64encode(b"\x00value").decode()
    node = {
        "xattrs": {
            "user.a": good,
            "user.bad": "not base64!",
            "user.huge": base64.b64encode(b"x" * (MAX_XATTR_VALUE + 1)).decode(),
            "": good,
            "user.num": 5,
        }
    }
    assert xattrs(node) == {"user.a": b"\x00value"}
    assert xattrs({"xattrs": ["user.a"]}) == {} and xattrs({}) == {}


def test_node_attributes():
    node = {"type": "file", "mode": 0o640, "size": 1000, "uid": 7, "gid": 8, "mtime_ns": 123, "ctime_ns": 456}
    a = Mount.node_attrs(node)
    assert a["st_mode"] == 0o100640 and a["st_size"] == 1000 and (a["st_uid"], a["st_gid"]) == (7, 8)
    assert (a["st_mtime"], a["st_ctime"]) == (123, 456)
    link = Mount.node_attrs({"type": "symlink", "mode": 0o777, "target": "ab\udcff", "mtime_ns": 0})
    assert link["st_mode"] == 0o120777 and link["st_size"] == 3


def test_link_counts_are_bounded_and_linked_files_share_an_inode_number():
    base = {"type": "file", "mode": 0o644, "size": 3, "inode": 77, "device": 5, "ctime_ns": 9, "sha256": "ab" * 32}
    assert Mount.node_attrs({**base, "links": 3})["st_nlink"] == 3
    assert Mount.node_attrs(base)["st_nlink"] == 1
    assert Mount.node_attrs({**base, "links": 1 << 40})["st_nlink"] == MAX_NLINK
    for hostile in (0, -5, "2", None, 2.5):
        assert Mount.node_attrs({**base, "links": hostile})["st_nlink"] == 1
    assert Mount.node_attrs({"type": "dir", "links": 4})["st_nlink"] == 1
    linked = {**base, "links": 2}
    assert inode_number("/snapshots/x/a", linked) == inode_number("/hosts/h/x/b", linked)
    assert inode_number("/snapshots/x/a", linked) != inode_number("/snapshots/x/a", {**linked, "ctime_ns": 10})
    assert inode_number("/snapshots/x/a", base) != inode_number("/snapshots/x/b", base)
    assert inode_number("/snapshots/x/a", base) == inode_number("/snapshots/x/a")
    assert inode_number("/") == 1
    assert all(1 < inode_number(f"/p{i}") < 1 << 63 for i in range(1000))
