"""Choosing snapshots (repo/selection.py, pure): restic's filters, groups, the newest per group,
and the fold of `tag` events; and the tar headers dump writes for a node's metadata."""

from __future__ import annotations

import base64
import datetime as dt
import io
import tarfile

import pytest

from amber.errors import UsageError
from amber.repo.selection import SnapshotFilter, apply_tags, group, newest, parse_group_by, tag_change, with_tags
from amber.repo.snapshots import Snapshot
from amber.restore.dump import write_tar

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def snap(n: int, host: str, paths: list[str], tags: list[str]) -> Snapshot:
    return Snapshot(
        id=f"{n:064x}",
        time=T0 + dt.timedelta(hours=n),
        hostname=host,
        username="u",
        paths=paths,
        tags=tags,
        tree="0" * 64,
        content_root="0" * 64,
        retention=None,
        summary={},
        doc={},
    )


SNAPS = [
    snap(1, "a", ["/x", "/y"], ["daily"]),
    snap(2, "b", ["/x"], ["daily", "db"]),
    snap(3, "a", ["/x", "/y"], []),
    snap(4, "a", ["/x"], ["db"]),
]


def ids(snaps) -> list[int]:
    return [int(s.id, 16) for s in snaps]


@pytest.mark.parametrize(
    ("hosts", "paths", "tags", "want"),
    [
        ((), (), (), [1, 2, 3, 4]),
        (("a",), (), (), [1, 3, 4]),
        (("a", "b"), (), (), [1, 2, 3, 4]),
        ((), ("/x",), (), [1, 2, 3, 4]),
        ((), ("/x", "/y/"), (), [1, 3]),
        ((), (), ("daily,db",), [2]),
        ((), (), ("daily", "db"), [1, 2, 4]),
        ((), (), ("",), [3]),
        (("a",), ("/y",), ("daily",), [1]),
    ],
)
def test_filters_follow_restic(hosts, paths, tags, want):
    assert ids(SnapshotFilter.of(hosts, paths, tags).select(SNAPS)) == want


def test_groups_and_newest():
    assert parse_group_by("tags,host") == ("host", "tags")
    assert parse_group_by("") == ()
    with pytest.raises(UsageError):
        parse_group_by("host,colour")
    groups = group(SNAPS, ("host", "paths"))
    assert [(k["hostname"], k["paths"], k["tags"]) for k, _ in groups] == [
        ("a", ["/x", "/y"], None),
        ("b", ["/x"], None),
        ("a", ["/x"], None),
    ]
    assert [ids(members) for _k, members in groups] == [[1, 3], [2], [4]]
    assert ids(newest(SNAPS, 1)) == [2, 3, 4]


def test_tag_events_fold_in_log_order_and_bad_ones_are_skipped():
    sid = SNAPS[0].id
    events = [
        {"type": "tag", "snapshot": sid, "details": {"add": ["keep", "x"], "remove": []}},
        {"type": "tag", "snapshot": sid, "details": {"add": [], "remove": ["daily", "x"]}},
        {"type": "tag", "snapshot": sid, "details": {"add": "nope", "remove": []}},
        {"type": "tag", "snapshot": sid, "details": {"add": [1], "remove": []}},
        {"type": "tag", "snapshot": sid, "details": {"add": [""], "remove": []}},
        {"type": "tag", "snapshot": sid, "details": []},
        {"type": "tag", "snapshot": "f" * 64, "details": {"add": ["ghost"], "remove": []}},
        {"type": "hold", "snapshot": sid, "details": {"add": ["not a tag event"]}},
    ]
    out = with_tags(SNAPS, events)
    assert out[0].tags == ["keep"] and out[1:] == SNAPS[1:]
    assert SNAPS[0].tags == ["daily"], "the stored snapshot is not changed"
    assert apply_tags(["a"], [(["b", "a"], ["a"]), (["c"], [])]) == ["b", "c"]
    assert tag_change(events[2]) is None and tag_change(events[0]) == (sid, ["keep", "x"], [])


def test_tar_carries_extended_attributes_as_schily_headers():
    node = {
        "name": "d",
        "type": "dir",
        "mode": 0o750,
        "uid": 1,
        "gid": 2,
        "mtime_ns": 1_600_000_000_123_456_789,
        "xattrs": {
            "user.comment": base64.b64encode(b"hello").decode(),
            "user.binary": base64.b64encode(b"\xff\x00\xfe").decode(),
        },
    }
    out = io.BytesIO()
    write_tar(None, iter([("/d", node)]), out)  # type: ignore[arg-type]  # folders read no content
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        (m,) = tar.getmembers()
    assert m.name == "d" and m.isdir() and m.mode == 0o750 and (m.uid, m.gid) == (1, 2)
    assert m.pax_headers["mtime"] == "1600000000.123456789"
    assert m.pax_headers["SCHILY.xattr.user.comment"] == "hello"
    assert m.pax_headers["SCHILY.xattr.user.binary"].encode("utf-8", "surrogateescape") == b"\xff\x00\xfe"
