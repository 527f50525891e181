"""Shared helpers of the audit-log and evidence tests (library level, real local storage)."""

from __future__ import annotations

import os
import random
import shutil
import stat
import zipfile
from pathlib import Path

from sources import KDF_N, PASSWORD, PAST_NS, init_repo, open_repo, rand, write  # noqa: F401 - re-exported


def backup(repo, *paths, **kw):
    """Back up and return the new Snapshot."""
    res = repo.backup([os.fspath(p) for p in paths], **kw)
    return repo.find_snapshot(res.snapshot_id)


def events(repo) -> list[dict]:
    return [ev for ev, _raw in repo.audit.entries()]


def log_files(repo_path) -> list[Path]:
    """Every stored object under log/ of a local repository (amber's own dot files excluded)."""
    root = Path(repo_path, "log")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def key_of(repo_path, path) -> str:
    return Path(path).relative_to(repo_path).as_posix()


def rewrite_file(path, data: bytes) -> None:
    """Replace a stored (read-only) object's bytes in place, as an attacker with the disk would."""
    path = os.fspath(path)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.chmod(path, mode | stat.S_IWUSR)
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()
    os.chmod(path, mode)


def flip(data: bytes, pos: int, mask: int = 0x01) -> bytes:
    return data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1 :]


def positions(n: int, seed, extra: int = 3, skip=()) -> list[int]:
    """First, middle and last byte plus a few seeded random ones, minus `skip`."""
    pick = {0, n // 2, n - 1} | set(random.Random(seed).sample(range(n), min(extra, n)))
    return sorted(p for p in pick if 0 <= p < n and p not in skip)


def copy_repo(src, dst) -> None:
    shutil.copytree(src, dst, symlinks=True)


def replace_repo(repo_path, old_copy) -> None:
    """Put an old copy of the repository back in place of the current one."""
    _make_writable(repo_path)
    shutil.rmtree(repo_path)
    shutil.copytree(old_copy, repo_path, symlinks=True)


def _make_writable(root) -> None:
    for folder, dirs, _files in os.walk(root):
        for d in dirs:
            p = os.path.join(folder, d)
            os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) | stat.S_IRWXU)


def rezip(src, dst, *, change: dict | None = None, remove=(), claim_size: dict | None = None) -> None:
    """Write the zip `src` again as `dst` with members changed (name -> function of the bytes),
    removed, or with a central directory that claims another uncompressed size."""
    change = change or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in remove:
                continue
            data = zin.read(info)
            if info.filename in change:
                data = change[info.filename](data)
            zout.writestr(info.filename, data)
        for name, size in (claim_size or {}).items():
            zout.getinfo(name).file_size = size  # written to the central directory on close


def zip_members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}
