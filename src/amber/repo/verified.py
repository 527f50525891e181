"""Which packs `check` reads: a subset of them (as restic), and none it read clean recently.

`check --read-data-subset` takes a slice `N/M` (the packs whose id's first
byte modulo M is N − 1, restic's buckets: M runs cover every pack exactly
once), a share `P%` of the packs or a size (`500M`, `2G`) picked at random.

`check --since DURATION` skips packs a verification record says were read
clean within DURATION (FORMAT.md §8.2). Records are hints written by
whoever holds the data key, so they are trusted for nothing but skipping a
read, and never against other evidence: a pack is read anyway when a damage
record names it, when this check found it damaged, when its size is not the
size it was verified at, or when the record is dated in the future. A record
counts only when the `check` event that wrote it names it in the audit log
(`verified_records`): one planted beside the log skips nothing, and one
planted with an event of its own shows in the log. A record that fails to
authenticate or decode, or that no check event names, is reported and ignored.
"""

from __future__ import annotations

import datetime as _dt
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..clock import from_iso
from ..crypto.aead import KIND_CONFIG
from ..errors import AmberError, UsageError
from ..format import canonical, layout
from ..format import verified as verifiedfmt
from .records import Records, RecordType

VERIFIED: RecordType[dict] = RecordType(
    "verification record",
    KIND_CONFIG,
    canonical.sorted_json,
    lambda raw, what: verifiedfmt.validate(canonical.decode_object(raw, what, "a verification record"), what),
)

MAX_BUCKETS = 256  # a slice is chosen by the first byte of the pack id
CLOCK_SKEW = _dt.timedelta(minutes=10)  # a record dated later than now + this is not believed
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)([kmgt]?)(i?b)?", re.IGNORECASE)
_SLICE = re.compile(r"([0-9]+)/([0-9]+)")
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")
_NAME = re.compile(r"[0-9a-f]{64}")  # a record's name: hex BLAKE3 of its stored bytes


@dataclass(frozen=True, slots=True)
class Subset:
    """What `--read-data-subset` asked for: a slice (n of m), a share in percent, or bytes."""

    text: str
    n: int = 0
    m: int = 0
    percent: float = 0.0
    size: int = 0

    def select(self, stored: dict[bytes, int], rng: random.Random, among: set[bytes] | None = None) -> dict[bytes, int]:
        """The packs (id -> size) this subset reads, of `stored`; only those `among` (the packs
        not verified recently) when given: a share is still counted of every stored pack, so
        a daily `--since 30d --read-data-subset 4%` reads the whole repository in 25 days."""
        if self.m:
            return {p: n for p, n in stored.items() if p[0] % self.m == self.n - 1 and (among is None or p in among)}
        order = sorted(stored if among is None else among & stored.keys())
        rng.shuffle(order)
        if self.percent:
            count = int(len(stored) * self.percent / 100)
            return {p: stored[p] for p in order[: max(count, 1 if order else 0)]}
        chosen: dict[bytes, int] = {}
        total = 0
        for p in order:
            if total + stored[p] <= self.size:
                chosen[p] = stored[p]
                total += stored[p]
        if not chosen and order:  # a size below every pack still reads one: the smallest
            p = min(order, key=lambda q: (stored[q], q))
            chosen[p] = stored[p]
        return chosen


def parse_subset(text: str) -> Subset:
    """`N/M`, `P%` or a size; UsageError (exit 2) naming what is wrong."""
    text = text.strip()
    if m := _SLICE.fullmatch(text):
        n, total = int(m.group(1)), int(m.group(2))
        if not 1 <= total <= MAX_BUCKETS or not 1 <= n <= total:
            raise UsageError(f"--read-data-subset {text}: N/M needs 1 ≤ N ≤ M ≤ {MAX_BUCKETS}")
        return Subset(text, n=n, m=total)
    if m := _PERCENT.fullmatch(text):
        percent = float(m.group(1))
        if not 0 < percent <= 100:
            raise UsageError(f"--read-data-subset {text}: a percentage is above 0 and at most 100")
        return Subset(text, percent=percent)
    if m := _SIZE.fullmatch(text):
        size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
        if size <= 0:
            raise UsageError(f"--read-data-subset {text}: a size is above 0")
        return Subset(text, size=size)
    raise UsageError(f"--read-data-subset {text!r}: use N/M (e.g. 1/5), a percentage (e.g. 10%) or a size (e.g. 500M)")


