"""Extended attributes, POSIX ACLs and file flags, backed up and restored by the real CLI on a
real file system (FORMAT.md §10.4): compared with os.getxattr, getfacl and lsattr after restore.

Flags and trusted.* attributes need root (CAP_LINUX_IMMUTABLE, CAP_SYS_ADMIN); ACLs need
setfacl/getfacl (Debian package acl). Each test skips, saying why, where it cannot run.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import blake3
import pytest

from amber.format import layout
from fakeclock import LIBFAKETIME, NO_FAKETIME, moved_clock
from hostile import Planter, meta

from cli_helpers import IS_ROOT, Amber, environment, write
from sources import open_repo

NEEDS_ROOT = pytest.mark.skipif(not IS_ROOT, reason="file flags and trusted.* attributes need root")
NEEDS_ACL = pytest.mark.skipif(shutil.which("setfacl") is None, reason="setfacl/getfacl (package acl) missing")
NEEDS_CHATTR = pytest.mark.skipif(shutil.which("chattr") is None, reason="chattr/lsattr (package e2fsprogs) missing")
SHM = "/dev/shm"


def supports_xattrs(folder) -> bool:
    probe = Path(folder) / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def supports_flags(folder) -> bool:
    probe = Path(folder) / ".flags-probe"
    probe.write_bytes(b"")
    try:
        return subprocess.run(["chattr", "+d", probe], capture_output=True).returncode == 0
    finally:
        subprocess.run(["chattr", "-d", probe], capture_output=True)
        probe.unlink()


@pytest.fixture
def fs(tmp_path):
    """tmp_path, on a file system with user attributes; immutable and append-only flags are
    taken off everything below it at the end, so it can be removed."""
    if not supports_xattrs(tmp_path):
        pytest.skip(f"{tmp_path} has no user extended attributes")
    yield tmp_path
    if shutil.which("chattr"):
        subprocess.run(["chattr", "-R", "-f", "-i", "-a", tmp_path], capture_output=True)


def xattrs(path) -> dict[str, bytes]:
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in os.listxattr(path, follow_symlinks=False)}


def getfacl(path) -> str:
    return subprocess.run(["getfacl", "--omit-header", "--absolute-names", path], capture_output=True, text=True).stdout


def lsattr(path) -> str:
    out = subprocess.run(["lsattr", "-d", path], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


def chattr(spec: str, *paths) -> None:
    subprocess.run(["chattr", spec, *paths], check=True)


def restored_path(target: Path, src: Path) -> Path:
    return target / str(src).lstrip("/")


def entries(root: Path) -> list[Path]:
    out = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        out += [Path(dirpath) / n for n in sorted(dirnames + filenames)]
    return out


# -- attributes, ACLs, flags: back up, restore, compare --------------------------------------------


def attribute_tree(src: Path) -> None:
    write(src / "bin.dat", b"binary attributes\n")
    os.setxattr(src / "bin.dat", "user.bin", bytes(range(256)))
    os.setxattr(src / "bin.dat", "user.empty", b"")
    os.setxattr(src / "bin.dat", "user.\u00e9t\u00e9", b"utf-8 name")
    write(src / "d" / "inside.txt", b"in a folder with attributes\n")
    os.setxattr(src / "d", "user.folder", b"on the folder")
    os.symlink("inside.txt", src / "d" / "link")
    write(src / "plain.txt", b"no attributes at all\n")
    if IS_ROOT:
        os.setxattr(src / "d" / "link", "trusted.on-link", b"symlinks take trusted.*", follow_symlinks=False)
        os.setxattr(src / "plain.txt", "trusted.secret", b"root only")


def test_extended_attributes_round_trip_on_files_folders_and_symlinks(fs):
    u = Amber(fs / "amber")
    u.create()
    src = fs / "src"
    attribute_tree(src)
    out = u.backup(src)
    assert out["warnings"] == 0 and out["errors"] == 0
    target = fs / "target"
    u.run("restore", "latest", "--target", target)
    got = restored_path(target, src)
    for path in entries(src):
        twin = got / path.relative_to(src)
        assert xattrs(twin) == xattrs(path), path
    assert xattrs(got / "bin.dat")["user.bin"] == bytes(range(256))
    assert xattrs(got / "bin.dat")["user.empty"] == b""
    assert xattrs(got / "plain.txt") == ({"trusted.secret": b"root only"} if IS_ROOT else {})
    u.run("check", "--read-data")  # trees of version 2 check clean

    # ls --json names the attributes; diff sees a change of attributes alone
    listing = {e["path"]: e for e in u.json("ls", "latest")}
    assert listing[f"{src}/bin.dat"]["xattrs"] == ["user.bin", "user.empty", "user.\u00e9t\u00e9"]
    assert "xattrs" not in listing[f"{src}/d/inside.txt"]
    first = out["snapshot_id"]
    os.setxattr(src / "d" / "inside.txt", "user.new", b"only metadata changed")
    second = u.backup(src)["snapshot_id"]
    changes = u.json("diff", first, second)["changes"]
    assert {"change": "metadata", "path": f"{src}/d/inside.txt"}.items() <= next(
        c for c in changes if c["path"].endswith("inside.txt")
    ).items()


@NEEDS_ACL
def test_access_and_default_acls_round_trip(fs):
    u = Amber(fs / "amber")
    u.create()
    src = fs / "src"
    write(src / "shared" / "report.txt", b"shared with nobody\n")
    write(src / "private.txt", b"mine\n")
    subprocess.run(["setfacl", "-m", "u:nobody:rw,g:nogroup:r", src / "shared" / "report.txt"], check=True)
    subprocess.run(["setfacl", "-m", "u:nobody:rx", src / "shared"], check=True)
    subprocess.run(["setfacl", "-d", "-m", "u:nobody:rwx,g::rx,o::-", src / "shared"], check=True)
    assert "default:user:nobody:rwx" in getfacl(src / "shared")
    u.backup(src)
    target = fs / "target"
    r = u.run("restore", "latest", "--target", target)
    assert "warning" not in r.stderr
    got = restored_path(target, src)
    for rel in ("shared", "shared/report.txt", "private.txt"):
        assert getfacl(got / rel).replace(str(got), str(src)) == getfacl(src / rel), rel
    assert os.stat(got / "shared" / "report.txt").st_mode == os.stat(src / "shared" / "report.txt").st_mode
    assert "user:nobody:rw-" in getfacl(got / "shared" / "report.txt")


@NEEDS_ROOT
@NEEDS_CHATTR
def test_flags_round_trip_immutable_and_append_only_set_last(fs):
    if not supports_flags(fs):
        pytest.skip(f"{fs} has no inode flags")
    u = Amber(fs / "amber")
    u.create()
    src = fs / "src"
    for name in ("immutable.txt", "append.log", "nodump.tmp", "noatime.db", "plain.txt"):
        write(src / name, f"{name}\n".encode())
    write(src / "frozen" / "kept.txt", b"inside an immutable folder\n")
    os.setxattr(src / "immutable.txt", "user.note", b"attributes are set before the flag")
    os.link(src / "append.log", src / "append-link.log")  # a hard link is made before +a is set
    chattr("+i", src / "immutable.txt")
    chattr("+a", src / "append.log")
    chattr("+d", src / "nodump.tmp")
    chattr("+A", src / "noatime.db")
    chattr("+i", src / "frozen")
    u.backup(src)
    target = fs / "target"
    r = u.run("restore", "latest", "--target", target)
    assert "warning" not in r.stderr, r
    got = restored_path(target, src)
    for path in entries(src):
        twin = got / path.relative_to(src)
        if not path.is_symlink():
            assert lsattr(twin) == lsattr(path), path
    assert "i" in lsattr(got / "immutable.txt") and "a" in lsattr(got / "append.log")
    assert (
        "i" in lsattr(got / "frozen") and (got / "frozen" / "kept.txt").read_bytes() == b"inside an immutable folder\n"
    )
    assert xattrs(got / "immutable.txt") == {"user.note": b"attributes are set before the flag"}
    assert os.stat(got / "append.log").st_ino == os.stat(got / "append-link.log").st_ino
    assert os.stat(got / "immutable.txt").st_mtime_ns == os.stat(src / "immutable.txt").st_mtime_ns
    with pytest.raises(PermissionError):
        (got / "immutable.txt").write_bytes(b"changed")


@NEEDS_ROOT
@NEEDS_CHATTR
def test_exclude_nodump_skips_files_and_folders_with_the_flag(fs):
    if not supports_flags(fs):
        pytest.skip(f"{fs} has no inode flags")
    u = Amber(fs / "amber")
    u.create()
    src = fs / "src"
    write(src / "keep.txt", b"kept\n")
    write(src / "scratch.tmp", b"not to be dumped\n")
    write(src / "cache" / "big.bin", b"a folder not to be dumped\n")
    write(src / "sub" / "also-kept.txt", b"kept too\n")
    chattr("+d", src / "scratch.tmp")
    chattr("+d", src / "cache")
    everything = u.backup(src)
    skipping = u.backup(src, args=("--exclude-nodump",))
    assert everything["files_total"] == 4 and skipping["files_total"] == 2
    paths = {e["path"] for e in u.json("ls", skipping["snapshot_id"])}
    assert f"{src}/keep.txt" in paths and f"{src}/sub/also-kept.txt" in paths
    assert not {f"{src}/scratch.tmp", f"{src}/cache", f"{src}/cache/big.bin"} & paths
    paths = {e["path"] for e in u.json("ls", everything["snapshot_id"])}
    assert next(e for e in u.json("ls", everything["snapshot_id"]) if e["name"] == "cache")["flags"] == "d"
    assert f"{src}/scratch.tmp" in paths and f"{src}/cache/big.bin" in paths


@pytest.mark.skipif(LIBFAKETIME is None, reason=NO_FAKETIME)
def test_unchanged_files_keep_their_metadata_through_the_files_cache_and_changes_reach_it(fs):
    """The files cache keeps a file's attributes by ctime: a backup an hour later (its clock
    moved, so the ctimes are old enough to trust) stores them from the cache without reading
    anything; an attribute set later changes the ctime, and the next backup records it."""
    u = Amber(fs / "amber", subprocess=True)
    u.create()
    later = moved_clock(u.env(), "+1h")
    src = fs / "src"
    write(src / "a.txt", b"a\n")
    write(src / "b.txt", b"b\n")
    os.setxattr(src / "b.txt", "user.kept", b"yes")
    u.backup(src)
    u.run("backup", src, env=later)  # the ctimes are old now: metadata goes into the cache
    cached = u.json("backup", src, env=later)
    assert cached["bytes_read"] == 0 and cached["files_unmodified"] == 2
    target = fs / "target"
    u.run("restore", cached["snapshot_id"], "--target", target)
    assert xattrs(restored_path(target, src) / "b.txt") == {"user.kept": b"yes"}
    assert xattrs(restored_path(target, src) / "a.txt") == {}

    os.setxattr(src / "a.txt", "user.added", b"later")
    os.removexattr(src / "b.txt", "user.kept")
    changed = u.json("backup", src, env=later)
    again = fs / "again"
    u.run("restore", changed["snapshot_id"], "--target", again)
    assert xattrs(restored_path(again, src) / "a.txt") == {"user.added": b"later"}
    assert xattrs(restored_path(again, src) / "b.txt") == {}


# -- hostile trees and targets -----------------------------------------------------------------


@pytest.fixture
def shm(tmp_path):
    """A folder on tmpfs, which stores 64 KiB values and thousands of attributes per file."""
    if not os.path.isdir(SHM) or not supports_xattrs(SHM):
        pytest.skip(f"{SHM} has no user extended attributes")
    folder = Path(SHM) / f"amber-test-{os.getpid()}-{tmp_path.name}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_huge_and_many_attributes_are_bounded_with_warnings_naming_the_file(fs, shm):
    u = Amber(fs / "amber")
    u.create()
    src = shm / "src"
    write(src / "big.bin", b"one 64 KiB value\n")
    os.setxattr(src / "big.bin", "user.big", os.urandom(64 << 10))
    write(src / "many.bin", b"three thousand attributes\n")
    for i in range(3000):
        os.setxattr(src / "many.bin", f"user.n{i:04d}", b"v%d" % i)
    write(src / "heavy.bin", b"five values of 60 KiB\n")
    for i in range(5):
        os.setxattr(src / "heavy.bin", f"user.h{i}", bytes([i]) * (60 << 10))
    r = u.run("backup", src, "--json")
    out = r.json()
    assert out["errors"] == 0 and out["warnings"] == 2
    assert f"{src}/many.bin: 1976 extended attribute(s) left out" in r.stderr, r
    assert f"{src}/heavy.bin: 1 extended attribute(s) left out" in r.stderr, r
    assert "big.bin" not in r.stderr

    target = shm / "target"
    u.run("restore", "latest", "--target", target)
    got = restored_path(target, src)
    assert xattrs(got / "big.bin") == xattrs(src / "big.bin")
    many = xattrs(got / "many.bin")
    assert sorted(many) == [f"user.n{i:04d}" for i in range(1024)]  # the first 1024 by name
    assert many["user.n0007"] == b"v7"
    assert sorted(xattrs(got / "heavy.bin")) == ["user.h0", "user.h1", "user.h2", "user.h3"]

    # ext4 keeps at most a block of attributes per file: setting them there fails, and says so
    onto = fs / "ext4-target"
    r = u.run("restore", "latest", "--target", onto)
    assert f"{restored_path(onto, src)}/big.bin: cannot set extended attribute user.big" in r.stderr, r
    assert "warning(s)" in r.out
    doc = u.json("restore", "latest", "--target", fs / "again", quiet=False)
    assert any("big.bin: cannot set extended attribute user.big" in w for w in doc["warnings"])
    assert (restored_path(onto, src) / "big.bin").read_bytes() == b"one 64 KiB value\n"  # content whole


def test_a_target_without_user_attributes_warns_naming_each_file(fs):
    """A restore onto a file system that refuses user.* attributes (here: sysfs-like refusal is
    imitated by a symlink target, which never takes user.*) names the entry and goes on."""
    u = Amber(fs / "amber")
    u.create()
    src = fs / "src"
    write(src / "f.txt", b"content\n")
    os.setxattr(src / "f.txt", "user.a", b"1")
    u.backup(src)

    def build(p: Planter) -> str:
        link = meta("link", "symlink", target="f.txt", xattrs={"user.on-a-symlink": "eA=="})
        return p.snapshot([p.dir("top", [p.file("f.txt", b"content\n"), link])])

    with environment(u.env()):
        repo = open_repo(u.url, password=u.password)
        try:
            sid = build(Planter(repo))
        finally:
            repo.close()
    target = fs / "target"
    r = u.run("restore", sid, "--target", target)
    assert f"{target}/top/link: cannot set extended attribute user.on-a-symlink" in r.stderr, r
    assert "1 warning(s)" in r.out
    assert os.readlink(target / "top" / "link") == "f.txt" and (target / "top" / "f.txt").read_bytes() == b"content\n"


BAD_XATTRS = {
    "not-base64": {"user.a": "!!!"},
    "not-canonical": {"user.a": "AB=="},
    "value-too-long": {"user.a": base64.b64encode(bytes((64 << 10) + 1)).decode()},
    "too-many": {f"user.n{i}": "" for i in range(1025)},
    "too-heavy": {f"user.h{i}": base64.b64encode(bytes(60 << 10)).decode() for i in range(5)},
    "empty-name": {"": "AA=="},
    "long-name": {"user." + "x" * 300: "AA=="},
    "nul-in-name": {"user.a\x00b": "AA=="},
    "not-an-object": ["user.a", "AA=="],
    "empty": {},
}


@pytest.mark.parametrize("case", sorted(BAD_XATTRS))
def test_a_sealed_tree_with_bad_attributes_is_refused_naming_it(fs, case):
    u = Amber(fs / "amber")
    u.create()

    def build(p: Planter) -> tuple[str, str]:
        bad = p.file("bad", b"hostile\n", xattrs=BAD_XATTRS[case])
        top = p.dir("top", [bad])
        return p.snapshot([top]), top["subtree"]

    with environment(u.env()):
        repo = open_repo(u.url, password=u.password)
        try:
            sid, tree = build(Planter(repo))
        finally:
            repo.close()
    target = fs / "target"
    r = u.run("restore", sid, "--target", target, expect=20)
    assert f"tree {tree[:16]}" in r.stderr and "'bad'" in r.stderr and "xattrs" in r.stderr, r
    assert not (target / "top" / "bad").exists()
    r = u.run("check", expect=20)
    assert "'bad'" in r.stderr


@pytest.mark.parametrize("flags", [0, -1, 0x80000, 2**40, "i", True])
def test_a_sealed_tree_with_bad_flags_is_refused(fs, flags):
    u = Amber(fs / "amber")
    u.create()
    with environment(u.env()):
        repo = open_repo(u.url, password=u.password)
        try:
            p = Planter(repo)
            sid = p.snapshot([p.dir("top", [p.file("bad", b"x\n", flags=flags)])])
        finally:
            repo.close()
    r = u.run("ls", sid, expect=20)
    assert "'bad'" in r.stderr and "flags" in r.stderr, r


# -- versions -------------------------------------------------------------------------------------


def test_trees_without_attributes_stay_version_1_and_with_them_are_version_2(fs):
    u = Amber(fs / "amber")
    u.create()
    src = fs / "src"
    write(src / "plain" / "f.txt", b"no attributes\n")
    write(src / "tagged" / "g.txt", b"attributes\n")
    os.setxattr(src / "tagged" / "g.txt", "user.tag", b"1")
    sid = u.backup(src)["snapshot_id"]
    with environment(u.env()):
        repo = open_repo(u.url, password=u.password)
        try:
            repo.load_index()
            versions = {}
            for path in ("plain", "tagged"):
                node = repo.trees.node_at(repo.find_snapshot(sid).tree, f"{src}/{path}")
                raw = repo.blobs.read(bytes.fromhex(node["subtree"]))
                versions[path] = json.loads(raw)["v"]
        finally:
            repo.close()
    assert versions == {"plain": 1, "tagged": 2}


def test_the_frozen_format_1_repository_still_restores(tmp_path):
    vectors = Path(__file__).parent.parent / "vectors"
    doc = json.loads((vectors / "repo-v1.json").read_text())
    shutil.copytree(vectors / "repo-v1", tmp_path / "amber" / "repo")
    u = Amber(tmp_path / "amber", password=doc["password"])
    for snap in doc["snapshots"]:
        target = tmp_path / f"out-{snap['id'][:8]}"
        r = u.run("restore", snap["id"], "--target", target, "--verify")
        assert "warning" not in r.stderr
        assert any(os.scandir(target))


# -- key files ------------------------------------------------------------------------------------


def key_files(u: Amber) -> list[dict]:
    folder = u.repo / layout.key_file("x").rsplit("/", 1)[0]
    return [json.loads((folder / name).read_bytes()) for name in sorted(os.listdir(folder))]


def test_new_key_files_use_argon2id_and_scrypt_ones_still_open(tmp_path):
    u = Amber(tmp_path / "amber")
    u.create()  # through the library with a cheap scrypt key file, as earlier versions wrote
    assert [k["kdf"] for k in key_files(u)] == ["scrypt"]
    write(tmp_path / "src" / "f.txt", b"content\n")
    u.backup(tmp_path / "src")
    u.run("key", "add", env=u.env(AMBER_NEW_PASSWORD="a second password"))
    kinds = sorted(k["kdf"] for k in key_files(u))
    assert kinds == ["argon2id", "scrypt"]
    new = next(k for k in key_files(u) if k["kdf"] == "argon2id")
    assert (new["memory"], new["iterations"], new["lanes"]) == (46 << 10, 1, 1)
    assert "n" not in new
    u.run("snapshots", env=u.env(AMBER_PASSWORD="a second password"))  # the Argon2id key opens
    u.run("snapshots")  # and the scrypt one

    fresh = Amber(tmp_path / "fresh")
    fresh.init()
    assert [k["kdf"] for k in key_files(fresh)] == ["argon2id"]
    fresh.run("snapshots")
    fresh.run("key", "passwd", env=fresh.env(AMBER_NEW_PASSWORD="changed password"))
    assert [k["kdf"] for k in key_files(fresh)] == ["argon2id"]
    fresh.run("snapshots", env=fresh.env(AMBER_PASSWORD="changed password"))


def test_a_key_file_asking_argon2id_for_a_terabyte_is_refused_not_run(tmp_path):
    """A hostile key file with memory = 2^40 KiB is refused before Argon2id runs: beside the
    real key it is warned about; alone, opening fails naming it (exit 20), never out of memory."""
    u = Amber(tmp_path / "amber")
    u.init()
    folder = u.repo / layout.key_file("x").rsplit("/", 1)[0]
    (real,) = os.listdir(folder)
    doc = json.loads((folder / real).read_bytes())
    doc["memory"] = 1 << 40
    raw = json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"
    planted = blake3.blake3(raw).hexdigest()
    (folder / planted).write_bytes(raw)
    r = u.run("snapshots")
    assert planted in r.stderr and "Argon2id memory=1099511627776 KiB" in r.stderr, r
    (folder / real).unlink()
    r = u.run("snapshots", expect=20)
    assert planted in r.stderr and "Argon2id memory=1099511627776 KiB" in r.stderr, r


# -- not root ---------------------------------------------------------------------------------------

NOBODY = 65534


def _as_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _open_to_all(path, writable: bool) -> None:
    for folder, _dirs, files in os.walk(path):
        os.chmod(folder, 0o777 if writable else 0o755)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o666 if writable else 0o644)


@NEEDS_ROOT
@NEEDS_CHATTR
@pytest.mark.subprocess
def test_a_user_restoring_what_only_root_may_set_is_warned_per_file_and_gets_the_rest(fs):
    """Not root: immutable and trusted.* cannot be set; nodump and user.* still are."""
    if not supports_flags(fs):
        pytest.skip(f"{fs} has no inode flags")
    shared = Path(tempfile.mkdtemp(prefix="amber-unprivileged-", dir="/tmp"))
    try:
        os.chmod(shared, 0o755)
        u = Amber(shared / "amber", subprocess=True)
        u.create()
        with environment(u.env()):
            repo = open_repo(u.url, password=u.password)
            try:
                p = Planter(repo)
                node = p.file("frozen", b"kept\n", flags=0x50, xattrs={"trusted.secret": "eA==", "user.ok": "eQ=="})
                sid = p.snapshot([p.dir("top", [node])])
            finally:
                repo.close()
        _open_to_all(u.repo, writable=False)
        for d in (u.home, u.cache, u.data, u.state):
            _open_to_all(d, writable=True)
        target = shared / "target"
        target.mkdir()
        os.chmod(target, 0o777)
        r = u.run("restore", sid, "--target", target, "--no-owner", preexec_fn=_as_nobody)
        frozen = target / "top" / "frozen"
        assert f"{frozen}: cannot set extended attribute trusted.secret" in r.stderr, r
        assert f"{frozen}: cannot set file flags i: not permitted (not root)" in r.stderr, r
        assert "2 warning(s)" in r.out
        assert frozen.read_bytes() == b"kept\n"
        assert xattrs(frozen) == {"user.ok": b"y"}
        assert lsattr(frozen).count("d") == 1 and "i" not in lsattr(frozen)
    finally:
        subprocess.run(["chattr", "-R", "-f", "-i", "-a", shared], capture_output=True)
        shutil.rmtree(shared, ignore_errors=True)
