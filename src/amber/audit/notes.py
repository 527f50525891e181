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
from collections.abc import Generator
from concurrent.futures import Future

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ..repo.processes import PipePool, WorkerFailed
from . import checkpoint as cpfmt

AHEAD_AFTER = 20_000  # checkpoints: fewer are signed here sooner than a worker starts
BATCH = 2_048  # bodies per message to the worker

_key: Ed25519PrivateKey | None = None  # a worker's signing key


def ahead(
    signer: cpfmt.Signer, key: Ed25519PrivateKey, wanted: list[cpfmt.Checkpoint], after: int = AHEAD_AFTER
) -> Generator[bytes, None, None]:
    """The note `signer` (whose key is `key`) makes for each of `wanted`, in order. From `after`
    checkpoints on, their signatures are started at once on a worker process, and this yields
    them as they come; close it to end the worker early."""
    pool = None
    if len(wanted) >= after and (os.cpu_count() or 1) > 1:
        try:
            pool = PipePool(1, _init, (key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),), _sign)
        except (OSError, ValueError):
            pool = None  # no processes here (a sandbox, a frozen binary)
    if pool is None:
        return (signer.sign(cp) for cp in wanted)
    return _collect(pool, signer, wanted)


def _collect(pool: PipePool, signer: cpfmt.Signer, wanted: list[cpfmt.Checkpoint]) -> Generator[bytes, None, None]:
    bodies = [cp.body() for cp in wanted]
    batches = [bodies[k : k + BATCH] for k in range(0, len(bodies), BATCH)]
    futures: list[Future] = []

    def feed() -> None:  # a batch waits in the pipe until the worker reads it: this thread
        for batch in batches:  # hands them over while the caller goes on with its own work
            try:
                futures.append(pool.submit(batch))
            except WorkerFailed:
                return

    feeder = threading.Thread(target=feed, name="amber-notes", daemon=True)
    feeder.start()
    try:
        for k, batch in enumerate(batches):
            while len(futures) <= k and feeder.is_alive():
                feeder.join(0.01)
            try:
                sigs = futures[k].result() if k < len(futures) else None
            except WorkerFailed:
                sigs = None  # signed here instead
            for i, body in enumerate(batch):
                yield signer.sign(wanted[k * BATCH + i]) if sigs is None else signer.note(body, sigs[i])
    finally:
        feeder.join()
        pool.shutdown()


def _init(private: bytes) -> None:
    global _key
    _key = Ed25519PrivateKey.from_private_bytes(private)


def _sign(bodies: list[bytes]) -> list[bytes]:
    assert _key is not None
    return [_key.sign(b) for b in bodies]
