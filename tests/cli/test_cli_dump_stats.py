"""`amber dump` (a file, or a folder as tar or zip streamed to stdout) compared with the source
tree, and `amber stats` in restic's modes on a repository whose deduplication we know."""

from __future__ import annotations

import datetime as dt
import io
import os
import random
import stat
import struct
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from cli_helpers import restored_root, set_old_mtimes, tree_state, write

pytestmark = pytest.mark.subprocess


def mtime_of_member(m: tarfile.TarInfo) -> int:
    """A tar member's mtime in nanoseconds, from its PAX header when it has one."""
    text = m.pax_headers.get("mtime")
    if text is None:
        return int(m.mtime) * 10**9
    sec, _, frac = text.partition(".")
    return int(sec) * 10**9 + int((frac + "000000000")[:9])


def source_stats(root) -> dict[bytes, os.stat_result]:
    """Relative path (bytes, as in the archive below the source's own name) -> lstat."""
    broot = os.fsencode(root)
    out = {b"": os.lstat(broot)}
    for dirpath, dirnames, filenames in os.walk(broot):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, broot)] = os.lstat(p)
    return out


def test_dump_folder_as_tar_matches_the_source(repo, tree, tmp_path):
    src = tree["root"]
    sid = repo.backup(src)["snapshot_id"]
    raw = repo.run("dump", sid, src).stdout
    prefix = src.lstrip("/")
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        members = tar.getmembers()
        assert members[0].name.rstrip("/") == prefix and members[0].isdir()
        stats = source_stats(src)
        seen = set()
        for m in members:
            rel = os.path.relpath(os.fsencode(m.name.rstrip("/")), os.fsencode(prefix))
            rel = b"" if rel == b"." else rel
            st = stats[rel]
            seen.add(rel)
            assert mtime_of_member(m) == st.st_mtime_ns, (m.name, m.pax_headers)
            if not m.issym():
                assert m.mode == stat.S_IMODE(st.st_mode), m.name
            assert (m.uid, m.gid) == (st.st_uid, st.st_gid), m.name
            if m.issym():
                assert m.linkname == os.fsdecode(os.readlink(os.path.join(os.fsencode(src), rel)))
        assert seen == set(stats), "every entry of the source, nothing else"
        assert sum(m.islnk() for m in members) == 1, "the hard link is a link to its first path"
        tar.extractall(tmp_path / "x", filter="fully_trusted")
    a, b = tree_state(src), tree_state(tmp_path / "x" / prefix)
    for rel, entry in a.items():  # tarfile sets no symlink's mtime, and others as float seconds
        if rel == "__hardlinks__":
            assert b[rel] == entry
            continue
        got = dict(b[rel])
        if entry["type"] == "symlink":
            got["mtime_ns"] = entry["mtime_ns"]
        assert abs(got.pop("mtime_ns") - entry["mtime_ns"]) < 1000, rel
        assert got == {k: v for k, v in entry.items() if k != "mtime_ns"}, rel


def test_dump_root_as_tar_restores_like_restore(repo, tree, tmp_path):
    src = tree["root"]
    repo.backup(src)
    raw = repo.run("dump", "latest", "/").stdout
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        tar.extractall(tmp_path / "x", filter="fully_trusted")
    repo.run("restore", "latest", "--target", tmp_path / "r")
    extracted = restored_root(tmp_path / "x", src)
    restored = restored_root(tmp_path / "r", src)
    a, b = tree_state(restored), tree_state(extracted)
    assert set(a) == set(b)
    for rel in a:
        if rel != "__hardlinks__" and a[rel]["type"] == "symlink":
            continue  # tarfile leaves a symlink's mtime as extracted
        got = dict(b[rel]) if rel != "__hardlinks__" else b[rel]
        want = dict(a[rel]) if rel != "__hardlinks__" else a[rel]
        if rel != "__hardlinks__":
            assert abs(got.pop("mtime_ns") - want.pop("mtime_ns")) < 1000, rel
        assert got == want, rel


def _zip_mtime(info: zipfile.ZipInfo) -> int | None:
    """The UTC seconds of an Info-ZIP extended timestamp field, if the entry has one."""
    extra = info.extra
    while len(extra) >= 4:
        tag, size = struct.unpack("<HH", extra[:4])
        if tag == 0x5455 and size >= 5 and extra[4] & 1:
            return struct.unpack("<I", extra[5:9])[0]
        extra = extra[4 + size :]
    return None


