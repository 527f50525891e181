"""Worker processes for bulk per-file work (backup's small files, restore's small files).

Python runs one thread at a time: per-file work on tens of thousands of small
files costs more Python than threads can spread over the cores. Both engines
hand such work in batches to a pool of spawned processes, each holding only
the keys it needs, and each ending itself when the process that started it
is gone (a killed backup or restore leaves no worker behind).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

WATCH_INTERVAL = 0.5  # seconds between a worker's checks that its parent is alive


def start_pool(workers: int, initializer: Callable, initargs: tuple) -> ProcessPoolExecutor:
    """`workers` spawned processes, each running `initializer(*initargs)` after
    arranging to die with this process. OSError or ValueError where processes cannot
    be started (a sandbox, a frozen binary): the caller then works on threads."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init,
        initargs=(os.getpid(), initializer, initargs),
    )


def _init(parent: int, initializer: Callable, initargs: tuple) -> None:
    die_with(parent)
    initializer(*initargs)


def die_with(parent: int) -> None:
    """A worker must not outlive the command that started it: end it when its parent is gone.

    A watching thread rather than the kernel's parent-death signal (PR_SET_PDEATHSIG),
    which fires when the *thread* that started the worker ends: pools are started
    from short-lived threads too (a restore's)."""
    if os.getppid() != parent:  # the parent died before the worker started
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_INTERVAL)
        os._exit(1)

    threading.Thread(target=watch, name="amber-parent-watch", daemon=True).start()
