"""A process whose clock is moved, as ransomware on a backup client could move it: libfaketime by
LD_PRELOAD, no privilege needed.

libfaketime is preloaded directly rather than through the `faketime` wrapper script: the wrapper
creates a POSIX semaphore named after its own process id and gives up ("sem_open: File exists")
when one is left over from an earlier process that had the same id, which parallel test runs meet.
"""

from __future__ import annotations

import os

LIBFAKETIME = next(
    (
        p
        for p in (
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
            "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
            "/usr/lib/faketime/libfaketime.so.1",
        )
        if os.path.exists(p)
    ),
    None,
)
NO_FAKETIME = "libfaketime is not installed"


def moved_clock(env: dict, offset: str) -> dict:
    """ENV for a process whose wall clock is moved by OFFSET ('+8d', '-1h': libfaketime's relative
    format, as `faketime -f OFFSET` would set it)."""
    if LIBFAKETIME is None:
        raise RuntimeError(NO_FAKETIME)
    preload = " ".join(x for x in (LIBFAKETIME, env.get("LD_PRELOAD", "")) if x)
    return {**env, "LD_PRELOAD": preload, "FAKETIME": offset}