@pytest.mark.parametrize("seekable", [False, True], ids=["pipe", "file"])
def test_dump_folder_as_zip_matches_the_source(repo, utf8_tree, tmp_path, seekable):
    src = utf8_tree["root"]
    repo.backup(src)
    if seekable:
        out = tmp_path / "out.zip"
        with open(out, "wb") as f:
            p = subprocess.run(repo.cmd("dump", "latest", src, "--archive", "zip"), stdout=f, env=repo.env())
        assert p.returncode == 0
        raw = out.read_bytes()
    else:
        raw = repo.run("dump", "latest", src, "--archive", "zip").stdout
    prefix = src.lstrip("/")
    stats = source_stats(src)
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        assert z.testzip() is None
        infos = z.infolist()
        names = set()
        for info in infos:
            rel = os.path.relpath(info.filename.rstrip("/"), prefix)
            rel_b = b"" if rel == "." else os.fsencode(rel)
            names.add(rel_b)
            st = stats[rel_b]
            full = os.path.join(src, rel)
            mode = info.external_attr >> 16
            assert stat.S_IFMT(mode) == stat.S_IFMT(st.st_mode), info.filename
            if not stat.S_ISLNK(st.st_mode):
                assert stat.S_IMODE(mode) == stat.S_IMODE(st.st_mode), info.filename
            assert _zip_mtime(info) == st.st_mtime_ns // 10**9, info.filename
            local = dt.datetime.fromtimestamp(st.st_mtime_ns // 10**9)
            assert info.date_time[:5] == (local.year, local.month, local.day, local.hour, local.minute)
            if stat.S_ISREG(st.st_mode):
                assert z.read(info) == Path(full).read_bytes(), info.filename
                if not seekable:
                    assert info.flag_bits & 0x08, "streamed to a pipe: sizes in a data descriptor"
            elif stat.S_ISLNK(st.st_mode):
                assert z.read(info) == os.fsencode(os.readlink(full))
        assert names == set(stats)


def test_dump_of_a_file_is_cat_and_errors_are_named(repo, utf8_tree):
    src = utf8_tree["root"]
    repo.backup(src)
    for f in (utf8_tree["big"], utf8_tree["small"], utf8_tree["empty"]):
        dumped = repo.run("dump", "latest", f).stdout
        assert dumped == repo.run("cat", "latest", f).stdout == Path(f).read_bytes()
        assert repo.run("dump", "latest", f, "--archive", "zip").stdout == dumped, "a file needs no archive"
    r = repo.run("dump", "latest", src + "/no-such-file", expect=None)
    assert r.rc not in (0, 2) or "no-such-file" in r.stderr
    assert "no-such-file" in r.stderr
    r = repo.run("dump", "latest", src + "/link-to-small", expect=2)
    assert "link-to-small" in r.stderr
    assert repo.run("dump", "latest", src, "--archive", "rar", expect=2).stderr
    out = Path(src).parent / "dumped.tar"
    assert repo.run("dump", "latest", src, "--target", out).stdout == b""
    with tarfile.open(out) as tar:
        assert tar.extractfile(src.lstrip("/") + "/small.txt").read() == Path(utf8_tree["small"]).read_bytes()


def test_dump_stops_on_damaged_content(repo, tmp_path):
    src = tmp_path / "src"
    write(src / "f.bin", random.Random(1).randbytes(1 << 20))
    repo.backup(src)
    for pack in (repo.repo / "data").rglob("*"):
        if pack.is_file():
            data = bytearray(pack.read_bytes())
            data[len(data) // 2] ^= 0xFF
            pack.chmod(0o644)
            pack.write_bytes(bytes(data))
    r = repo.run("dump", "latest", str(src), expect=None)
    assert r.rc == 20, r


# -- stats ------------------------------------------------------------------------------------------


@pytest.fixture
def known(repo, tmp_path) -> dict:
    """Two snapshots of: a 2 MiB random file and its copy, a small text file and a hard link to it."""
    src = tmp_path / "known"
    data = random.Random(7).randbytes(2 << 20)
    write(src / "a.bin", data)
    write(src / "sub" / "copy-of-a.bin", data)
    write(src / "small.txt", b"small\n")
    os.link(src / "small.txt", src / "sub" / "hard.txt")
    set_old_mtimes(src)
    ids = [repo.backup(src)["snapshot_id"], repo.backup(src)["snapshot_id"]]
    depth = len(Path(src).parts) - 1  # the folders above it, and itself, are in each snapshot
    return {"ids": ids, "entries": depth + 5, "restore": 2 * len(data) + 6, "unique": len(data) + 6, "data": data}


def test_stats_restore_size(repo, known):
    one = repo.json("stats", "latest")
    assert one == {"total_size": known["restore"], "total_file_count": known["entries"], "snapshots_count": 1}
    both = repo.json("stats", "--mode", "restore-size")
    assert both["total_size"] == 2 * known["restore"] and both["total_file_count"] == 2 * known["entries"]
    assert both["snapshots_count"] == 2
    assert "Total Size" in repo.run("stats").out


def test_stats_files_by_contents(repo, known):
    doc = repo.json("stats", "--mode", "files-by-contents")
    assert doc == {"total_size": known["unique"], "total_file_count": 2, "snapshots_count": 2}


def test_stats_blobs_per_file(repo, known):
    doc = repo.json("stats", "--mode", "blobs-per-file")
    assert set(doc) == {"total_size", "total_file_count", "total_blob_count", "snapshots_count"}
    # a.bin (its copy has the same content) and small.txt (its hard link too), in both snapshots
    assert doc["total_file_count"] == 2 and doc["snapshots_count"] == 2
    assert doc["total_size"] == known["unique"], "each distinct content's blobs, uncompressed, once"
    assert doc["total_blob_count"] >= 2
    human = repo.run("stats", "--mode", "blobs-per-file").out
    assert "Stats in blobs-per-file mode" in human and "Total Blob Count" in human


def test_stats_blobs_per_file_counts_blobs_per_path(repo, tmp_path):
    """restic's count: a path whose content changed is one file holding the blobs of each version;
    a duplicate content elsewhere is not counted again; an empty file has no blobs."""
    src = tmp_path / "per-path"
    write(src / "f.txt", b"first version\n")
    write(src / "g.txt", b"another file\n")
    write(src / "dup.txt", b"another file\n")
    write(src / "empty", b"")
    set_old_mtimes(src)
    repo.backup(src)
    write(src / "f.txt", b"the second, longer version\n")
    set_old_mtimes(src)
    repo.backup(src)
    doc = repo.json("stats", "--mode", "blobs-per-file")
    size = len(b"first version\n") + len(b"the second, longer version\n") + len(b"another file\n")
    assert doc == {"total_size": size, "total_file_count": 2, "total_blob_count": 3, "snapshots_count": 2}
    latest = repo.json("stats", "latest", "--mode", "blobs-per-file")
    assert latest["total_file_count"] == 2 and latest["total_blob_count"] == 2


def test_stats_raw_data_and_deduplication_ratio(repo, known):
    doc = repo.json("stats", "--mode", "raw-data")
    assert doc["snapshots_count"] == 2
    assert known["unique"] <= doc["total_uncompressed_size"] < known["unique"] + (64 << 10), "trees are small"
    assert doc["total_blob_count"] >= 3  # chunks of a.bin, small.txt, trees
    # random data does not compress: the stored bytes are the plaintext plus sealing overhead
    assert doc["total_size"] >= len(known["data"])
    assert abs(doc["compression_ratio"] - doc["total_uncompressed_size"] / doc["total_size"]) < 1e-3
    assert doc["restore_size"] == 2 * known["restore"]
    # each stored byte of file content is used by 4 files across the two snapshots
    assert doc["deduplication_ratio"] == pytest.approx(2 * known["restore"] / known["unique"], abs=1e-3)
    one = repo.json("stats", known["ids"][0], "--mode", "raw-data")
    assert one["total_uncompressed_size"] >= known["unique"], "one snapshot references all the content"
    assert one["deduplication_ratio"] == pytest.approx(known["restore"] / known["unique"], abs=1e-3)
    assert "Deduplication Ratio" in repo.run("stats", "--mode", "raw-data").out
