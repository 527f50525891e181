"""Restoring hostile snapshots: no partial files, no links through stale entries, no
setuid files or devices when told not to, no allocation of what an index merely claims."""

import os
import stat

import pytest

from amber.errors import IntegrityError, RestoreFailed
from amber.restore.placement import TEMP_PREFIX
from hostile import Planter, meta

from .helpers import open_repo

IS_ROOT = os.geteuid() == 0


def _temporaries(root) -> list[str]:
    return [os.path.join(d, f) for d, dirs, files in os.walk(root) for f in files + dirs if f.startswith(TEMP_PREFIX)]


def _missing_blob(p: Planter, data: bytes) -> str:
    """A blob id the index lists in a pack that does not exist (the pack was lost)."""
    bid = p.repo.keys.blob_id(data)
    p.index_entry(bid, b"\x42" * 32, length=len(data) + 31, raw_length=len(data))
    return bid.hex()


def _restore(repo_path, sid, target, **kw):
    r = open_repo(repo_path)
    return r.restore(r.find_snapshot(sid), str(target), **kw)


@pytest.mark.parametrize("mode", [-1, 0o10000, 2**40, "0o7777"])
def test_out_of_range_modes_are_refused_before_anything_is_written(repo, repo_path, tmp_path, mode):
    p = Planter(repo)
    sid = p.snapshot([p.file("a", mode=mode)])
    target = tmp_path / "target"
    with pytest.raises(IntegrityError, match="mode"):
        _restore(repo_path, sid, target)
    assert not (target / "a").exists()


def test_a_failed_file_is_never_left_partial_under_its_name(repo, repo_path, tmp_path):
    p = Planter(repo)
    good = p.data(b"first half " * 1000)
    lost = _missing_blob(p, b"second half" * 1000)
    node = meta("big", "file", size=22000, content=[good, lost], sha256="ab" * 32)
    sid = p.snapshot([node, p.file("other", b"fine\n")])
    target = tmp_path / "target"
    target.mkdir()
    (target / "big").write_bytes(b"an earlier restore's copy\n")
    with pytest.raises(RestoreFailed) as e:
        _restore(repo_path, sid, target)
    assert "big" in str(e.value)
    assert (target / "big").read_bytes() == b"an earlier restore's copy\n"  # not a partial file
    assert (target / "other").read_bytes() == b"fine\n"  # the others are restored
    assert _temporaries(target) == []


def test_a_file_whose_blobs_do_not_add_up_to_its_size_is_not_restored(repo, repo_path, tmp_path):
    p = Planter(repo)
    node = p.file("short", b"0123456789", size=20)
    sid = p.snapshot([node])
    with pytest.raises(RestoreFailed, match="20"):
        _restore(repo_path, sid, tmp_path / "target")
    assert not (tmp_path / "target" / "short").exists()
    assert _temporaries(tmp_path / "target") == []


def test_hard_links_link_only_to_files_this_restore_wrote(repo, repo_path, tmp_path, outside):
    """The group's first file fails; a stale symlink an earlier restore left in its place
    must not become the second file."""
    p = Planter(repo)
    lost = _missing_blob(p, b"lost content")
    group = {"links": 2, "inode": 77, "device": 1}
    first = meta("a", "file", size=12, content=[lost], sha256="ab" * 32, **group)
    second = meta("b", "file", size=12, content=[lost], sha256="ab" * 32, **group)
    sid = p.snapshot([first, second])
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside / "victim", target / "a")
    with pytest.raises(RestoreFailed):
        _restore(repo_path, sid, target)
    assert not os.path.islink(target / "b")
    assert not (target / "b").exists()
    assert (outside / "victim").read_bytes() == b"must stay\n"
    assert _temporaries(target) == []


def test_hard_links_of_restored_files_are_made(repo, repo_path, tmp_path):
    p = Planter(repo)
    group = {"links": 2, "inode": 78, "device": 1}
    sid = p.snapshot([p.file("a", b"shared\n", **group), p.file("b", b"shared\n", **group)])
    target = tmp_path / "target"
    _restore(repo_path, sid, target)
    assert os.stat(target / "a").st_ino == os.stat(target / "b").st_ino
    assert (target / "b").read_bytes() == b"shared\n"


