"""A snapshot's protection, derived from its creation retention and its events (pure).

Rules (as S3 Object Lock): compliance retention only grows and never changes
mode; governance retention grows freely and shrinks or goes only by an event
that says it bypassed governance. A legal hold has no date: the latest hold
or release event decides.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from ..clock import from_iso, to_iso
from ..storage.base import GOVERNANCE, MODES, Retention
from ..storage.rules import fold_retention as _fold


@dataclass(frozen=True, slots=True)
class Protection:
    mode: str | None = None
    until: _dt.datetime | None = None
    hold: bool = False
    hold_reason: str | None = None

    def locked(self, now: _dt.datetime) -> bool:
        return self.until is not None and self.until > now

    def retention_json(self, now: _dt.datetime | None = None) -> dict | None:
        if self.until is None:
            return None
        out: dict[str, object] = {"mode": self.mode, "until": to_iso(self.until)}
        if now is not None:
            out["active"] = self.until > now
        return out

    def describe(self, now: _dt.datetime) -> str:
        parts = []
        if self.hold:
            parts.append("a legal hold" + (f" ({self.hold_reason})" if self.hold_reason else ""))
        if self.locked(now):
            parts.append(f"{self.mode} retention until {to_iso(self.until)}")  # type: ignore[arg-type]  # locked
        return " and ".join(parts) or "nothing"


def fold_retention(
    cur: tuple[str, _dt.datetime] | None, mode: str, until: _dt.datetime, bypass: bool
) -> tuple[str, _dt.datetime] | None:
    """The storage rule (`storage.base.fold_retention`) on (mode, until) pairs."""
    if mode not in MODES:
        return cur  # an unknown mode adds nothing
    old = Retention(*cur) if cur is not None else None
    new = _fold(old, Retention(mode, until), bypass)
    return new.mode, new.until


def _order(ev: dict) -> tuple[_dt.datetime, str]:
    try:
        t = from_iso(str(ev.get("time", "")))
    except ValueError:
        t = _dt.datetime.min.replace(tzinfo=_dt.UTC)
    return t, str(ev.get("id", ""))


# A fold in progress: (retention as (mode, until) or None, held, the hold's reason).
Fold = tuple[tuple[str, _dt.datetime] | None, bool, str | None]
EMPTY: Fold = (None, False, None)


def start(initial: dict | None) -> Fold:
    """The fold of a snapshot's own retention (`{"mode", "until"}` or None), before any event."""
    if isinstance(initial, dict):
        try:
            return fold_retention(None, initial["mode"], from_iso(initial["until"]), False), False, None
        except (KeyError, ValueError, TypeError):
            pass
    return EMPTY


def step(cur: Fold, ev: dict) -> Fold:
    """One event folded in: the rules of the module docstring (a malformed event adds nothing)."""
    ret, hold, reason = cur
    kind = ev.get("type")
    try:
        if kind == "lock":
            ret = fold_retention(ret, ev["mode"], from_iso(ev["until"]), bool(ev.get("bypass_governance")))
        elif kind == "unlock" and ev.get("bypass_governance") and ret and ret[0] == GOVERNANCE:
            ret = None
        elif kind == "hold":
            hold, reason = True, ev.get("reason")
        elif kind == "release":
            hold, reason = False, None
    except (KeyError, ValueError, TypeError):
        return cur
    return ret, hold, reason


def result(f: Fold) -> Protection:
    ret, hold, reason = f
    if ret is None:
        return Protection(hold=hold, hold_reason=reason)
    return Protection(ret[0], ret[1], hold, reason)


def derive(initial: dict | None, events: list[dict]) -> Protection:
    """Fold `initial` (the snapshot's own retention) and its events, oldest first."""
    f = start(initial)
    for ev in sorted(events, key=_order):
        f = step(f, ev)
    return result(f)
