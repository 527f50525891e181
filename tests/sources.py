"""The one place tests write source trees and create repositories.

Files get mtimes old enough for the files cache to trust (unless a test asks
for "now"), so a second backup of an unchanged tree reads nothing. Repositories
are created with a cheap key derivation (`KDF_N`): the full scrypt cost is
tested where it matters (tests/format/test_keys.py, and `amber init` itself).
"""

from __future__ import annotations

import hashlib
import os
import random
import stat
from pathlib import Path

PAST_NS = 1_500_000_000_000_000_000  # 2017: older than the files cache's 2 s safety margin
OLD_NS = 1_600_000_000_123_456_789  # 2020-09-13: the base of `set_old_mtimes`
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NON_UTF8_NAME = b"latin1-caf\xe9-\xff.bin"

PASSWORD = "test password \u2713"
KDF_N = 1 << 10


# -- repositories ------------------------------------------------------------------------


def init_repo(path, clock=None, *, password: str = PASSWORD, **kw):
    """A new repository at `path` (a local path or URL); with `clock`, its storage uses it too.
    Without parity unless asked (`parity=2`): the damage tests test what a reader does when
    nothing rebuilds a pack; tests/cli/test_cli_parity.py tests parity through `amber init`."""
    from amber.repository import Repository

    kw.setdefault("parity", 0)
    repo = Repository.init(os.fspath(path), password, kdf_n=KDF_N, clock=clock, **kw)
    if clock is not None:
        repo.storage.clock = clock
    return repo


def open_repo(path, clock=None, *, password: str = PASSWORD, **kw):
    """Another client opening the same repository (fresh index, fresh caches)."""
    from amber.repository import Repository

    repo = Repository.open(os.fspath(path), password, clock=clock, **kw)
    if clock is not None:
        repo.storage.clock = clock
    return repo


# -- files -------------------------------------------------------------------------------


