"""`amber mount`: a real FUSE mount of a real repository, read with ordinary tools.

Each test starts `amber mount` as a process, waits until the folder is mounted,
reads through it as a user would (os.listdir, open, os.readlink, os.stat, cp -a,
diff -r), then sends SIGINT and expects a clean unmount and exit 0. Whatever
happens, the teardown unmounts the folder (fusermount3 -u, else umount -l)."""

from __future__ import annotations

import ctypes.util
import errno
import os
import random
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from cli_helpers import IS_ROOT, make_tree, write

pytestmark = pytest.mark.subprocess


def _fuse_missing() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing (no FUSE in this kernel or container)"
    if not (ctypes.util.find_library("fuse3") or ctypes.util.find_library("fuse")):
        return "libfuse is not installed (Debian: apt-get install fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as e:
        return f"mfusepy cannot load libfuse: {e}"
    if not IS_ROOT and shutil.which("fusermount3") is None and shutil.which("fusermount") is None:
        return "not root and no fusermount3 to mount with"
    return None


MISSING = _fuse_missing()
needs_fuse = pytest.mark.skipif(MISSING is not None, reason=f"FUSE unavailable: {MISSING}")


def unmount(where: Path) -> None:
    if os.path.ismount(where):
        for cmd in (["fusermount3", "-u", str(where)], ["fusermount", "-u", str(where)], ["umount", "-l", str(where)]):
            if shutil.which(cmd[0]) and subprocess.call(cmd, stderr=subprocess.DEVNULL) == 0:
                break


