"""Damage records: a repository that cannot rewrite what it stored heals by adding.

Whatever reads a blob and finds its copy damaged — `check`, a restore, a tree
read — notes the (blob, pack) pair in the blob store; the command then
writes the pairs it found as one sealed, write-once record under `damage/`
(FORMAT.md §8.1). Every client learns the records when it loads the index:
a blob whose only copies are recorded damaged counts as absent, so the next
backup of its file stores it again in a new pack, and of several copies the
index keeps the one not recorded damaged, so readers take the good one.

Records are hostile input like every other object: one that fails to
authenticate or decode is reported (by `check`) and ignored. A record that
names a healthy copy costs one more copy of that blob, never data: nothing
is deleted or rewritten because of a record, and the copy it names stays
readable as long as the index keeps no better one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..crypto.aead import KIND_CONFIG
from ..errors import AmberError
from ..format import canonical, layout
from ..format import damage as damagefmt
from .blobindex import BlobIndex
from .records import Records, RecordType

DAMAGE: RecordType[dict] = RecordType(
    "damage record",
    KIND_CONFIG,
    canonical.sorted_json,
    lambda raw, what: damagefmt.validate(canonical.decode_object(raw, what, "a damage record"), what),
)

Pair = tuple[bytes, bytes]  # (blob id, pack id)


@dataclass
class Recorded:
    """What the damage records say: per (blob, pack) pair, who found it when and why."""

    notes: dict[Pair, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # records that could not be read

    def by_blob(self) -> dict[bytes, frozenset[bytes]]:
        out: dict[bytes, set[bytes]] = {}
        for blob, pack in self.notes:
            out.setdefault(blob, set()).add(pack)
        return {b: frozenset(p) for b, p in out.items()}


def load(records: Records) -> Recorded:
    """Every readable damage record; the others are named in `problems`."""
    out = Recorded()
    for _info, doc in records.scan(DAMAGE, layout.DAMAGE, out.problems):
        by = f"found by {doc['found_by']} at {doc['time']}"
        for pair, entry in zip(damagefmt.pairs(doc), doc["damaged"], strict=True):
            why = entry.get("problem")
            out.notes.setdefault(pair, f"{by}: {why}" if why else by)
    return out


def record(
    records: Records, found: dict[Pair, str], found_by: str, time: str, host: str, warn: Callable[[str], None]
) -> list[Pair]:
    """Write `found` as damage records (one per MAX_PAIRS pairs); returns the pairs written.
    Storage that refuses the write (a read-only token) is a warning, never the command's failure."""
    items = sorted(found.items())
    written: list[Pair] = []
    for start in range(0, len(items), damagefmt.MAX_PAIRS):
        part = items[start : start + damagefmt.MAX_PAIRS]
        doc = damagefmt.document(time, found_by, host, [(b.hex(), p.hex(), why) for (b, p), why in part])
        try:
            records.put(DAMAGE, doc, layout.damage_record)
        except AmberError as e:
            warn(f"damage found by {found_by} ({len(items) - start} blob copies) could not be recorded: {e}")
            break
        written.extend(pair for pair, _why in part)
    return written


# -- what check reports -----------------------------------------------------------------


@dataclass
class Verdict:
    """Every damaged copy known, sorted out: healed (a good copy exists elsewhere), not
    healed, or refuted (recorded, but `check --read-data` read that copy correctly)."""

    healed: list[tuple[bytes, bytes, bytes, str]] = field(default_factory=list)  # blob, pack, good copy, why
    unhealed: list[tuple[bytes, bytes, str]] = field(default_factory=list)  # blob, pack, why
    refuted: list[tuple[bytes, bytes, str]] = field(default_factory=list)

    def unhealed_packs(self) -> set[bytes]:
        return {p for _b, p, _w in self.unhealed}


def classify(
    index: BlobIndex,
    recorded: dict[Pair, str],
    found: dict[Pair, str],
    spares: dict[bytes, set[bytes]],
    read: set[bytes] | None,
) -> Verdict:
    """Sort every damaged copy, recorded or found by this check. `spares`: blob -> packs where
    `check --read-data` read a good copy the index does not point at; `read`: the packs it
    read whole (None without --read-data). A copy is healed when the blob has a copy in
    another pack that is not damaged (with --read-data: that was read and is good)."""
    verdict = Verdict()
    bad: dict[bytes, set[bytes]] = {}
    pairs = {**recorded, **found}
    for (blob, pack), why in sorted(pairs.items()):
        where = index.pack_of(blob)
        if (
            (blob, pack) not in found
            and read is not None
            and pack in read
            and (where == pack or pack in spares.get(blob, ()))
        ):
            verdict.refuted.append((blob, pack, why))
            continue
        bad.setdefault(blob, set()).add(pack)
    for blob, packs in sorted(bad.items()):
        copy = _good_copy(index.pack_of(blob), spares.get(blob, set()), packs)
        for pack in sorted(packs):
            why = pairs[(blob, pack)]
            if copy is None:
                verdict.unhealed.append((blob, pack, why))
            else:
                verdict.healed.append((blob, pack, copy, why))
    return verdict


def _good_copy(indexed: bytes | None, spares: set[bytes], bad: set[bytes]) -> bytes | None:
    if indexed is not None and indexed not in bad:
        return indexed
    return next((s for s in sorted(spares) if s not in bad), None)
