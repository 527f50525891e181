"""Comparisons of what a restore produced (source trees and repositories: tests/sources.py)."""

from __future__ import annotations

import hashlib
import os
import stat

from amber.repository import Repository

from sources import KDF_N, PASSWORD, PAST_NS, full_tree, init_repo, open_repo, set_past_mtimes, small_tree, write  # noqa: F401 - re-exported


def describe(root) -> dict:
    """rel path -> what a faithful restore must reproduce."""
    root = os.fspath(root)
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(folder, name)
            st = os.lstat(p)
            e = {"mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns, "uid": st.st_uid, "gid": st.st_gid}
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
    out["."] = {
        "type": "dir",
        "mode": stat.S_IMODE(st.st_mode),
        "mtime_ns": st.st_mtime_ns,
        "uid": st.st_uid,
        "gid": st.st_gid,
    }
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


def with_storage(repo: Repository, storage, **config) -> Repository:
    """The same repository reached through another storage (a wrapper), as a new client."""
    return Repository(storage, repo.keys, dict(repo.config, **config), repo.key_id, repo.clock)


def files_in(target) -> set[str]:
    out = set()
    for folder, dirs, files in os.walk(os.fspath(target)):
        out.update(os.path.relpath(os.path.join(folder, n), target) for n in dirs + files)
    return out
