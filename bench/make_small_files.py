"""Build a deterministic tree of many small files, for the scale benchmark (scale.sh).

    python3 make_small_files.py DEST N [--seed S] [--per-dir 100]

N files of 1-4 KiB, about `per-dir` to a folder, folders nested 100 wide so
no folder is huge at 10M files (DEST/d0003/d0042/f0017). Contents come
from a seeded generator, so two runs with the same N and seed give the same
bytes; every file and folder gets the same fixed mtime. Contents are
mostly incompressible with a compressible tail, like a mail store: each
file is distinct, so no tool can deduplicate whole files.
"""

from __future__ import annotations

import argparse
import hashlib
import os

FIXED_MTIME = 1_704_067_200  # 2024-01-01T00:00:00Z
FANOUT = 100  # subfolders per folder above the leaves


def leaf_dirs(n_dirs: int) -> list[str]:
    """Relative paths of `n_dirs` leaf folders, spread over two levels at most."""
    if n_dirs <= FANOUT:
        return [f"d{i:04d}" for i in range(n_dirs)]
    return [f"d{i // FANOUT:04d}/d{i % FANOUT:04d}" for i in range(n_dirs)]


def content(seed: int, index: int) -> bytes:
    """1-4 KiB for file `index`: a BLAKE2 keystream, then a repeated text tail."""
    h = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=64).digest()
    size = 1024 + int.from_bytes(h[:4], "little") % 3073
    random_part = size // 2
    out = bytearray()
    block = h
    while len(out) < random_part:
        block = hashlib.blake2b(block, digest_size=64).digest()
        out += block
    tail = (b"line %d of a small file\n" % index) * (size // 16 + 1)
    return bytes(out[:random_part]) + tail[: size - random_part]


def build(dest: str, n: int, seed: int, per_dir: int) -> None:
    dirs = leaf_dirs(max(1, -(-n // per_dir)))
    made = set()
    for i in range(n):
        rel = dirs[i // per_dir]
        folder = os.path.join(dest, rel)
        if rel not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(rel)
        path = os.path.join(folder, f"f{i % per_dir:04d}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, content(seed, i))
        finally:
            os.close(fd)
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    for root, _dirs, _files in os.walk(dest, topdown=False):
        os.utime(root, (FIXED_MTIME, FIXED_MTIME))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dest")
    ap.add_argument("n", type=lambda s: int(float(s.lower().replace("k", "e3").replace("m", "e6"))))
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--per-dir", type=int, default=100)
    args = ap.parse_args()
    build(args.dest, args.n, args.seed, args.per_dir)


if __name__ == "__main__":
    main()