def choose(
    stored: dict[bytes, int],
    picking: tuple[Subset | None, random.Random | None],
    recent: tuple[_dt.timedelta | None, "Verified"],
    suspect: set[bytes],
    now: _dt.datetime,
) -> tuple[dict[bytes, int], int]:
    """(the packs to read, how many were skipped as verified recently): the subset's (else all;
    `picking`: subset, randomness), less those the records say were read clean within `since`
    (`recent`: since, records), except `suspect` packs (named damaged), which are always due."""
    subset, rng = picking
    since, verified = recent
    due = None
    if since is not None:
        due = {p for p, n in stored.items() if p in suspect or not verified.recent(p, n, since, now)}
    if subset is None:
        chosen = {p: n for p, n in stored.items() if due is None or p in due}
    else:
        chosen = subset.select(stored, rng or random.Random(), due)
    if due is None:
        return chosen, 0
    considered = subset.select(stored, random.Random(0)) if subset is not None and subset.m else stored
    return chosen, sum(1 for p in considered if p not in due)


# -- verification records ----------------------------------------------------------------


@dataclass
class Verified:
    """What the verification records say: per pack, the latest time it was read clean and its
    size then; and the records that could not be believed."""

    packs: dict[bytes, tuple[_dt.datetime, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def recent(self, pid: bytes, size: int, since: _dt.timedelta, now: _dt.datetime) -> bool:
        """Whether `pid`, now `size` bytes, was read clean at that size within `since` of `now`."""
        seen = self.packs.get(pid)
        return seen is not None and seen[1] == size and now - seen[0] <= since


def named_by(events: Iterable[tuple[dict, bytes]]) -> set[str]:
    """The names of the verification records the `check` events among `events` (the log's
    honoured ones) say they wrote."""
    out: set[str] = set()
    for ev, _raw in events:
        details = ev.get("details")
        if ev.get("type") != "check" or not isinstance(details, dict):
            continue
        names = details.get("verified_records")
        if isinstance(names, list):
            out.update(n for n in names if isinstance(n, str) and _NAME.fullmatch(n))
    return out


def load(records: Records, now: _dt.datetime, named: set[str] | None = None) -> Verified:
    """Every readable verification record not dated in the future and, given `named` (see
    `named_by`), named by a check event; the others in `problems`."""
    out = Verified()
    for info, doc in records.scan(VERIFIED, layout.VERIFIED, out.problems):
        if named is not None and info.key.removeprefix(layout.VERIFIED) not in named:
            out.problems.append(f"{info.key}: no check event in the audit log wrote it: ignored")
            continue
        when = from_iso(doc["time"])
        if when > now + CLOCK_SKEW:
            out.problems.append(f"{info.key}: dated {doc['time']}, in the future: ignored")
            continue
        for pid, size in verifiedfmt.packs(doc):
            seen = out.packs.get(pid)
            if seen is None or seen[0] < when:
                out.packs[pid] = (when, size)
    return out


def record(
    records: Records, packs: Iterable[tuple[bytes, int]], time: str, host: str, warn: Callable[[str], None]
) -> tuple[int, list[str]]:
    """Write `packs` (id, size), read clean, as verification records (one per MAX_PACKS packs);
    returns how many packs were recorded and the records' names, for the check event that
    makes them count. A storage that refuses the write is a warning: the only cost is
    reading those packs again next time."""
    items = sorted((p.hex(), n) for p, n in packs)
    written, names = 0, []
    for start in range(0, len(items), verifiedfmt.MAX_PACKS):
        part = items[start : start + verifiedfmt.MAX_PACKS]
        try:
            names.append(records.put(VERIFIED, verifiedfmt.document(time, host, part), layout.verified_record))
        except AmberError as e:
            warn(f"{len(items) - start} packs read clean could not be recorded as verified: {e}")
            break
        written += len(part)
    return written, names
