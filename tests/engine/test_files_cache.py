"""The files cache, read and written one folder at a time: round trips, damage, one file per set of paths."""

from __future__ import annotations

import os

from amber.backup.filescache import OLD_NAME, FilesCache, cache_name

from .helpers import open_repo, set_past_mtimes, small_tree, write

ID = "ab" * 32
SHA = "cd" * 32


def entry(n: int, blobs: int = 1) -> tuple:
    meta = None if n % 2 else {"flags": 0x40, "xattrs": {"user.n": "AA=="}} if n % 4 else {}
    return (n, 1_700_000_000_000_000_000 + n, -5 - n, 2**63 + n, [f"{n:02x}" * 32] * blobs, SHA, meta)


def test_folders_round_trip(tmp_path):
    cache = FilesCache(str(tmp_path), ["/data"])
    odd = os.fsdecode(b"caf\xe9")  # a name that is not UTF-8
    cache.write_folder("/data", [("a", entry(1)), ("empty", entry(2, 0)), (odd, entry(3, 5))])
    cache.write_folder("/data/sub", [("b", entry(4))])
    cache.write_folder("/data/none", [])
    cache.save()
    again = FilesCache(str(tmp_path), ["/data"])
    assert again.folder("/data") == {"a": entry(1), "empty": entry(2, 0), odd: entry(3, 5)}
    assert again.folder("/data/sub") == {"b": entry(4)}
    assert again.folder("/data/none") == {}
    assert again.folder("/elsewhere") == {}
    assert FilesCache(str(tmp_path), ["/other"]).folder("/data") == {}  # another set of paths, another file


def test_a_failed_backup_keeps_the_previous_cache(tmp_path):
    cache = FilesCache(str(tmp_path), ["/d"])
    cache.write_folder("/d", [("a", entry(1))])
    cache.save()
    failed = FilesCache(str(tmp_path), ["/d"])
    failed.write_folder("/d", [("a", entry(9))])
    failed.discard()
    assert FilesCache(str(tmp_path), ["/d"]).folder("/d") == {"a": entry(1)}
    assert sorted(os.listdir(tmp_path)) == [cache_name(["/d"])]  # no temporary left behind


def test_damaged_caches_count_as_empty(tmp_path):
    cache = FilesCache(str(tmp_path), ["/d"])
    cache.write_folder("/d", [("a", entry(1)), ("b", entry(2))])
    cache.save()
    path = tmp_path / cache_name(["/d"])
    good = path.read_bytes()
    for damaged in (b"", b"junk", good[:-3], good[:10] + good[40:], b"\xff" * 7 + good[7:]):
        path.write_bytes(damaged)
        assert FilesCache(str(tmp_path), ["/d"]).folder("/d") in ({}, {"a": entry(1), "b": entry(2)})
    body_cut = good[:30] + good[-28:]  # the table and trailer kept, the entries cut short
    path.write_bytes(body_cut)
    assert FilesCache(str(tmp_path), ["/d"]).folder("/d") == {}


def test_an_unchanged_backup_reads_nothing_and_the_old_format_is_removed(repo, repo_path, tmp_path):
    src = str(tmp_path / "src")
    small_tree(src)
    for i in range(300):
        write(tmp_path / "src" / "many" / f"d{i // 50}" / f"f{i}", b"x%d" % i)
    set_past_mtimes(src)
    first = repo.backup([src])
    folder = repo.cache_dir()
    write(os.path.join(folder, OLD_NAME), b"an earlier version's cache")
    second = open_repo(repo_path).backup([src])
    assert second.stats.files_unmodified == first.stats.files_total == second.stats.files_total
    assert second.stats.bytes_read == 0
    assert not os.path.exists(os.path.join(folder, OLD_NAME))
    assert os.listdir(folder).count(cache_name([src])) == 1


