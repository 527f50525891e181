"""A hostile snapshot restored by a user who is not root: nothing gets another owner, no device
node appears, setuid bits are dropped when asked, and nothing reaches a traceback."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

import pytest

from hostile import Planter, meta

from cli_helpers import Amber, environment
from sources import open_repo

NOBODY = 65534

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to become nobody"),
]


def _as_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


@pytest.fixture
def shared():
    """A folder every user can reach (pytest's own temporary folders are root's alone)."""
    base = tempfile.mkdtemp(prefix="amber-unprivileged-", dir="/tmp")
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _open_to_all(path: str, writable: bool) -> None:
    for folder, _dirs, files in os.walk(path):
        os.chmod(folder, 0o777 if writable else 0o755)
        for f in files:
            p = os.path.join(folder, f)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | (0o666 if writable else 0o444))


def test_a_user_restores_a_hostile_snapshot_without_privileges(shared):
    user = Amber(shared)
    user.create()
    with environment(user.env()):
        repo = open_repo(user.url, password=user.password)
        try:
            p = Planter(repo)
            sid = p.snapshot(
                [
                    meta("dev", "blockdev", rdev=os.makedev(7, 0)),
                    meta("pipe", "fifo"),
                    p.dir("sub", [p.file("plain", b"plain\n")]),
                    p.file("suid", b"set-uid for someone else\n", mode=0o4755, uid=4242, gid=4242),
                ]
            )
        finally:
            repo.close()
    _open_to_all(str(user.repo), writable=False)
    for d in (user.home, user.cache, user.data, user.state):
        _open_to_all(str(d), writable=True)
    targets = os.path.join(shared, "targets")
    os.mkdir(targets)
    os.chmod(targets, 0o777)

    safe = os.path.join(targets, "safe")
    user.run("restore", sid, "--target", safe, "--no-owner", "--no-special", preexec_fn=_as_nobody)
    assert sorted(os.listdir(safe)) == ["sub", "suid"]
    st = os.lstat(os.path.join(safe, "suid"))
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, 0o755)
    assert open(os.path.join(safe, "sub", "plain"), "rb").read() == b"plain\n"

    plain = os.path.join(targets, "plain")
    r = user.run("restore", sid, "--target", plain, expect=None, preexec_fn=_as_nobody)
    assert r.rc in (0, 20), r
    assert not os.path.exists(os.path.join(plain, "dev")), "a user made a device node"
    st = os.lstat(os.path.join(plain, "suid"))
    assert st.st_uid == NOBODY, "a user gave a file another owner"
    for folder, dirs, files in os.walk(plain):
        for name in dirs + files:
            assert os.lstat(os.path.join(folder, name)).st_uid == NOBODY
            assert not name.startswith(".amber-restore-")