class Mounted:
    """A running `amber mount` of `u`'s repository at `where`."""

    def __init__(self, u, where: Path, *args, env=None) -> None:
        self.where = where
        self.proc = subprocess.Popen(
            u.cmd("mount", where, *args),
            env=env or u.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not os.path.ismount(where):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"not mounted: exit {self.proc.returncode}\n{self.stderr}")
            time.sleep(0.05)

    def interrupt(self, sig=signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        unmount(self.where)
        if self.proc.stdout is not None:
            self.stderr = self.proc.stderr.read().decode("utf-8", "replace")
            self.proc.stdout.close()
            self.proc.stderr.close()

    stderr = ""


@pytest.fixture
def mounts():
    """Start mounts with `mounts(u, where, *args)`; every one is stopped and unmounted after."""
    started: list[Mounted] = []

    def start(u, where: Path, *args, env=None) -> Mounted:
        where.mkdir(exist_ok=True)
        m = Mounted(u, where, *args, env=env)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


def _compare(src: bytes, got: bytes) -> None:
    """Every entry below `src` is below `got` with the same type, bytes, mode, owner, mtime
    and link target (compared with lstat: the mount shows what the snapshot recorded)."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        other = os.path.normpath(os.path.join(got, rel))
        assert sorted(os.listdir(other)) == sorted(dirnames + filenames), dirpath
        for name in dirnames + filenames:
            a, b = os.path.join(dirpath, name), os.path.join(other, name)
            sa, sb = os.lstat(a), os.lstat(b)
            assert stat.S_IFMT(sa.st_mode) == stat.S_IFMT(sb.st_mode), a
            assert stat.S_IMODE(sa.st_mode) == stat.S_IMODE(sb.st_mode) or stat.S_ISLNK(sa.st_mode), a
            assert (sa.st_uid, sa.st_gid) == (sb.st_uid, sb.st_gid), a
            if stat.S_ISLNK(sa.st_mode):
                assert os.readlink(a) == os.readlink(b), a
                continue
            assert sa.st_mtime_ns == sb.st_mtime_ns, a
            if stat.S_ISREG(sa.st_mode):
                assert sa.st_size == sb.st_size, a
                with open(a, "rb") as fa, open(b, "rb") as fb:
                    assert fa.read() == fb.read(), a


@needs_fuse
def test_a_snapshot_reads_back_byte_for_byte_and_ctrl_c_unmounts(repo, tmp_path, mounts):
    tree = make_tree(tmp_path / "src", big=5 << 20)
    src = tree["root"]
    sid = repo.backup(src, args=("--tag", "daily"))["snapshot_id"]
    snap = repo.snapshots()[0]
    where = tmp_path / "mnt"
    m = mounts(repo, where)

    assert sorted(os.listdir(where)) == ["hosts", "ids", "snapshots", "tags"]
    names = os.listdir(where / "snapshots")
    stamp = snap["time"][:19] + "Z"
    assert sorted(names) == sorted([stamp, "latest"])
    assert os.readlink(where / "snapshots" / "latest") == stamp
    assert os.listdir(where / "ids") == [sid[:8]]
    assert sorted(os.listdir(where / "hosts" / snap["hostname"])) == sorted([stamp, "latest"])
    assert sorted(os.listdir(where / "tags" / "daily")) == sorted([stamp, "latest"])

    inside = os.fsencode(where / "snapshots" / "latest") + os.fsencode(src)
    _compare(os.fsencode(src), inside)
    assert sorted(os.listdir(os.fsencode(where / "ids" / sid[:8]) + os.fsencode(src))) == sorted(
        os.listdir(os.fsencode(src))
    )
    # random access into a file of several blobs, across blob boundaries
    data = Path(tree["big"]).read_bytes()
    with open(inside + b"/big.bin", "rb") as f:
        for at in (0, len(data) - 1, len(data) // 3, (1 << 20) - 7, len(data) - 100_000):
            f.seek(at)
            assert f.read(200_000) == data[at : at + 200_000]

    copy = tmp_path / "copy"
    assert subprocess.run(["cp", "-a", inside, copy], capture_output=True).returncode == 0
    diff = subprocess.run(["diff", "-r", "--no-dereference", os.fsencode(src), copy], capture_output=True)
    assert diff.returncode == 0, diff.stdout + diff.stderr

    with pytest.raises(OSError) as e:
        open(inside + b"/small.txt", "wb")
    assert e.value.errno in (errno.EROFS, errno.EACCES)

    assert m.interrupt(signal.SIGINT) == 0
    assert not os.path.ismount(where)
    assert os.listdir(where) == []
    assert "Traceback" not in m.proc.stderr.read().decode()


@needs_fuse
def test_sigterm_unmounts_cleanly(repo, tmp_path, mounts):
    write(tmp_path / "src" / "a.txt", b"alpha\n")
    repo.backup(tmp_path / "src")
    m = mounts(repo, tmp_path / "mnt")
    assert (tmp_path / "mnt" / "snapshots" / "latest" / str(tmp_path / "src" / "a.txt")[1:]).read_bytes() == (
        b"alpha\n"
    )
    assert m.interrupt(signal.SIGTERM) == 0
    assert not os.path.ismount(tmp_path / "mnt")


@needs_fuse
def test_a_backup_made_while_mounted_appears(repo, tmp_path, mounts):
    src = tmp_path / "src"
    write(src / "a.txt", b"first\n")
    repo.backup(src)
    where = tmp_path / "mnt"
    mounts(repo, where)
    assert len(os.listdir(where / "snapshots")) == 2  # one snapshot and latest

    write(src / "a.txt", b"second, longer\n")
    second = repo.backup(src, args=("--tag", "later"))["snapshot_id"]
    deadline = time.monotonic() + 60  # the list is read again at most every few seconds
    while sid_missing(where, second) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not sid_missing(where, second)
    rel = str(src / "a.txt")[1:]
    assert (where / "ids" / second[:8] / rel).read_bytes() == b"second, longer\n"
    assert (where / "tags" / "later" / "latest" / rel).read_bytes() == b"second, longer\n"
    assert len(os.listdir(where / "snapshots")) == 3


def sid_missing(where: Path, sid: str) -> bool:
    return sid[:8] not in os.listdir(where / "ids")


@needs_fuse
def test_host_and_tag_filters_choose_the_snapshots_shown(repo, tmp_path, mounts):
    src = tmp_path / "src"
    write(src / "a.txt", b"a\n")
    repo.backup(src, args=("--host", "alpha", "--tag", "keep"))
    beta = repo.backup(src, args=("--host", "beta"))["snapshot_id"]
    where = tmp_path / "mnt"
    mounts(repo, where, "--host", "beta")
    assert os.listdir(where / "ids") == [beta[:8]]
    assert os.listdir(where / "hosts") == ["beta"]
    assert os.listdir(where / "tags") == []

    other = tmp_path / "other-src"
    write(other / "b.txt", b"b\n")
    repo.backup(other, args=("--host", "beta"))
    by_path = tmp_path / "by-path"
    mounts(repo, by_path, "--path", str(src), "--tag", "keep")
    assert os.listdir(by_path / "hosts") == ["alpha"]
    assert os.listdir(by_path / "tags") == ["keep"]


@needs_fuse
def test_a_damaged_pack_is_an_io_error_for_that_file_and_the_mount_goes_on(repo, tmp_path, mounts):
    src = tmp_path / "src"
    rnd = random.Random(7)
    write(src / "big.bin", rnd.randbytes(4 << 20))
    write(src / "note.txt", b"a note\n")
    repo.backup(src)
    packs = sorted((p for p in (repo.repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    damaged = packs[-1]  # the data pack: the tree pack is a few hundred bytes
    os.chmod(damaged, 0o644)
    with open(damaged, "r+b") as f:  # an attacker, or a disk, overwrites the middle of the pack
        f.seek(damaged.stat().st_size // 2)
        f.write(b"\0" * 4096)
    where = tmp_path / "mnt"
    m = mounts(repo, where)
    inside = where / "snapshots" / "latest" / str(src)[1:]
    with pytest.raises(OSError) as e:
        (inside / "big.bin").read_bytes()
    assert e.value.errno == errno.EIO
    assert m.proc.poll() is None  # still serving
    assert sorted(os.listdir(inside)) == ["big.bin", "note.txt"]
    assert (inside / "big.bin").stat().st_size == 4 << 20
    assert m.interrupt() == 0
    err = m.proc.stderr.read().decode()
    assert "Traceback" not in err
    assert "does not" in err or "damaged" in err or "authentic" in err or "blob" in err


@needs_fuse
def test_a_mountpoint_that_is_not_an_empty_folder_is_refused(repo, tmp_path):
    write(tmp_path / "src" / "a.txt", b"a\n")
    repo.backup(tmp_path / "src")
    full = tmp_path / "full"
    write(full / "precious.txt", b"keep me\n")
    r = repo.run("mount", full, expect=1)
    assert "not empty" in r.stderr and "Traceback" not in r.stderr
    assert (full / "precious.txt").read_bytes() == b"keep me\n"
    assert not os.path.ismount(full)

    r = repo.run("mount", tmp_path / "src" / "a.txt", expect=1)
    assert "not a folder" in r.stderr
    r = repo.run("mount", tmp_path / "nowhere", expect=1)
    assert "no such folder" in r.stderr


@needs_fuse
def test_a_write_only_key_may_not_mount(repo, tmp_path):
    write(tmp_path / "src" / "a.txt", b"a\n")
    repo.backup(tmp_path / "src")
    repo.run("key", "add", "--role", "backup", env=repo.env(AMBER_NEW_PASSWORD="backup only pw"))
    (tmp_path / "mnt").mkdir()
    r = repo.run("mount", tmp_path / "mnt", expect=13, env=repo.env(AMBER_PASSWORD="backup only pw"))
    assert "write-only" in r.stderr
    assert not os.path.ismount(tmp_path / "mnt")


@needs_fuse
def test_extended_attributes_read_through_the_mount(repo, tmp_path, mounts):
    src = tmp_path / "src"
    write(src / "tagged.txt", b"with an attribute\n")
    try:
        os.setxattr(src / "tagged.txt", "user.amber.test", b"\x00binary value\xff")
    except OSError as e:
        pytest.skip(f"this file system keeps no user extended attributes ({e.strerror})")
    repo.backup(src)
    (node,) = [e for e in repo.json("ls", "latest", str(src)) if e["name"] == "tagged.txt"]
    where = tmp_path / "mnt"
    mounts(repo, where)
    inside = where / "snapshots" / "latest" / str(src / "tagged.txt")[1:]
    if not os.listxattr(inside):
        pytest.skip("this amber records no extended attributes in its trees yet")
    assert os.listxattr(inside) == ["user.amber.test"], node
    assert os.getxattr(inside, "user.amber.test") == b"\x00binary value\xff"
    with pytest.raises(OSError) as e:
        os.getxattr(inside, "user.absent")
    assert e.value.errno == errno.ENODATA


def test_without_libfuse_mount_says_so(repo, tmp_path):
    write(tmp_path / "src" / "a.txt", b"a\n")
    repo.backup(tmp_path / "src")
    (tmp_path / "mnt").mkdir()
    r = repo.run("mount", tmp_path / "mnt", expect=1, env=repo.env(FUSE_LIBRARY_PATH=tmp_path / "no-libfuse.so"))
    assert "FUSE is not available" in r.stderr
    assert not os.path.ismount(tmp_path / "mnt")


@needs_fuse
@pytest.mark.skipif(not IS_ROOT, reason="needs root to become nobody")
def test_a_user_may_not_mount_on_a_folder_that_is_not_theirs(tmp_path):
    import tempfile

    from cli_helpers import Amber

    base = tempfile.mkdtemp(prefix="amber-mount-user-", dir="/tmp")  # pytest's folders are root's alone
    try:
        os.chmod(base, 0o755)
        user = Amber(Path(base) / "user")
        user.create()
        write(Path(base) / "src" / "a.txt", b"a\n")
        user.backup(Path(base) / "src")
        for folder, _dirs, _files in os.walk(base):
            os.chown(folder, 65534, 65534)
            for f in _files:
                os.chown(os.path.join(folder, f), 65534, 65534, follow_symlinks=False)
        roots = Path(base) / "roots"
        roots.mkdir()  # root's, empty
        r = user.run("mount", roots, expect=1, preexec_fn=_as_nobody)
        assert "not permitted" in r.stderr
        assert not os.path.ismount(roots)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _as_nobody() -> None:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


LIBFUSES = [name for name in ("fuse3", "fuse") if ctypes.util.find_library(name)]


@needs_fuse
@pytest.mark.parametrize("libfuse", LIBFUSES)
def test_a_large_folder_listed_in_many_requests_and_read_in_order(repo, tmp_path, mounts, libfuse):
    """A folder of 700 entries needs many listing requests (a few dozen entries each); with
    libfuse 3 each brings its entries' attributes (READDIRPLUS), so what stat says without a
    lookup must be the snapshot's. Files read one after the other, as cat or tar do, are fetched
    ahead of their reads; each must still hold its own bytes."""
    rng = random.Random(7)
    src = tmp_path / "src"
    big = src / "big folder"
    for i in range(700):
        p = big / f"f{i:04d}.dat"
        write(p, rng.randbytes(rng.choice((0, 1, 300, 5000, 70_000))))
        os.chmod(p, rng.choice((0o600, 0o644, 0o755, 0o400)))
        os.utime(p, ns=(1_600_000_000_000_000_000 + i, 1_600_000_000_123_456_789 + i * 1_000_003))
    (big / "sub").mkdir()
    write(big / "sub" / "inner.txt", b"inner\n")
    os.symlink("f0001.dat", big / "link")
    repo.backup(src)
    where = tmp_path / "mnt"
    mounts(repo, where, env=repo.env(FUSE_LIBRARY_NAME=libfuse))
    inside = os.fsencode(where / "snapshots" / "latest") + os.fsencode(big)

    listed = {e.name: e.stat(follow_symlinks=False) for e in os.scandir(inside)}
    assert sorted(listed) == sorted(os.fsencode(n) for n in os.listdir(big))
    for name, got in listed.items():
        want = os.lstat(os.fsencode(big) + b"/" + name)
        assert (got.st_mode, got.st_mtime_ns, got.st_uid, got.st_gid) == (
            want.st_mode,
            want.st_mtime_ns,
            want.st_uid,
            want.st_gid,
        ), name
        if stat.S_ISREG(want.st_mode):
            assert got.st_size == want.st_size, name
    dots = subprocess.run(["ls", "-a", inside], capture_output=True, check=True).stdout.split(b"\n")
    assert dots[:2] == [b".", b".."]

    for entry in sorted(os.scandir(inside), key=lambda e: e.name):  # the order the snapshot lists them
        if entry.is_file(follow_symlinks=False):
            with open(entry.path, "rb") as f:
                assert f.read() == (big / os.fsdecode(entry.name)).read_bytes(), entry.name
    assert Path(os.fsdecode(inside) + "/link").read_bytes() == (big / "f0001.dat").read_bytes()


@needs_fuse
@pytest.mark.parametrize("libfuse", LIBFUSES)
def test_hard_links_share_an_inode_through_the_mount(repo, tmp_path, mounts, libfuse):
    src = tmp_path / "src"
    write(src / "a.txt", b"linked content\n")
    os.link(src / "a.txt", src / "sub-b.txt")
    write(src / "dir" / "other.txt", b"linked content\n")  # same content, not linked
    repo.backup(src)
    write(src / "later.txt", b"a second snapshot\n")
    repo.backup(src)
    where = tmp_path / "mnt"
    mounts(repo, where, env=repo.env(FUSE_LIBRARY_NAME=libfuse))
    inside = where / "snapshots" / "latest" / str(src)[1:]
    a, b, other = (os.stat(inside / n) for n in ("a.txt", "sub-b.txt", "dir/other.txt"))
    assert a.st_ino == b.st_ino and a.st_nlink == b.st_nlink == 2, (a, b)
    assert other.st_ino != a.st_ino and other.st_nlink == 1, other
    # every path has its own stable number, and readdir gives the numbers stat gives
    numbers: dict[int, set[str]] = {}
    for dirpath, _dirs, _files in os.walk(where / "snapshots"):
        for entry in os.scandir(dirpath):
            st = entry.stat(follow_symlinks=False)
            assert entry.inode() == st.st_ino > 1, entry.path
            numbers.setdefault(st.st_ino, set()).add(entry.name)
    shared = [names for names in numbers.values() if len(names) > 1]
    assert shared == [{"a.txt", "sub-b.txt"}], shared  # the unchanged pair in both snapshots
    assert os.stat(where).st_ino == 1

    copy = tmp_path / "copy"
    assert subprocess.run(["cp", "-a", inside, copy], capture_output=True).returncode == 0
    ca, cb = os.stat(copy / "a.txt"), os.stat(copy / "sub-b.txt")
    assert ca.st_ino == cb.st_ino and ca.st_nlink == 2, "cp -a kept the hard link"
    assert os.stat(copy / "dir" / "other.txt").st_nlink == 1
    assert (copy / "sub-b.txt").read_bytes() == b"linked content\n"


def _lsattr(path) -> set[str]:
    """lsattr's letters for one entry (of its first column), without `e` (extents: how ext4
    stores a file, which no snapshot records)."""
    out = subprocess.run(["lsattr", "-d", path], capture_output=True, text=True, check=True).stdout
    return set(out.split()[0]) - {"-", "e"}


@needs_fuse
@pytest.mark.skipif(shutil.which("chattr") is None, reason="chattr/lsattr (package e2fsprogs) missing")
@pytest.mark.parametrize("libfuse", LIBFUSES)
def test_lsattr_through_the_mount_shows_the_recorded_flags(repo, tmp_path, mounts, libfuse):
    src = tmp_path / "src"
    write(src / "nodump.txt", b"not for dump\n")
    write(src / "plain.txt", b"no flags\n")
    write(src / "noatime" / "inner.txt", b"inside\n")
    if subprocess.run(["chattr", "+d", src / "nodump.txt"], capture_output=True).returncode != 0:
        pytest.skip(f"{tmp_path} has no inode flags")
    subprocess.run(["chattr", "+A", src / "noatime"], check=True)
    repo.backup(src)
    where = tmp_path / "mnt"
    mounts(repo, where, env=repo.env(FUSE_LIBRARY_NAME=libfuse))
    inside = where / "snapshots" / "latest" / str(src)[1:]
    expected = {"nodump.txt": {"d"}, "plain.txt": set(), "noatime": {"A"}, "noatime/inner.txt": set()}
    for name, letters in expected.items():
        assert _lsattr(src / name) == letters, name
        assert _lsattr(inside / name) == letters, name
    assert _lsattr(where / "snapshots") == set(), "the folders above the snapshots have none"


@needs_fuse
@pytest.mark.skipif(not IS_ROOT, reason="needs root to mount for others and to become nobody")
def test_another_user_reads_only_what_the_recorded_modes_allow(repo, mounts):
    """Files are never opened through the mount (the kernel is told opens need no request):
    the kernel still checks each open against the modes and owners the snapshot recorded."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="amber-mount-others-", dir="/tmp"))  # pytest's folders are root's
    where = base / "mnt"
    try:
        os.chmod(base, 0o755)
        src = base / "src"
        write(src / "open.txt", b"for everyone\n")
        write(src / "secret.txt", b"root alone\n")
        write(src / "private" / "inner.txt", b"inside\n")
        os.chmod(src / "open.txt", 0o644)
        os.chmod(src / "secret.txt", 0o600)
        os.chmod(src / "private", 0o700)
        os.chmod(src, 0o755)
        repo.backup(src)
        mounts(repo, where, "--allow-other")
        inside = where / "snapshots" / "latest" / str(src).lstrip("/")

        def as_nobody(*cmd):
            return subprocess.run(cmd, capture_output=True, preexec_fn=_as_nobody)

        ok = as_nobody("cat", inside / "open.txt")
        assert ok.returncode == 0 and ok.stdout == b"for everyone\n", ok.stderr
        for refused in (inside / "secret.txt", inside / "private" / "inner.txt"):
            r = as_nobody("cat", refused)
            assert r.returncode != 0 and b"Permission denied" in r.stderr and r.stdout == b"", refused
        assert (inside / "secret.txt").read_bytes() == b"root alone\n"  # its owner still reads it
    finally:
        unmount(where)
        shutil.rmtree(base, ignore_errors=True)
