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
            out.notes.setdefault(pair, f"{_reason(why, pair[0])}; {by}" if why else by)
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
class Found:
    """What a check found wrong with packs: each pack's problems (as messages), and the spare
    copies `check --read-data` read correctly (blob -> packs). Damaged blob copies go to the
    blob store (`note_damage`), which the command then records."""

    problems: dict[bytes, list[str]] = field(default_factory=dict)
    spares: dict[bytes, set[bytes]] = field(default_factory=dict)
    unread: set[bytes] = field(default_factory=set)  # packs that could not be read: never explained

    def pack(self, pid: bytes, problem: str, *, read: bool = True) -> None:
        self.problems.setdefault(pid, []).append(problem)
        if not read:
            self.unread.add(pid)


@dataclass
class Report:
    """What `check` says about damage: errors, warnings, the packs with damage not healed, the
    `check --json` lists, and the blobs not healed (traced to their files)."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    damaged_packs: list[str] = field(default_factory=list)
    healed: list[dict] = field(default_factory=list)  # {"blob", "pack", "copy", "problem"}
    unhealed: list[dict] = field(default_factory=list)  # {"blob", "pack", "problem"}
    unhealed_blobs: set[bytes] = field(default_factory=set)


def report(
    index: BlobIndex, recorded: dict[Pair, str], found_pairs: dict[Pair, str], found: Found, read: set[bytes] | None
) -> Report:
    """A pack with damage not healed is an error with every problem found in it; healed damage
    is a warning naming the good copy. A pack's problems that no damaged blob copy explains
    (bytes changed where no blob lies) stay errors. See `classify` for the arguments."""
    verdict = classify(index, recorded, found_pairs, found.spares, read)
    out = Report()
    unhealed = verdict.unhealed_packs()
    explained = unhealed | {p for _b, p, _c, _w in verdict.healed}
    for pid, problems in found.problems.items():
        if pid in unhealed or pid not in explained or pid in found.unread:
            out.errors.extend(problems[:5] + ([f"… {len(problems) - 5} more"] if len(problems) > 5 else []))
            out.damaged_packs.append(pid.hex())
    for blob, pid, why in verdict.unhealed:
        out.unhealed.append({"blob": blob.hex(), "pack": pid.hex(), "problem": why})
        out.unhealed_blobs.add(blob)
        if pid not in found.problems:  # known from a damage record, or from a tree read
            out.errors.append(
                f"blob {blob.hex()[:16]} in pack {pid.hex()}: damaged ({_reason(why, blob)}), not healed yet: "
                "the next backup of a file using it stores it again"
            )
            if pid.hex() not in out.damaged_packs:
                out.damaged_packs.append(pid.hex())
    for blob, pid, copy, why in verdict.healed:
        out.healed.append({"blob": blob.hex(), "pack": pid.hex(), "copy": copy.hex(), "problem": why})
        out.warnings.append(
            f"blob {blob.hex()[:16]} in pack {pid.hex()}: damaged ({_reason(why, blob)}); healed: "
            f"a good copy is in pack {copy.hex()[:16]}"
        )
    for blob, pid, why in verdict.refuted:
        out.warnings.append(
            f"blob {blob.hex()[:16]} in pack {pid.hex()} is recorded damaged ({_reason(why, blob)}) but reads "
            "correctly: a backup stores another copy of it, nothing is lost"
        )
    return out


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


def _reason(why: str, blob: bytes) -> str:
    """A problem without the "blob … in pack …: " its message starts with (the line names both)."""
    head = f"blob {blob.hex()[:16]}"
    return why.split(": ", 1)[1] if why.startswith(head) and ": " in why else why
