"""Keep freed buffers in the process instead of handing them back to the kernel.

Backup and restore allocate and free buffers of up to a pack (16 MiB) over and
over. glibc serves those with mmap and returns them on free, so each new
buffer costs fresh page faults; on virtual machines with free-page reporting
that is several microseconds per 4 KiB page. Raising the mmap and trim
thresholds makes glibc reuse the same memory. Peak RSS still follows the
pipeline bounds, not the size of the backup — provided few arenas keep those
buffers: by default glibc gives threads up to eight arenas per core, each
keeping its own high-water mark of freed buffers (on the bench corpus a
backup's peak RSS was 282 MB with them and 202 MB with two).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2  # malloc arenas shared by all threads (glibc's default: eight per core)


def keep_freed_memory() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc: nothing to tune
    ok = mallopt(M_MMAP_THRESHOLD, 64 << 20) == 1
    ok = mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1 and ok
    ok = mallopt(M_ARENA_MAX, ARENAS) == 1 and ok
    return ok


@contextlib.contextmanager
def throughput_mode(switch_interval: float | None = None):
    """For bulk work on worker threads: no cyclic GC, and a short GIL switch interval.

    The engine allocates millions of short-lived, acyclic dicts and tuples, so
    the cyclic collector only costs time. Where worker threads make many short
    system calls (restore), a shorter GIL switch interval lets the thread that
    plans get the GIL back quickly instead of queueing behind them; where they
    mostly run native code that releases the GIL (backup), the default is best.
    """
    was_enabled = gc.isenabled()
    interval = sys.getswitchinterval()
    gc.disable()
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        if was_enabled:
            gc.enable()
