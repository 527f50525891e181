#!/usr/bin/env python3
"""Set amber up in ./.venv and run it, or run its tests. Needs only Python 3.11+.

python3 quickstart.py          install, then back up, list, restore and check a sample
                               tree on the default local repository (no prompt)
python3 quickstart.py test     install the test dependencies (as root also faketime and Ceph
                               RGW, with apt-get), run the linters (ruff, import layering,
                               mypy) and the whole suite
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv")
BIN = os.path.join(VENV, "bin")


def run(*cmd: str, env=None) -> None:
    print("$", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, env=env)
    if rc != 0:
        sys.exit(rc)


def install(extra: str = "") -> None:
    if sys.version_info < (3, 11):
        sys.exit("amber needs Python 3.11 or newer")
    if not os.path.exists(os.path.join(BIN, "python")):
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    fuse_library()
    target = f"{HERE}[{extra}]" if extra else HERE
    run(os.path.join(BIN, "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", target)
    # an editable install leaves amber's own modules uncompiled, and where PYTHONDONTWRITEBYTECODE
    # is set every command would compile them again (about 0.3 s): compile them once, as a wheel does
    run(os.path.join(BIN, "python"), "-m", "compileall", "-q", os.path.join(HERE, "src"))


def demo() -> None:
    install()
    amber = os.path.join(BIN, "amber")
    env = dict(os.environ)
    if not env.get("AMBER_PASSWORD") and not env.get("AMBER_PASSWORD_FILE"):
        conf = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        pw_file = os.path.join(conf, "amber", "default-password")
        if not os.path.exists(pw_file):
            os.makedirs(os.path.dirname(pw_file), exist_ok=True)
            fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24) + "\n")
            print(f"generated a password for the default repository in {pw_file}")
        env["AMBER_PASSWORD_FILE"] = pw_file
    env.pop("AMBER_REPOSITORY", None)
    data = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    if not os.path.exists(os.path.join(data, "amber", "default", "config")):
        run(amber, "init", env=env)
    sample = [os.path.join(HERE, "src"), os.path.join(HERE, "docs")]
    sample = [p for p in sample if os.path.exists(p)]
    run(amber, "backup", "--tag", "quickstart", "--exclude", "__pycache__", *sample, env=env)
    run(amber, "snapshots", env=env)
    with tempfile.TemporaryDirectory(prefix="amber-restore-") as target:
        run(amber, "restore", "latest", "--target", target, "--verify", env=env)
    run(amber, "check", "--read-data", env=env)
    print(
        f"\nall good. To use this repository yourself:\n"
        f"  export AMBER_PASSWORD_FILE={env.get('AMBER_PASSWORD_FILE', '<your password file>')}\n"
        f"  {amber} backup ~/Documents && {amber} snapshots"
    )


# command -> Debian package the tests run (chromium: the report's page, driven by Playwright;
# setfacl and chattr: ACLs and inode flags backed up and restored; fusermount3: amber mount)
SYSTEM_TOOLS = {
    "faketime": "faketime",
    "openssl": "openssl",
    "chromium": "chromium",
    "setfacl": "acl",
    "chattr": "e2fsprogs",
    "fusermount3": "fuse3",
}
# the Ceph RGW the S3 tests also run on (tests/cephrgw.py): about 270 MB, without recommends
CEPH_TOOLS = {"radosgw": "radosgw", "ceph-mon": "ceph-mon", "ceph-osd": "ceph-osd"}


def fuse_library() -> None:
    """`amber mount` needs libfuse: as root, with apt-get, install Debian's fuse3 where no
    libfuse is found (elsewhere `amber mount` says what is missing)."""
    import ctypes.util
    import shutil

    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    if not (ctypes.util.find_library("fuse3") or ctypes.util.find_library("fuse")):
        apt_install(["fuse3"], ["--no-install-recommends"])


def system_tools() -> None:
    """Install the system tools the tests need (as root, with apt-get); without them the tests
    that need one are skipped, saying which."""
    import shutil

    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    for tools, options in ((SYSTEM_TOOLS, []), (CEPH_TOOLS, ["--no-install-recommends"])):
        missing = sorted({pkg for cmd, pkg in tools.items() if shutil.which(cmd) is None})
        if missing:
            apt_install(missing, options)


def apt_install(packages: list[str], options: list[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.call(["apt-get", "install", "-y", "-q", *options, *packages], env=env) != 0:
        subprocess.call(["apt-get", "update", "-q"], env=env)
        subprocess.call(["apt-get", "install", "-y", "-q", *options, *packages], env=env)


def test() -> None:
    """Lint, check formatting, layering and the pure layers' types, then run the tests.
    Each step stops the run with its exit code (pytest's 5, no tests collected, included)."""
    system_tools()
    install("test")
    run(os.path.join(BIN, "ruff"), "check", "src", "tests")
    run(os.path.join(BIN, "ruff"), "format", "--check", "src", "tests")
    run(os.path.join(BIN, "lint-imports"))
    run(os.path.join(BIN, "mypy"))  # the packages listed under [tool.mypy] in pyproject.toml
    workers = "2" if (os.cpu_count() or 1) >= 2 else "0"
    run(os.path.join(BIN, "python"), "-m", "pytest", "-q", "-n", workers, "-p", "no:cacheprovider", *sys.argv[2:])


if __name__ == "__main__":
    os.chdir(HERE)
    if len(sys.argv) > 1 and sys.argv[1] == "test":
        test()
    elif len(sys.argv) > 1 and sys.argv[1] == "--install-only":
        install()
    elif len(sys.argv) > 1 and sys.argv[1] not in ("demo",):
        sys.exit(__doc__)
    else:
        demo()
