"""`amber mount` with libfuse 3: files put into the kernel's page cache before they are read.

A tree read the way `find | xargs cat`, cp -r or tar read it is mostly answered from
content amber stored ahead (mount/ahead.py); whatever was stored must be the file's
own bytes, exactly its size, and a file that cannot be read must still fail alone.
Each test runs a real `amber mount` process and reads through it with ordinary tools."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest
from test_cli_mount import LIBFUSES, mounts, needs_fuse  # noqa: F401 - the fixture

from cli_helpers import write

pytestmark = pytest.mark.subprocess
PAGE = 4096


def _tree(src: Path) -> None:
    """Folders in folders with files of awkward sizes: empty, around a page, over the 1 MiB a
    store carries at once, and over what is ever stored ahead (read the ordinary way)."""
    rng = random.Random(18)
    sizes = [0, 1, PAGE - 1, PAGE, PAGE + 1, 70_000, (1 << 20) + 17, 3 << 20]
    for top in range(3):
        for sub in range(4):
            folder = src / f"top{top}" / f"sub{sub}"
            for i in range(40):
                write(folder / f"f{i:03d}", rng.randbytes(rng.choice(sizes[:6]) if i % 13 else rng.choice(sizes)))
            write(src / f"top{top}" / f"between{sub}.txt", f"{top}/{sub}\n".encode() * 300)
    write(src / "huge.bin", rng.randbytes(18 << 20))
    os.link(src / "top0" / "sub0" / "f005", src / "top0" / "hard-link")


def _walk_cat(root: Path) -> bytes:
    """Every file below `root`, in the order find lists them, through one cat."""
    listed = subprocess.run(["find", root, "-type", "f", "-print0"], capture_output=True, check=True).stdout
    return subprocess.run(["xargs", "-0", "cat"], input=listed, capture_output=True, check=True).stdout


@needs_fuse
@pytest.mark.parametrize("libfuse", LIBFUSES)
def test_a_tree_read_as_find_and_cat_read_it_is_its_sources_bytes(repo, tmp_path, mounts, libfuse):  # noqa: F811
    src = tmp_path / "src"
    _tree(src)
    repo.backup(src)
    where = tmp_path / "mnt"
    mounts(repo, where, env=repo.env(FUSE_LIBRARY_NAME=libfuse))
    inside = where / "snapshots" / "latest" / str(src)[1:]

    got = _walk_cat(inside)  # files after the first of each run come from what was stored ahead
    names_here = subprocess.run(["find", inside, "-type", "f"], capture_output=True, check=True).stdout.split(b"\n")
    rel = [os.path.relpath(os.fsdecode(n), inside) for n in names_here if n]
    assert b"".join((src / r).read_bytes() for r in rel) == got
    assert sorted(rel) == sorted(os.path.relpath(p, src) for p in src.rglob("*") if p.is_file())
    for r in rel:  # and again, file by file: sizes exact, nothing stored past a file's end
        data = (inside / r).read_bytes()
        assert data == (src / r).read_bytes(), r
        assert (inside / r).stat().st_size == len(data), r
    assert (inside / "top0" / "hard-link").stat().st_ino == (inside / "top0" / "sub0" / "f005").stat().st_ino
    assert subprocess.run(["cp", "-a", inside, tmp_path / "copy"], capture_output=True).returncode == 0
    assert subprocess.run(["diff", "-r", src, tmp_path / "copy"], capture_output=True).returncode == 0


@needs_fuse
@pytest.mark.parametrize("libfuse", LIBFUSES)
def test_a_damaged_pack_fails_only_its_files_among_those_read_ahead(repo, tmp_path, mounts, libfuse):  # noqa: F811
    src = tmp_path / "src"
    rng = random.Random(5)
    for i in range(200):
        write(src / "many" / f"f{i:03d}.bin", rng.randbytes(20_000))
    repo.backup(src)
    packs = sorted((p for p in (repo.repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    damaged = packs[-1]  # the data pack
    os.chmod(damaged, 0o644)
    with open(damaged, "r+b") as f:
        f.seek(damaged.stat().st_size // 2)
        f.write(b"\0" * 4096)
    where = tmp_path / "mnt"
    m = mounts(repo, where, env=repo.env(FUSE_LIBRARY_NAME=libfuse))
    inside = where / "snapshots" / "latest" / str(src)[1:] / "many"

    good, bad = [], []
    for entry in os.scandir(inside):  # the order the snapshot lists them, as a walker reads
        try:
            data = Path(entry.path).read_bytes()
        except OSError as e:
            assert e.errno == errno.EIO, entry.name
            bad.append(entry.name)
            continue
        assert data == (src / "many" / entry.name).read_bytes(), entry.name
        good.append(entry.name)
    assert bad and len(good) >= 150  # 4 KiB of damage spoils a file or two, never its neighbours
    for name in bad:  # still an error, never bytes stored ahead for another file
        with pytest.raises(OSError) as e:
            (inside / name).read_bytes()
        assert e.value.errno == errno.EIO
    assert m.proc.poll() is None
    assert m.interrupt() == 0
    assert "Traceback" not in m.proc.stderr.read().decode()


@needs_fuse
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_each_signal_that_ends_the_mount_unmounts_it_while_files_are_read_ahead(repo, tmp_path, mounts, sig):  # noqa: F811
    src = tmp_path / "src"
    rng = random.Random(9)
    for i in range(300):
        write(src / f"f{i:03d}", rng.randbytes(30_000))
    repo.backup(src)
    where = tmp_path / "mnt"
    m = mounts(repo, where)
    inside = where / "snapshots" / "latest" / str(src)[1:]
    first = sorted(os.listdir(inside))[0]
    assert (inside / first).read_bytes() == (src / first).read_bytes()  # and the ones after it are being stored
    assert m.interrupt(sig) == 0
    assert not os.path.ismount(where)
    assert "Traceback" not in m.proc.stderr.read().decode()
