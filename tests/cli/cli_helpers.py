"""Helpers for the end-to-end tests of the `amber` command.

Every test acts as a user of amber with its own repository, cache, data and
state folders and HOME, all under the test's temporary folder. `Amber.run`
runs the command in this process by default (click's test runner, with the
user's environment in place of this process's, stdin and stdout as bytes, and
the exit code `amber` would give). A test marked `subprocess`, a run that needs
a process of its own (`preexec_fn`, a terminal), or every run when
AMBER_TESTS_SUBPROCESS=1 drives the real `amber` executable instead.
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
import traceback
from pathlib import Path

from sources import IS_ROOT, NON_UTF8_NAME, OLD_NS, init_repo, make_source, make_tree, set_old_mtimes, write  # noqa: F401 - re-exported

PASSWORD = "correct horse battery staple \u2713"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ALWAYS_SUBPROCESS = os.environ.get("AMBER_TESTS_SUBPROCESS") == "1"


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
        return (
            f"$ amber {' '.join(map(_show, self.args))}\nexit {self.rc}\n"
            f"--- stderr ---\n{self.stderr[:3000]}\n--- stdout ---\n{out}"
        )


def _show(a) -> str:
    return a.decode("utf-8", "backslashreplace") if isinstance(a, bytes) else str(a)


class Amber:
    """One user of amber: a repository, a password and private cache/data/state/home folders.
    With `subprocess`, every command runs as a real `amber` process."""

    def __init__(self, base: Path, *, password: str = PASSWORD, subprocess: bool = False) -> None:
        self.base = Path(base)
        self.repo = self.base / "repo"
        self.password = password
        self.subprocess = subprocess or ALWAYS_SUBPROCESS
        self.url = str(self.repo)
        self.home = self.base / "home"
        self.cache = self.base / "cache"
        self.data = self.base / "xdg-data"
        self.state = self.base / "xdg-state"
        for d in (self.home, self.cache, self.data, self.state):
            d.mkdir(parents=True, exist_ok=True)

    def env(self, **overrides) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if (not k.startswith(("AMBER_", "XDG_")) or k == "AMBER_LOG_LAYOUT")  # the `legacy_log` fixture's
            and k not in ("PYTHONIOENCODING", "PYTHONUTF8")
        }
        env.update(
            {
                "AMBER_REPOSITORY": str(self.repo),
                "AMBER_PASSWORD": self.password,
                "XDG_CACHE_HOME": str(self.cache),
                "XDG_DATA_HOME": str(self.data),
                "XDG_STATE_HOME": str(self.state),
                "HOME": str(self.home),
                "COLUMNS": "200",
            }
        )
        for k, v in overrides.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def cmd(self, *args) -> list:
        """The command line of a real `amber` process."""
        assert AMBER, "no amber executable next to the interpreter or on PATH"
        return [
            AMBER,
            *(a if isinstance(a, bytes) else os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args),
        ]

    def run(
        self,
        *args,
        expect: int | None = 0,
        input: bytes | None = None,
        env: dict | None = None,
        timeout: float = 300,
        cwd=None,
        preexec_fn=None,
        stderr=None,
    ) -> Result:
        """Run amber; `expect` is the exit code required (None: any). Never a traceback."""
        env = env if env is not None else self.env()
        if self.subprocess or preexec_fn is not None or stderr is not None:
            p = subprocess.run(
                self.cmd(*args),
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr if stderr is not None else subprocess.PIPE,
                env=env,
                timeout=timeout,
                cwd=cwd,
                preexec_fn=preexec_fn,
            )
            r = Result(args, p.returncode, p.stdout, p.stderr or b"")
        else:
            r = Result(args, *run_in_process(self.cmd(*args)[1:], env=env, input=input, cwd=cwd))
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
        """`amber init` itself (with the full key derivation)."""
        self.run("init")

    def create(self) -> None:
        """A new repository made through the library with a cheap key derivation, in this
        user's environment (so its first checkpoint is remembered in their state folder)."""
        with environment(self.env()):
            init_repo(self.url, password=self.password).close()

    def backup(self, *paths, args=(), **kw) -> dict:
        return self.json("backup", *args, *paths, **kw)

    def snapshots(self, *args) -> list:
        return self.json("snapshots", *args)