def test_backing_up_other_paths_keeps_each_sets_cache(repo, repo_path, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    small_tree(a)
    small_tree(b)
    set_past_mtimes(a)
    set_past_mtimes(b)
    repo.backup([a])
    open_repo(repo_path).backup([b])
    again = open_repo(repo_path).backup([a])
    assert again.stats.bytes_read == 0 and again.stats.files_unmodified == again.stats.files_total


GOLDEN = "".join(
    [
        "8a000000",  # block length 138
        "0200",
        "2f64",  # folder path "/d"
        "01000000",  # one entry
        "0100",
        "61",  # name "a"
        "0300000000000000",  # size
        "0500000000000000",  # mtime
        "f9ffffffffffffff",  # ctime -7
        "0900000000000000",  # inode
        "22" * 32,  # SHA-256
        "01000000",  # one blob
        "01",  # metadata known
        "40000000",  # flags 0x40 (nodump)
        "12000000",  # 18 bytes of xattrs JSON
        "11" * 32,  # the blob id
        b'{"user.x": "AA=="}'.hex(),
        "9605ed05caee113f",  # table: BLAKE2b-64("/d")
        "0000000000000000",  # its offset, 0
        "8e00000000000000",  # trailer: table at 142
        "01000000",  # one folder
        "41464333",  # "AFC3"
    ]
)


def test_layout_golden_vector(tmp_path):
    """The byte layout documented in filescache.py and FORMAT.md §18.1, pinned."""
    cache = FilesCache(str(tmp_path), ["/d"])
    cache.write_folder(
        "/d", [("a", (3, 5, -7, 9, ["11" * 32], "22" * 32, {"flags": 0x40, "xattrs": {"user.x": "AA=="}}))]
    )
    cache.save()
    assert cache_name(["/d"]) == "files-9605ed05caee113f.v3"
    assert (tmp_path / cache_name(["/d"])).read_bytes().hex() == GOLDEN


def test_an_entry_with_metadata_no_node_may_carry_is_no_entry(tmp_path):
    """Attributes or flags from the cache go into nodes: ones a tree reader would refuse
    (a cache edited or damaged on disk) make the folder's entries unusable, not the snapshot."""
    for meta in ({"xattrs": {"user.a": "not base64"}}, {"flags": 0x80000}, {"xattrs": {}}):
        cache = FilesCache(str(tmp_path), ["/d"])
        cache.write_folder("/d", [("a", (3, 5, -7, 9, ["11" * 32], "22" * 32, meta))])
        cache.save()
        assert FilesCache(str(tmp_path), ["/d"]).folder("/d") == {}


GOLDEN_V2 = "".join(
    [
        "6f000000",  # block length 111
        "0200",
        "2f64",  # folder path "/d"
        "01000000",  # one entry
        "0100",
        "61",  # name "a"
        "0300000000000000",  # size
        "0500000000000000",  # mtime
        "f9ffffffffffffff",  # ctime -7
        "0900000000000000",  # inode
        "22" * 32,  # SHA-256
        "01000000",  # one blob
        "11" * 32,  # the blob id
        "9605ed05caee113f",  # table: BLAKE2b-64("/d")
        "0000000000000000",  # its offset, 0
        "7300000000000000",  # trailer: table at 115
        "01000000",  # one folder
        "41464332",  # "AFC2"
    ]
)


def test_a_version_2_cache_is_read_once_after_an_upgrade_its_metadata_unknown(tmp_path):
    """The cache an earlier version wrote still spares reading unchanged files' content after
    an upgrade (their attributes and flags are read again: the entry knows none); the new
    cache replaces it."""
    old = tmp_path / cache_name(["/d"]).replace(".v3", ".v2")
    old.write_bytes(bytes.fromhex(GOLDEN_V2))
    cache = FilesCache(str(tmp_path), ["/d"])
    assert cache.folder("/d") == {"a": (3, 5, -7, 9, ["11" * 32], "22" * 32, None)}
    cache.write_folder("/d", [("a", (3, 5, -7, 9, ["11" * 32], "22" * 32, {}))])
    cache.save()
    assert not old.exists()
    assert FilesCache(str(tmp_path), ["/d"]).folder("/d")["a"][6] == {}
