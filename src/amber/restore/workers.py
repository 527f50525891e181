"""Writing small files in worker processes, for restores large enough to repay them.

Restoring a file of one small blob is all per-file work: open the blob
(decrypt, decompress, check its id), create the file, write it, set its
owner, mode and times, link it into place. Threads share one interpreter
lock, so on trees of many small files a restore is bound by Python on one
core. The calling process plans and reads pack regions; a pool of spawned
processes, holding only the keys that open blobs, opens the blobs of each region
and writes the files made of exactly one blob, under the same rules as the
threads (placement.py). Files of several blobs stay on the threads.

What crosses the process boundary is plain: the region's bytes, per file its
blob's place in the region and its node; back come per file whether it failed
and (for hard links and files with flags) its device and inode, the errors,
the warnings (metadata that could not be set), and the bytes written.
"""

from __future__ import annotations

from ..errors import IntegrityError, StorageError
from ..repo.chunks import open_chunk
from ..repo.packcheck import Opening
from ..repo.processes import PipePool
from .jobs import FileJob, RestoreStats
from .placement import Placement

_state: tuple[Opening, Placement] | None = None


def start(opening: tuple, target: str, *, owner: bool, special: bool, workers: int) -> PipePool:
    """`opening`: the arguments of `packcheck.Opening.of`. Batches: (region, pack id in hex,
    items, the pack's writer key or None), see `write_region`."""
    return PipePool(workers, _init, (opening, target, owner, special), _write_batch)


def _init(opening: tuple, target: str, owner: bool, special: bool) -> None:
    global _state
    place = Placement(target, RestoreStats(), owner=owner, special=special)
    place._unnamed = place._can_link_unnamed()
    _state = (Opening.of(*opening), place)


def _write_batch(batch: tuple) -> tuple:
    return write_region(*batch)


def write_region(
    region: bytes, pack_hex: str, items: list[tuple], writer: bytes | None = None
) -> tuple[list, list[str], int, str | None, list[tuple[bytes, str]], list[str]]:
    """Write the one-blob files whose blobs lie in `region` (a pack's bytes from some offset).

    `items`: (start in region, sealed length, blob id, envelope kind, compression, raw
    length, path, node), sorted by start. Returns per item (failed, (device, inode) or
    None), the errors, the bytes written, the message of an error that must stop the
    restore (a full disk) or None (items after such an error are not written), and the
    blobs found damaged as (id, problem), for the calling process to record, and the
    warnings about metadata that could not be set. `writer`: the
    writer key the pack's blobs are sealed under (format 2), else None."""
    opening, place = _state  # type: ignore[misc]
    id_key = opening.id_key
    sealer = opening.blob_sealer(writer, f"pack {pack_hex[:16]}")
    view = memoryview(region)
    results: list = []
    last_id, data = None, None
    fatal = None
    damaged: list[tuple[bytes, str]] = []
    for start, length, bid, kind, comp, raw_length, path, node in items:
        job = FileJob(path, node, 1)
        if fatal is not None:
            job.failed = True
            results.append((True, None))
            continue
        what = f"blob {bid.hex()[:16]} in pack {pack_hex[:16]}"
        if bid != last_id:
            last_id, data = bid, None
            sealed = view[start : start + length]
            try:
                if len(sealed) != length:
                    raise IntegrityError(f"{what}: truncated pack")
                data = open_chunk(sealer, id_key, bid, kind, comp, raw_length, sealed, what)
            except IntegrityError as e:
                damaged.append((bid, str(e)))
                place._fail(job, str(e))
        if data is None and not job.failed:
            place._fail(job, f"blob {bid.hex()[:16]} is damaged")
        if data is not None:
            try:
                place.write_whole(job, data)
            except StorageError as e:
                fatal = str(e)
        results.append((job.failed, job.written))
    stats = place.stats
    errors, stats.errors = stats.errors, []
    warnings, stats.warnings = stats.warnings, []
    written, stats.bytes_written = stats.bytes_written, 0
    stats.files_done = 0
    place.remove_temporaries(last=False)  # of files that failed after their temporary was made
    return results, errors, written, fatal, damaged, warnings