def test_entries_replace_what_is_in_the_way_without_following_it(repo, repo_path, tmp_path, outside):
    p = Planter(repo)
    sid = p.snapshot([p.file("f", b"new\n"), meta("l", "symlink", target="elsewhere"), meta("p", "fifo")])
    target = tmp_path / "target"
    target.mkdir()
    for name in ("f", "l", "p"):
        os.symlink(outside / "victim", target / name)
    _restore(repo_path, sid, target)
    assert (target / "f").read_bytes() == b"new\n" and not os.path.islink(target / "f")
    assert os.readlink(target / "l") == "elsewhere"
    assert stat.S_ISFIFO(os.lstat(target / "p").st_mode)
    assert (outside / "victim").read_bytes() == b"must stay\n"
    assert _temporaries(target) == []


@pytest.mark.skipif(not IS_ROOT, reason="owners and device nodes are restored only as root")
def test_no_owner_and_no_special(repo, repo_path, tmp_path):
    p = Planter(repo)
    top = [
        p.dir("d", [], mode=0o2775, uid=12345, gid=12345),
        meta("dev", "chardev", rdev=os.makedev(1, 3), mode=0o666),
        meta("pipe", "fifo"),
        p.file("suid", b"#!/bin/sh\n", mode=0o6755, uid=12345, gid=12345),
    ]
    sid = p.snapshot(top)
    trusted = tmp_path / "trusted"
    _restore(repo_path, sid, trusted)
    st = os.lstat(trusted / "suid")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (12345, 0o6755)
    assert stat.S_ISCHR(os.lstat(trusted / "dev").st_mode)
    assert os.lstat(trusted / "d").st_uid == 12345

    untrusted = tmp_path / "untrusted"
    _restore(repo_path, sid, untrusted, no_owner=True, no_special=True)
    st = os.lstat(untrusted / "suid")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (os.getuid(), 0o755)
    assert sorted(os.listdir(untrusted)) == ["d", "suid"]
    st = os.lstat(untrusted / "d")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (os.getuid(), 0o775)


def test_an_index_claiming_a_huge_blob_is_refused_not_allocated(repo, repo_path, tmp_path):
    """An index entry claiming a 4 GiB blob in a small pack: the index file is refused at
    load, the blob is unknown, the restore reports damage (no MemoryError)."""
    p = Planter(repo)
    sid_good = p.snapshot([p.file("small", b"x" * 100)])
    pack = open_repo(repo_path)
    pack.load_index()
    real_pack = next(iter(pack.blobs.index.values())).pack
    claimed = repo.keys.blob_id(b"claimed")
    p.index_entry(claimed, real_pack, length=2**32 - 1, raw_length=2**32 - 1)
    sid = p.snapshot([meta("huge", "file", size=100, content=[claimed.hex()], sha256="ab" * 32)])
    r = open_repo(repo_path)
    r.load_index()
    assert any("4294967295" in problem for problem in r.index_errors)
    with pytest.raises(RestoreFailed, match="not in any index"):
        _restore(repo_path, sid, tmp_path / "target")
    _restore(repo_path, sid_good, tmp_path / "good")  # the other index files still serve
    assert (tmp_path / "good" / "small").read_bytes() == b"x" * 100


def test_a_damaged_folder_is_reported_and_the_rest_restored(repo, repo_path, tmp_path):
    p = Planter(repo)
    bad = p.dir("bad", [meta("x", "fifo", mode=-1)])
    sid = p.snapshot([p.file("a", b"a\n"), bad, p.dir("c", [p.file("d", b"d\n")])])
    target = tmp_path / "target"
    with pytest.raises(RestoreFailed, match="mode"):
        _restore(repo_path, sid, target)
    assert (target / "a").read_bytes() == b"a\n"
    assert (target / "c" / "d").read_bytes() == b"d\n"
    assert os.listdir(target / "bad") == []
