"""Worker processes for bulk work: backup's and restore's small files, check's packs, and the
checkpoint notes a full audit verify compares.

Python runs one thread at a time: per-file work on tens of thousands of small
files costs more Python than threads can spread over the cores. Both engines
hand such work in batches to a pool of spawned processes, each holding only
the keys it needs, and each ending itself when the process that started it
is gone (a killed backup or restore leaves no worker behind).

The pool is lean on purpose. `concurrent.futures.ProcessPoolExecutor` passes
every call through a manager thread, a feeder thread and pickled work items;
on batches of small files that machinery cost the calling process as much
interpreter time as the work it handed off. Here each worker has one pipe:
a batch goes down it as one `marshal` message and its result comes back as
one, read by a single receiving thread that completes the batch's Future.
Only plain values cross (str, bytes, int, bool, None, tuples, lists, dicts),
between processes this module started, so `marshal` is safe and the fastest
encoding the standard library has.
"""

from __future__ import annotations

import collections
import marshal
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection, wait

from ..errors import AmberError

WATCH_INTERVAL = 0.5  # seconds between a worker's checks that its parent is alive
_STOP = b""  # the message that ends a worker


class WorkerFailed(AmberError):
    """A worker process died (killed, out of memory), or its handler raised: the command
    stops with this message rather than a traceback."""


class PipePool:
    """`workers` spawned processes; each runs `initializer(*initargs)` once, then
    `handler(batch)` for every batch submitted, in order.

    `submit` may be called from several threads. Raises OSError or ValueError
    where processes cannot be started (a sandbox, a frozen binary): the caller
    then works on threads."""

    def __init__(self, workers: int, initializer: Callable, initargs: tuple, handler: Callable) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list = []
        self._pending: list[collections.deque[Future]] = []
        self._send_locks: list[threading.Lock] = []
        self._closed = False
        self._dead: set[int] = set()  # workers whose pipe has closed
        try:
            for _ in range(workers):
                ours, theirs = ctx.Pipe(duplex=True)
                proc = ctx.Process(
                    target=_serve,
                    args=(theirs, os.getpid(), initializer, initargs, handler),
                    name="amber-worker",
                    daemon=True,
                )
                proc.start()
                theirs.close()
                self._conns.append(ours)
                self._procs.append(proc)
                self._pending.append(collections.deque())
                self._send_locks.append(threading.Lock())
        except BaseException:
            self.shutdown()
            raise
        self._receiver = threading.Thread(target=self._receive, name="amber-worker-results", daemon=True)
        self._receiver.start()

    def submit(self, batch) -> Future:
        """Hand `batch` to the worker with the fewest batches waiting; its Future
        gets the handler's result (or WorkerFailed)."""
        if self._closed:
            raise WorkerFailed("the worker processes were shut down")
        live = [k for k in range(len(self._conns)) if k not in self._dead]
        if not live:
            raise WorkerFailed("every worker process has ended")
        i = min(live, key=lambda k: len(self._pending[k]))
        fut: Future = Future()
        data = marshal.dumps(batch)
        with self._send_locks[i]:  # a worker answers in order: its queue and its pipe agree
            self._pending[i].append(fut)
            try:
                self._conns[i].send_bytes(data)
            except OSError as e:  # the worker is gone; the receiver fails what it still owed
                try:
                    self._pending[i].remove(fut)
                except ValueError:
                    pass  # the receiver got to it first
                if not fut.done():
                    fut.set_exception(WorkerFailed(f"a worker process is gone: {e}"))
        return fut

    def _receive(self) -> None:
        """Complete each batch's Future as its result arrives (callbacks run here)."""
        live = dict(enumerate(self._conns))
        while live:
            for conn in wait(list(live.values())):
                i = self._conns.index(conn)  # type: ignore[arg-type]
                try:
                    data = conn.recv_bytes()
                except (EOFError, OSError):
                    del live[i]
                    self._dead.add(i)
                    self._fail_pending(i, "a worker process ended unexpectedly (killed, or out of memory?)")
                    continue
                fut = self._pending[i].popleft()
                ok, value = marshal.loads(data)
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(WorkerFailed(f"a worker process failed: {value}"))

    def _fail_pending(self, i: int, why: str) -> None:
        while self._pending[i]:
            fut = self._pending[i].popleft()
            if not fut.done():
                fut.set_exception(WorkerFailed(why))

    def shutdown(self) -> None:
        """Let every worker finish its batches, then end it (ended at once if it hangs)."""
        if self._closed:
            return
        self._closed = True
        for lock, conn in zip(self._send_locks, self._conns, strict=True):
            with lock:
                try:
                    conn.send_bytes(_STOP)
                except OSError:
                    pass
        receiver = getattr(self, "_receiver", None)
        if receiver is not None:
            receiver.join()
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()


def _serve(conn: Connection, parent: int, initializer: Callable, initargs: tuple, handler: Callable) -> None:
    """A worker's life: set up, then answer batches in order until told to stop."""
    die_with(parent)
    initializer(*initargs)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if data == _STOP:
            return
        try:
            reply = marshal.dumps((True, handler(marshal.loads(data))))
        except Exception as e:  # a bug or no memory: the batch fails, loudly, in the parent
            reply = marshal.dumps((False, f"{type(e).__name__}: {e}"))
        try:
            conn.send_bytes(reply)
        except OSError:  # the parent is gone (killed): end quietly, as die_with would
            return


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
