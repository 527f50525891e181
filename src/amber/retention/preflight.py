"""Before prune deletes anything: every object its decisions rest on reads and authenticates.

Prune deletes what no snapshot needs, so whatever it cannot read looks like
nothing: a snapshot document replaced by garbage looks like no snapshot (and
its data unused), an index file that fails looks like no index (and its
packs left over by a crash). A writer with put rights alone could plant
such objects to make the next routine prune destroy data. So prune (and
`forget --prune`, and `--dry-run`, which shows the same refusal) refuses
with an integrity error naming every snapshot document, index file, key
file, config problem, log object, lock record, prune record and damage record that
fails, and deletes nothing until they are explained.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from ..audit.log import AuditLog
from ..errors import IntegrityError
from ..format import layout
from ..repo import damage
from ..repo import records as rec
from ..repo.events import EventStore
from ..repo.snapshots import SnapshotStore


class Preflighted(Protocol):
    snapshot_store: SnapshotStore
    event_store: EventStore
    audit: AuditLog
    index_errors: list[str]

    def load_index(self, force: bool = False) -> None: ...


def refusals(repo: Preflighted) -> list[str]:
    """Every object that fails to read or authenticate, each named, read afresh."""
    out = []
    _snaps, bad = repo.snapshot_store.scan()
    out += [f"snapshot document {e}" for e in bad]
    repo.load_index(force=True)
    out += [f"index file {e}" for e in repo.index_errors]
    out += [f"key file problem: {e}" for e in getattr(repo, "key_problems", [])]
    out += [f"config problem: {e}" for e in getattr(repo, "config_problems", [])]
    out += [f"audit log: {e}" for e in _log_problems(repo.audit)]
    out += [f"lock record {e}" for e in _lock_record_problems(repo.event_store.records)]
    out += [f"prune record {e}" for e in _prune_record_problems(repo.event_store.records)]
    out += [f"damage record {e}" for e in _damage_record_problems(repo.event_store.records)]
    return out


def _damage_record_problems(records: rec.Records) -> list[str]:
    """Damage records that fail: the index keeps the copy no record calls damaged, so without
    a record it may keep a damaged copy and take the pack of the good one for unused."""
    errors: list[str] = []
    for _info, _doc in records.scan(_SEALED_DAMAGE, layout.DAMAGE, errors):
        pass
    return errors


def _prune_record_problems(records: rec.Records) -> list[str]:
    """Plans, tombstones and run markers that fail: a tombstone prune cannot read would leave a
    deleted pack's index entries standing, a plan it cannot read would never finish."""
    errors: list[str] = []
    for prefix in (layout.PRUNE, layout.RUNNING):
        for _info, _doc in records.scan(_SEALED_PRUNE, prefix, errors):
            pass
    return errors


# a lock record that authenticates but has a malformed field was sealed by a password holder:
# readers leave it out and `check` reports it; only what fails to read or authenticate refuses
_SEALED_EVENT = dataclasses.replace(rec.EVENT, decode=lambda raw, what: {})
_SEALED_PRUNE = dataclasses.replace(rec.PRUNE, decode=lambda raw, what: {})  # likewise: prune skips those
_SEALED_DAMAGE = dataclasses.replace(damage.DAMAGE, decode=lambda raw, what: {})


def _lock_record_problems(records: rec.Records) -> list[str]:
    errors: list[str] = []
    for _info, _ in records.scan(_SEALED_EVENT, layout.LOCKS, errors):
        pass
    return errors


def _log_problems(log: AuditLog) -> list[str]:
    """Objects in the log's namespace that are not explained: junk, gaps, damaged entries."""
    unexplained = getattr(log, "unexplained", None)
    if unexplained is not None:
        return list(unexplained())
    return list(log.verify(remember=False, full=True).errors)


def require_sound(repo: Preflighted, what: str) -> None:
    """IntegrityError (exit 20) naming every problem of `refusals`, before anything is deleted."""
    problems = refusals(repo)
    if problems:
        raise IntegrityError(
            f"{what} refused, nothing was deleted: {len(problems)} object(s) fail to read or "
            "authenticate, and deleting around them could destroy what they protect:\n  " + "\n  ".join(problems),
            remedy="check",
        )