def write(path, data: bytes, mode: int | None = 0o644, *, mtime_ns: int | None = PAST_NS) -> str:
    """Write a file (and its folders); `mode` None keeps the umask's, `mtime_ns` None keeps now."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def rand(n: int, seed) -> bytes:
    return random.Random(seed).randbytes(n)


def set_past_mtimes(root) -> None:
    """Give every folder a fixed mtime in the past, deepest first (writing changes a parent's mtime)."""
    root = os.fspath(root)
    folders = [folder for folder, _dirs, _files in os.walk(root)]
    for i, folder in enumerate(sorted(folders, key=lambda p: -p.count(os.sep))):
        os.utime(folder, ns=(PAST_NS + i * 1_000_003, PAST_NS + i * 1_000_003))


def set_old_mtimes(root, base_ns: int = OLD_NS) -> None:
    """Distinct, old, nanosecond mtimes on everything below root (children before parents)."""
    broot = os.fsencode(root)
    entries = []
    for dirpath, dirnames, filenames in os.walk(broot):
        for n in filenames + dirnames:
            entries.append(os.path.join(dirpath, n))
    for i, p in enumerate(sorted(entries, key=lambda p: (-p.count(b"/"), p))):
        t = base_ns + i * 1_000_001_003
        os.utime(p, ns=(t, t), follow_symlinks=False)
    os.utime(broot, ns=(base_ns - 7, base_ns - 7))


def make_source(root, files: dict[str, bytes]) -> str:
    """A folder holding exactly `files` (name -> content); anything else in it is removed."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for p in root.iterdir():
        if p.name not in files:
            p.unlink()
    for name, data in files.items():
        write(root / name, data)
    os.utime(root, ns=(PAST_NS, PAST_NS))
    return str(root)


# -- trees -------------------------------------------------------------------------------


def small_tree(root, *, seed: int = 0) -> str:
    """A few files, folders, a symlink: fast to back up."""
    root = os.fspath(root)
    rnd = random.Random(seed)
    write(os.path.join(root, "hello.txt"), b"hello, amber\n")
    write(os.path.join(root, "docs", "a.md"), b"# a\n" * 100, mode=0o640)
    write(os.path.join(root, "docs", "b.bin"), rnd.randbytes(5000), mode=0o600)
    write(os.path.join(root, "docs", "deep", "c.txt"), b"c" * 3000)
    write(os.path.join(root, "unique.bin"), rnd.randbytes(20_000))
    os.makedirs(os.path.join(root, "empty"))
    os.symlink("hello.txt", os.path.join(root, "link"))
    set_past_mtimes(root)
    return root


def full_tree(root, *, seed: int = 1) -> dict:
    """Everything a backup must keep: many small files, big random and compressible
    files, an empty file, empty folders, symlinks, hard links, a fifo, unicode and
    non-UTF-8 names, assorted modes and nanosecond mtimes. Returns notes on it."""
    root = os.fspath(root)
    rnd = random.Random(seed)
    modes = [0o644, 0o600, 0o640, 0o755, 0o700, 0o444, 0o664]
    for d in range(8):
        for i in range(30):
            size = rnd.choice([0, 1, 17, 100, 1000, 4096, 10_000])
            write(
                os.path.join(root, "small", f"d{d}", f"f{i:03d}.dat"),
                rnd.randbytes(size),
                mode=rnd.choice(modes),
                mtime_ns=PAST_NS + rnd.randrange(10**17),
            )
    write(os.path.join(root, "big", "random.bin"), rnd.randbytes(3 << 20), mode=0o600)
    lines = b"".join(b"line %d of a compressible file\n" % i for i in range(120_000))
    write(os.path.join(root, "big", "text.log"), lines, mtime_ns=PAST_NS + 123_456_789)
    # over the whole-read threshold, so it is streamed
    block = rnd.randbytes(1 << 20)
    write(os.path.join(root, "big", "streamed.bin"), block * 9, mtime_ns=PAST_NS + 987_654_321)
    write(os.path.join(root, "empty-file"), b"", mode=0o600)
    os.makedirs(os.path.join(root, "empty-dir"))
    os.makedirs(os.path.join(root, "nested", "empty", "deeper"))
    write(os.path.join(root, "caf\u00e9.txt"), "caf\u00e9\n".encode())
    write(os.path.join(root, "\u65e5\u672c\u8a9e", "\u30d5\u30a1\u30a4\u30eb.txt"), "\u65e5\u672c\n".encode())
    write(os.path.join(root, "emoji \U0001f389 name.txt"), b"party\n")
    write(os.path.join(root, "with space & 'quotes'"), b"q\n")
    raw_name = os.path.join(os.fsencode(root), b"latin-\xe9-\xff.txt")
    with open(raw_name, "wb") as f:
        f.write(b"not utf-8 name\n")
    os.utime(raw_name, ns=(PAST_NS, PAST_NS))
    write(os.path.join(root, "exec.sh"), b"#!/bin/sh\necho hi\n", mode=0o755)
    write(os.path.join(root, "hard-a"), b"hard linked content\n" * 10)
    os.link(os.path.join(root, "hard-a"), os.path.join(root, "hard-b"))
    write(os.path.join(root, "sub1", "h"), b"cross-folder hard link\n")
    os.makedirs(os.path.join(root, "sub2"))
    os.link(os.path.join(root, "sub1", "h"), os.path.join(root, "sub2", "h"))
    os.symlink("small/d0/f000.dat", os.path.join(root, "link-rel"))
    os.symlink("/nonexistent/absolute/target", os.path.join(root, "link-abs-dangling"))
    os.symlink("small", os.path.join(root, "link-to-dir"))
    os.symlink(os.fsdecode(b"weird-\xfe-target"), os.path.join(root, "link-weird"))
    os.mkfifo(os.path.join(root, "fifo"), 0o640)
    for name in ("link-rel", "link-abs-dangling", "link-to-dir", "link-weird", "fifo"):
        p = os.path.join(root, name)
        os.utime(p, ns=(PAST_NS + 5, PAST_NS + 5), follow_symlinks=False)
    os.chmod(os.path.join(root, "nested"), 0o750)
    set_past_mtimes(root)
    return {"hardlinks": [("hard-a", "hard-b"), ("sub1/h", "sub2/h")]}


def make_tree(root, *, non_utf8: bool = True, big: int = 9 << 20, seed: int = 0) -> dict:
    """A tree with most of what a file system holds, every entry with a distinct old mtime.
    Returns a few notable paths (str)."""
    root = Path(root)
    broot = os.fsencode(root)
    root.mkdir(parents=True)
    (root / "nested" / "deeper" / "deepest").mkdir(parents=True)
    (root / "nested" / "sub dir").mkdir()
    (root / "empty-dir").mkdir()
    (root / "private-dir").mkdir()
    (root / "read-only-dir").mkdir()
    write(root / "empty.txt", b"")
    write(root / "small.txt", b"hello amber\n")
    write(root / "with space.txt", b"a name with spaces\n")
    write(root / "ünïcødé — 日本語.txt", "ünïcødé content ✓\n".encode())
    write(root / "new\nline\tand tab", b"control characters in the name\n")
    write(root / "-starts-with-a-dash", b"dash\n")
    write(root / "secret.key", b"0600 secret\n", 0o600)
    write(root / "run.sh", b"#!/bin/sh\necho hi\n", 0o755)
    write(root / "suid-tool", b"\x7fELF pretend\n", 0o4755)
    write(root / "read-only.txt", b"read only\n", 0o444)
    rnd = random.Random(seed)
    write(root / "big.bin", rnd.randbytes(big))
    write(root / "medium.bin", rnd.randbytes(700 << 10))
    write(root / "nested" / "deeper" / "deepest" / "leaf.txt", b"leaf\n")
    write(root / "nested" / "sub dir" / "x y.dat", rnd.randbytes(3000))
    write(root / "private-dir" / "inner.txt", b"inner\n", 0o640)
    write(root / "read-only-dir" / "kept.txt", b"kept\n")
    write(root / "hardlink-a.txt", b"one inode, two names\n")
    os.link(root / "hardlink-a.txt", root / "nested" / "hardlink-b.txt")
    os.symlink("small.txt", root / "link-to-small")
    os.symlink("does/not/exist", root / "dangling-link")
    os.symlink("/nonexistent/absolute/target", root / "absolute-link")
    os.symlink("nested", root / "dir-link")
    if non_utf8:
        write(os.path.join(broot, NON_UTF8_NAME), b"bytes that are not UTF-8 in the name\n")
        os.mkdir(os.path.join(broot, b"dir-\xfe"))
        write(os.path.join(broot, b"dir-\xfe", b"f\xe0.txt"), b"inside\n")
        os.symlink(NON_UTF8_NAME, os.path.join(broot, b"link-\xe9"))
    if IS_ROOT:
        os.chown(root / "private-dir" / "inner.txt", 1234, 5678)
        os.chmod(root / "private-dir" / "inner.txt", 0o640)
    os.chmod(root / "private-dir", 0o700)
    os.chmod(root / "read-only-dir", 0o555)
    set_old_mtimes(root)
    return {
        "root": str(root),
        "big": str(root / "big.bin"),
        "small": str(root / "small.txt"),
        "empty": str(root / "empty.txt"),
        "leaf": str(root / "nested" / "deeper" / "deepest" / "leaf.txt"),
    }


def describe_entry(path: str) -> dict:
    """What a restore must reproduce of one entry: type, mode, mtime, and a link's target or a
    file's size and SHA-256."""
    st = os.lstat(path)
    e = {"mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns}
    if stat.S_ISLNK(st.st_mode):
        e.update(type="symlink", target=os.readlink(path))
    elif stat.S_ISDIR(st.st_mode):
        e["type"] = "dir"
    else:
        with open(path, "rb") as f:
            e.update(type="file", size=st.st_size, sha256=hashlib.sha256(f.read()).hexdigest())
    return e
