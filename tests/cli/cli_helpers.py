"""Helpers for the end-to-end tests of the `amber` command.

Every test drives the real `amber` executable in a subprocess, with its own
repository, cache, data and state folders and HOME, all under the test's
temporary folder. Nothing here imports amber itself.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

PASSWORD = "correct horse battery staple ✓"
OLD_NS = 1_600_000_000_123_456_789  # 2020-09-13, well outside the files cache's 2 s window
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NON_UTF8_NAME = b"latin1-caf\xe9-\xff.bin"


def find_amber() -> str | None:
    """The `amber` next to the running interpreter, else the one on PATH."""
    here = Path(sys.executable).parent / "amber"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("amber")


AMBER = find_amber()


class Result:
    def __init__(self, args, rc: int, stdout: bytes, stderr_raw: bytes) -> None:
        self.args = args
        self.rc = rc
        self.stdout = stdout
        self.stderr_raw = stderr_raw
        self.stderr = stderr_raw.decode("utf-8", "replace")

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "surrogateescape")

    def json(self):
        """The whole of stdout as one JSON document (strict: valid UTF-8, nothing else)."""
        try:
            return json.loads(self.stdout)
        except ValueError as e:
            raise AssertionError(f"stdout is not exactly one JSON document ({e}):\n{self!r}") from None

    def __repr__(self) -> str:
        out = self.stdout[:3000].decode("utf-8", "backslashreplace")
        return (f"$ amber {' '.join(map(_show, self.args))}\nexit {self.rc}\n"
                f"--- stderr ---\n{self.stderr[:3000]}\n--- stdout ---\n{out}")


def _show(a) -> str:
    return a.decode("utf-8", "backslashreplace") if isinstance(a, bytes) else str(a)


class Amber:
    """One user of amber: a repository, a password and private cache/data/state/home folders."""

    def __init__(self, base: Path, *, password: str = PASSWORD) -> None:
        self.base = Path(base)
        self.repo = self.base / "repo"
        self.password = password
        self.home = self.base / "home"
        self.cache = self.base / "cache"
        self.data = self.base / "xdg-data"
        self.state = self.base / "xdg-state"
        for d in (self.home, self.cache, self.data, self.state):
            d.mkdir(parents=True, exist_ok=True)

    def env(self, **overrides) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AMBER_", "XDG_")) and k not in ("PYTHONIOENCODING", "PYTHONUTF8")}
        env.update({
            "AMBER_REPOSITORY": str(self.repo), "AMBER_PASSWORD": self.password,
            "XDG_CACHE_HOME": str(self.cache), "XDG_DATA_HOME": str(self.data),
            "XDG_STATE_HOME": str(self.state), "HOME": str(self.home), "COLUMNS": "200",
        })
        for k, v in overrides.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def cmd(self, *args) -> list:
        assert AMBER, "no amber executable next to the interpreter or on PATH"
        return [AMBER, *(a if isinstance(a, bytes) else os.fspath(a) if isinstance(a, os.PathLike) else str(a)
                         for a in args)]

    def run(self, *args, expect: int | None = 0, input: bytes | None = None, env: dict | None = None,
            timeout: float = 300, cwd=None, preexec_fn=None, stderr=None) -> Result:
        """Run amber; `expect` is the exit code required (None: any). Never a traceback."""
        p = subprocess.run(self.cmd(*args), input=input, stdin=None if input is not None else subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=stderr if stderr is not None else subprocess.PIPE,
                           env=env if env is not None else self.env(), timeout=timeout, cwd=cwd,
                           preexec_fn=preexec_fn)
        r = Result(args, p.returncode, p.stdout, p.stderr or b"")
        assert "Traceback" not in r.stderr, f"a traceback reached the user:\n{r!r}"
        assert "Traceback" not in r.stdout.decode("utf-8", "replace"), f"a traceback on stdout:\n{r!r}"
        if expect is not None:
            assert r.rc == expect, f"expected exit {expect}:\n{r!r}"
        return r

    def json(self, *args, expect: int | None = 0, quiet: bool = True, **kw):
        """Run with --json; stdout must be one JSON document and, when `quiet`, stderr empty."""
        r = self.run(*args, "--json", expect=expect, **kw)
        doc = r.json()
        if quiet:
            assert r.stderr == "", f"--json run wrote to stderr:\n{r!r}"
        return doc

    # shorthands

    def init(self) -> None:
        self.run("init")

    def backup(self, *paths, args=(), **kw) -> dict:
        return self.json("backup", *args, *paths, **kw)

    def snapshots(self, *args) -> list:
        return self.json("snapshots", *args)


# -- trees --------------------------------------------------------------------

def write(path, data: bytes, mode: int | None = None) -> None:
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


def make_tree(root: Path, *, non_utf8: bool = True, big: int = 9 << 20, seed: int = 0) -> dict:
    """A tree with most of what a file system holds. Returns a few notable paths (str)."""
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
    rnd = _random(seed)
    write(root / "big.bin", rnd(big))
    write(root / "medium.bin", rnd(700 << 10))
    write(root / "nested" / "deeper" / "deepest" / "leaf.txt", b"leaf\n")
    write(root / "nested" / "sub dir" / "x y.dat", rnd(3000))
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
        "root": str(root), "big": str(root / "big.bin"), "small": str(root / "small.txt"),
        "empty": str(root / "empty.txt"), "leaf": str(root / "nested" / "deeper" / "deepest" / "leaf.txt"),
    }


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


def _random(seed: int):
    import random

    r = random.Random(seed)
    return lambda n: r.randbytes(n)


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def tree_state(root, *, owners: bool = IS_ROOT) -> dict:
    """Everything a restore must reproduce, keyed by path relative to root (bytes)."""
    broot = os.fsencode(root)
    out: dict = {}
    inodes: dict = {}

    def one(p: bytes, rel: bytes) -> None:
        st = os.lstat(p)
        kind = ("dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode)
                else "symlink" if stat.S_ISLNK(st.st_mode) else "other")
        entry = {"type": kind, "mtime_ns": st.st_mtime_ns}
        if kind != "symlink":
            entry["mode"] = stat.S_IMODE(st.st_mode)
        if owners:
            entry["uid"], entry["gid"] = st.st_uid, st.st_gid
        if kind == "file":
            entry["size"] = st.st_size
            entry["sha256"] = sha256_file(p)
            if st.st_nlink > 1:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
        elif kind == "symlink":
            entry["target"] = os.readlink(p)
        out[rel] = entry
        if kind == "dir":
            for name in sorted(os.listdir(p)):
                one(os.path.join(p, name), os.path.join(rel, name) if rel else name)

    one(broot, b"")
    out["__hardlinks__"] = sorted(sorted(v) for v in inodes.values() if len(v) > 1)
    return out


def restored_root(target, source) -> bytes:
    """Where a restore puts `source`: under target, at its absolute path."""
    return os.path.join(os.fsencode(target), os.fsencode(os.path.abspath(source)).lstrip(b"/"))


def assert_same_tree(source, restored, **kw) -> None:
    a, b = tree_state(source, **kw), tree_state(restored, **kw)
    missing = sorted(set(a) - set(b))
    extra = sorted(set(b) - set(a))
    assert not missing and not extra, f"missing after restore: {missing}; unexpected: {extra}"
    diffs = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert not diffs, "restored tree differs from the source:\n" + "\n".join(
        f"  {k!r}: source {v[0]} restored {v[1]}" for k, v in sorted(diffs.items(), key=lambda kv: str(kv[0])))


def iso_to_us(text: str) -> int:
    """An ISO 8601 UTC time as integer microseconds since the epoch."""
    assert text.endswith("Z") or text.endswith("+00:00"), f"time {text!r} is not UTC"
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (t - EPOCH) // dt.timedelta(microseconds=1)


def packs(repo) -> list[Path]:
    """The pack files of a local repository (amber's temporaries start with '.')."""
    data = Path(repo) / "data"
    if not data.is_dir():
        return []
    return sorted(p for d in data.iterdir() if d.is_dir() for p in d.iterdir() if not p.name.startswith("."))


def flip_bit(path, offset: int, bit: int = 0) -> None:
    os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ (1 << bit)]))


def truncate(path, size: int) -> None:
    os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)
    os.truncate(path, size)