# -- running amber in this process --------------------------------------------------------------


def with_one_backup(u: Amber, src: Path) -> Amber:
    """`u`'s repository made, with one snapshot (`u.sid`) of `src` (`u.src`) holding a.txt."""
    u.create()
    u.src = Path(src)
    write(u.src / "a.txt", b"alpha\n")
    u.sid = u.backup(u.src)["snapshot_id"]
    return u


class environment:
    """os.environ replaced by `env` exactly, then put back."""

    def __init__(self, env: dict) -> None:
        self.env = env

    def __enter__(self):
        self.saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)

    def __exit__(self, *exc):
        os.environ.clear()
        os.environ.update(self.saved)
        return False


def run_in_process(args: list, *, env: dict, input: bytes | None = None, cwd=None) -> tuple[int, bytes, bytes]:
    """(exit code, stdout, stderr) of `amber ARGS`, run by click's test runner in this process.

    Whatever one process would not pass on to the next is set up and put back: the
    environment, the working folder, the standard streams, the in-memory backends.
    Arguments given as bytes reach amber decoded as the interpreter decodes argv."""
    from click.testing import CliRunner

    from amber.cli.main import main
    from amber.storage import registry

    try:
        runner = CliRunner(mix_stderr=False)  # click 8.1
    except TypeError:
        runner = CliRunner()  # click 8.2 and later keep stderr apart
    argv = [os.fsdecode(a) if isinstance(a, bytes) else a for a in args]
    overrides: dict = {k: None for k in os.environ if k not in env}
    overrides.update(env)
    old_cwd = os.getcwd()
    memory = dict(registry._MEMORY)
    registry._MEMORY.clear()
    try:
        with runner.isolation(input=input if input is not None else b"", env=overrides) as streams:
            out, err = streams[0], streams[1]
            try:
                if cwd is not None:
                    os.chdir(cwd)
                main(argv)
                rc = 0
            except SystemExit as e:
                if e.code is None or isinstance(e.code, int):
                    rc = e.code or 0
                else:
                    sys.stderr.write(f"{e.code}\n")
                    rc = 1
            except BaseException:  # what the interpreter would print before exiting with 1
                sys.stderr.write(traceback.format_exc())
                rc = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            return rc, out.getvalue(), err.getvalue()
    finally:
        os.chdir(old_cwd)
        registry._MEMORY.clear()
        registry._MEMORY.update(memory)


# -- trees and repositories on disk ----------------------------------------------------------------


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
        kind = (
            "dir"
            if stat.S_ISDIR(st.st_mode)
            else "file"
            if stat.S_ISREG(st.st_mode)
            else "symlink"
            if stat.S_ISLNK(st.st_mode)
            else "other"
        )
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
        f"  {k!r}: source {v[0]} restored {v[1]}" for k, v in sorted(diffs.items(), key=lambda kv: str(kv[0]))
    )


def iso_to_us(text: str) -> int:
    """An ISO 8601 UTC time as integer microseconds since the epoch."""
    assert text.endswith(("Z", "+00:00")), f"time {text!r} is not UTC"
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


def run_on_terminal(amber: Amber, *args, cols: int = 80, timeout: float = 600) -> tuple[Result, bytes]:
    """Run amber with stderr on a pseudo-terminal `cols` wide (stdout a pipe): its result and
    the bytes drawn on the terminal. Skips where no pseudo-terminal can be made."""
    import fcntl
    import struct
    import termios
    import threading

    import pytest

    try:
        master, slave = os.openpty()
    except OSError as e:
        pytest.skip(f"no pseudo-terminal here: {e}")
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                return
            if not b:
                return
            chunks.append(b)

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    try:
        p = subprocess.run(
            amber.cmd(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=amber.env(),
            timeout=timeout,
        )
    finally:
        os.close(slave)
    t.join(10)
    os.close(master)
    tty = b"".join(chunks)
    assert b"Traceback" not in tty, tty[-3000:]
    return Result(args, p.returncode, p.stdout, b""), tty
