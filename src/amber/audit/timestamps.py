"""The log's RFC 3161 timestamps, kept in the repository beside its checkpoints (AUDIT-LOG.md §14.6).

    log/timestamps/<TSA name>/<size, 12 digits>   the TimeStampResp (DER, as the TSA answered)
                                                  of the checkpoint note of that size

A time-stamping authority is a witness (`witness.py` TsaWitness, added with
`audit witness add NAME --tsa URL`); its certificate chain is pinned in its
`witness` event. After each append the new checkpoint note is timestamped and
the token kept here, put-if-absent: nothing overwrites one.

A token is checked against what the log itself says, not against the stored
checkpoint object: the note this log's key signs (deterministically, Ed25519)
for that size and the root the log has at that size (the frontier kept with
its last entry). `audit verify` checks the tokens of the sizes it verifies
(after the remembered checkpoint, and the head's); `--full` lists every object
under `log/timestamps/` — what is not a token of a TSA witness of this log is
foreign, a token of other data or under another certificate is an error.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import AlreadyExists, IntegrityError, NotFound, StorageError, UsageError
from ..format import layout
from ..storage.base import ObjectInfo, Storage
from . import tiles as t
from . import tsa
from .tiled import Head, TiledStore
from .tiledverify import Foreign, Found

PREFIX = layout.LOG_TIMESTAMPS
KEY_FORM = "log/timestamps/<TSA name>/<size, 12 digits>"


class Log(Protocol):
    """The parts of AuditLog a check of timestamps uses."""

    def note(self, size: int, root: bytes) -> bytes: ...

    def foreign(self, key: str, problem: str, size: int) -> Foreign: ...


def is_tsa(doc: dict) -> bool:
    return str(doc.get("url", "")).startswith("tsa:")


def parse_key(key: str) -> tuple[str, int] | None:
    """(TSA name, checkpoint size) of a well-formed timestamp key; None for any other name."""
    rest = key[len(PREFIX) :] if key.startswith(PREFIX) else ""
    name, slash, digits = rest.partition("/")
    if not slash or not name or layout.log_slot(digits, "") in (None, 0):
        return None
    return name, int(digits)


def chains(config: dict[str, dict]) -> tuple[dict[str, tsa.Chain], list[str]]:
    """The pinned certificate chain of each TSA witness in `config` (name -> witness details),
    and a message for each whose pinned chain cannot be read."""
    out, problems = {}, []
    for name, doc in sorted(config.items()):
        if not is_tsa(doc):
            continue
        try:
            out[name] = tsa.load_chain(str(doc.get("tsa_cert") or ""), f"TSA witness {name}: its pinned certificate")
        except UsageError as e:
            problems.append(str(e))
    return out, problems


def kept(storage: Storage, key: str) -> bytes | None:
    """The token stored under `key`; None if there is none."""
    try:
        return storage.get(key, 0, tsa.MAX_TOKEN + 1)
    except NotFound:
        return None


def keep(storage: Storage, name: str, size: int, token: bytes, note: bytes, chain: tsa.Chain) -> None:
    """Store a checked token put-if-absent; one already there must be a token of the same note
    under the same certificate (else IntegrityError naming it: nothing is overwritten)."""
    key = layout.log_timestamp(name, size)
    try:
        storage.put(key, token)
    except AlreadyExists:
        old = kept(storage, key)
        if old is None:
            raise IntegrityError(f"{key}: taken, but it cannot be read") from None
        tsa.check(old, note, chain, f"{key} (stored before)")


def since(log: Log, store: TiledStore, head: Head, lo: int, pinned: dict[str, tsa.Chain], found: Found) -> None:
    """Check the tokens of the checkpoints after size `lo` up to the head, and the head's own:
    one read per size and TSA, nothing listed."""
    first = max(1, min(lo + 1, head.size))
    for name, chain in sorted(pinned.items()):
        for size in range(first, head.size + 1):
            key = layout.log_timestamp(name, size)
            try:
                data = kept(store.storage, key)
            except StorageError as e:
                found.foreign.append(log.foreign(key, f"cannot be read: {e}", 0))
                continue
            if data is not None:
                _check(log, store, head, (name, size, key), data, chain, found)
    _missing_head(head, pinned, found)


def listed(
    log: Log, store: TiledStore, head: Head, infos: list[ObjectInfo], pinned: dict[str, tsa.Chain], found: Found
) -> None:
    """Classify and check every object listed under `log/timestamps/` (a full verification)."""
    for info in sorted(infos, key=lambda i: i.key):
        got = parse_key(info.key)
        problem = None
        if got is None:
            problem = f"not a timestamp's name ({KEY_FORM})"
        elif got[0] not in pinned:
            problem = f"a timestamp from {got[0]}, which is no TSA witness of this log"
        elif got[1] > head.size:
            problem = f"the timestamp of a checkpoint beyond the log of {head.size} entries"
            found.beyond.append(info.key)
        elif info.size > tsa.MAX_TOKEN:
            problem = f"{info.size} bytes, larger than any timestamp token"
        if problem is not None:
            found.foreign.append(log.foreign(info.key, problem, info.size))
            continue
        assert got is not None
        try:
            data = kept(store.storage, info.key)
        except StorageError as e:
            found.foreign.append(log.foreign(info.key, f"cannot be read: {e}", info.size))
            continue
        if data is not None:
            _check(log, store, head, (*got, info.key), data, pinned[got[0]], found)
    _missing_head(head, pinned, found)


def _check(
    log: Log, store: TiledStore, head: Head, where: tuple[str, int, str], data: bytes, chain: tsa.Chain, found: Found
) -> None:
    """One token against the checkpoint the log has at its size: a status in `found.timestamps`,
    an error for a token of other data or under another certificate, junk foreign."""
    name, size, key = where
    status: dict = {"tsa": name, "size": size, "object": key, "gen_time": None, "ok": False}
    try:
        root = head.root if size == head.size else t.frontier_root(store.frontier(size))
    except IntegrityError:
        status["ok"] = None  # the log's own checks name the block that cannot be read
        found.timestamps.append(status)
        return
    try:
        stamp = tsa.check(data, log.note(size, root), chain, key)
    except tsa.NotAToken as e:
        found.foreign.append(log.foreign(key, str(e).removeprefix(f"{key}: "), len(data)))
        return
    except IntegrityError as e:
        found.errors.append(f"{e} (TSA witness {name}, the checkpoint of {size} events)")
    else:
        status.update(gen_time=stamp.gen_time, ok=True)
    found.timestamps.append(status)


def _missing_head(head: Head, pinned: dict[str, tsa.Chain], found: Found) -> None:
    """A TSA that has not timestamped the head's checkpoint is a warning: it could not be
    reached when the checkpoint was made (the next change is timestamped again)."""
    have = {(s["tsa"], s["size"]) for s in found.timestamps}
    for name in sorted(pinned):
        if head.size and (name, head.size) not in have:
            found.warnings.append(
                f"the checkpoint of {head.size} events has no timestamp from TSA witness {name} "
                f"({layout.log_timestamp(name, head.size)} missing: it could not be reached then)"
            )


def for_checkpoint(
    storage: Storage, config: dict[str, dict], note: bytes, size: int
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The tokens of the checkpoint `note` of `size` from each TSA witness, each checked
    against its pinned chain, for an evidence bundle; and a warning for each missing or bad."""
    pinned, warnings = chains(config)
    out = []
    for name, chain in sorted(pinned.items()):
        key = layout.log_timestamp(name, size)
        token = kept(storage, key)
        if token is None:
            warnings.append(f"the checkpoint of {size} events has no timestamp from TSA witness {name} ({key})")
            continue
        try:
            tsa.check(token, note, chain, key)
        except IntegrityError as e:
            warnings.append(f"{e}: left out of the bundle")
            continue
        out.append((name, token))
    return out, warnings
