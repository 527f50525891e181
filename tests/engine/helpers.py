"""Source trees to back up, and comparisons of what a restore produced."""
from __future__ import annotations

import hashlib
import os
import random
import stat

from amber.repository import Repository
from sources import PAST_NS, write  # noqa: F401 - used by the tests through this module

PASSWORD = "engine test password"
KDF_N = 1 << 10




def set_past_mtimes(root) -> None:
    """Give every folder a fixed mtime in the past, deepest first (writing changes a parent's mtime)."""
    root = os.fspath(root)
    folders = [folder for folder, _dirs, _files in os.walk(root)]
    for i, folder in enumerate(sorted(folders, key=lambda p: -p.count(os.sep))):
        os.utime(folder, ns=(PAST_NS + i * 1_000_003, PAST_NS + i * 1_000_003))


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
            write(os.path.join(root, "small", f"d{d}", f"f{i:03d}.dat"), rnd.randbytes(size),
                  mode=rnd.choice(modes), mtime_ns=PAST_NS + rnd.randrange(10**17))
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
    write(os.path.join(root, "emoji \U0001F389 name.txt"), b"party\n")
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


def describe(root) -> dict:
    """rel path -> what a faithful restore must reproduce."""
    root = os.fspath(root)
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(folder, name)
            st = os.lstat(p)
            e = {"mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns,
                 "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISLNK(st.st_mode):
                e.update(type="symlink", target=os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                e["type"] = "dir"
            elif stat.S_ISFIFO(st.st_mode):
                e["type"] = "fifo"
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                e.update(type="file", size=st.st_size, sha256=h.hexdigest())
            else:
                e["type"] = "other"
            out[os.path.relpath(p, root)] = e
    # the root folder itself
    st = os.lstat(root)
    out["."] = {"type": "dir", "mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns,
                "uid": st.st_uid, "gid": st.st_gid}
    return out


def restored(target, src) -> str:
    """Where a restore into `target` puts the backed-up folder `src`."""
    return os.path.join(os.fspath(target), os.fspath(src).lstrip("/"))


def assert_same_tree(src, copy) -> None:
    want, got = describe(src), describe(copy)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert not missing, f"not restored: {missing[:20]}"
    assert not extra, f"restored but not in the source: {extra[:20]}"
    wrong = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
    assert not wrong, f"{len(wrong)} entries differ, e.g. {list(wrong.items())[:5]}"


def init_repo(path, **kw) -> Repository:
    return Repository.init(os.fspath(path), PASSWORD, kdf_n=KDF_N, **kw)


def open_repo(path, **kw) -> Repository:
    return Repository.open(os.fspath(path), PASSWORD, **kw)


def with_storage(repo: Repository, storage, **config) -> Repository:
    """The same repository reached through another storage (a wrapper), as a new client."""
    return Repository(storage, repo.keys, dict(repo.config, **config), repo.key_id, repo.clock)


def files_in(target) -> set[str]:
    out = set()
    for folder, dirs, files in os.walk(os.fspath(target)):
        out.update(os.path.relpath(os.path.join(folder, n), target) for n in dirs + files)
    return out
