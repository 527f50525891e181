"""Writing source trees for tests: files with mtimes old enough for the files cache to trust."""
from __future__ import annotations

import os
import random

PAST_NS = 1_500_000_000_000_000_000  # 2017: older than the files cache's 2 s safety margin


def write(path, data: bytes, *, mode: int = 0o644, mtime_ns: int | None = PAST_NS) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def rand(n: int, seed) -> bytes:
    return random.Random(seed).randbytes(n)
