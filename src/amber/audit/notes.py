"""The checkpoints a full verify compares every stored one with, signed ahead on a worker process.

A full verify re-makes the note this log's key signs for each stored checkpoint's size and
root and compares the bytes (tiledverify.py): one Ed25519 signature per event, about a third
of its time, and signing holds the interpreter. With many checkpoints the signatures are
made by a spawned worker (repo/processes.py), on another core, while this process reads and
compares the log's blocks; where processes cannot be started, and for a short log (a worker
takes longer to start than a few thousand signatures), they are made here when asked for.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ..repo.processes import PipePool, WorkerFailed
from . import checkpoint as cpfmt

AHEAD_AFTER = 20_000  # checkpoints: fewer are signed here sooner than a worker starts
BATCH = 2_048  # bodies per message to the worker

_key: Ed25519PrivateKey | None = None  # a worker's signing key


class Notes(Protocol):
    """Notes in order, and `close` for when no more are wanted."""

    def __iter__(self) -> Iterator[bytes]: ...

    def __next__(self) -> bytes: ...

    def close(self) -> None: ...


def ahead(
    signer: cpfmt.Signer, key: Ed25519PrivateKey, wanted: list[cpfmt.Checkpoint], after: int = AHEAD_AFTER
) -> Notes:
    """The note `signer` (whose key is `key`) makes for each of `wanted`, in order: an iterator
    to `close` when done. From `after` checkpoints on, their signatures are started at once on
    a worker process, and the iterator yields them as they come."""
    if len(wanted) >= after and (os.cpu_count() or 1) > 1:
        try:
            pool = PipePool(1, _init, (key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),), _sign)
        except (OSError, ValueError):
            pass  # no processes here (a sandbox, a frozen binary)
        else:
            return Ahead(pool, signer, wanted)
    return (signer.sign(cp) for cp in wanted)


class Ahead:
    """Notes whose signatures a worker makes: a thread hands it every batch at once (a batch
    waits in the pipe until the worker reads it), so the caller goes on with its own work."""

    def __init__(self, pool: PipePool, signer: cpfmt.Signer, wanted: list[cpfmt.Checkpoint]) -> None:
        self._pool, self._signer, self._wanted = pool, signer, wanted
        bodies = [cp.body() for cp in wanted]
        self._batches = [bodies[k : k + BATCH] for k in range(0, len(bodies), BATCH)]
        self._futures: list[Future] = []
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._feed, name="amber-notes", daemon=True)
        self._feeder.start()
        self._notes = self._collect()

    def __iter__(self) -> Ahead:
        return self

    def __next__(self) -> bytes:
        return next(self._notes)

    def close(self) -> None:
        """Stop handing batches over and end the worker (once it has answered those it holds)."""
        self._stop.set()
        self._feeder.join()
        self._pool.shutdown()

    def _feed(self) -> None:
        for batch in self._batches:
            if self._stop.is_set():
                return
            try:
                self._futures.append(self._pool.submit(batch))
            except WorkerFailed:
                return

    def _collect(self) -> Iterator[bytes]:
        for k, batch in enumerate(self._batches):
            while len(self._futures) <= k and self._feeder.is_alive():
                self._feeder.join(0.01)
            try:
                sigs = self._futures[k].result() if k < len(self._futures) else None
            except WorkerFailed:
                sigs = None  # signed here instead
            for i, body in enumerate(batch):
                cp = self._wanted[k * BATCH + i]
                yield self._signer.sign(cp) if sigs is None else self._signer.note(body, sigs[i])
        self.close()  # every note made: the worker is done


def _init(private: bytes) -> None:
    global _key
    _key = Ed25519PrivateKey.from_private_bytes(private)


def _sign(bodies: list[bytes]) -> list[bytes]:
    assert _key is not None
    return [_key.sign(b) for b in bodies]
