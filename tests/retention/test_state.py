"""state.derive: a snapshot's protection folded from its own retention and its events (pure)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from amber.clock import to_iso
from amber.retention.state import Protection, derive

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
G, C = "governance", "compliance"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def initial(mode, until_s) -> dict:
    return {"mode": mode, "until": to_iso(at(until_s))}


def lock(t_s, mode, until_s, bypass=False, eid=None) -> dict:
    ev = {
        "type": "lock",
        "time": to_iso(at(t_s)),
        "mode": mode,
        "until": to_iso(at(until_s)),
        "id": eid or f"lock-{t_s}-{mode}-{until_s}",
    }
    if bypass:
        ev["bypass_governance"] = True
    return ev


def hold(t_s, reason="case 42", eid=None) -> dict:
    return {"type": "hold", "time": to_iso(at(t_s)), "reason": reason, "id": eid or f"hold-{t_s}"}


def release(t_s, eid=None) -> dict:
    return {"type": "release", "time": to_iso(at(t_s)), "id": eid or f"release-{t_s}"}


def unlock(t_s, bypass=True) -> dict:
    ev = {"type": "unlock", "time": to_iso(at(t_s)), "id": f"unlock-{t_s}"}
    if bypass:
        ev["bypass_governance"] = True
    return ev


# -- basics ----------------------------------------------------------------------------


def test_nothing_is_no_protection():
    p = derive(None, [])
    assert p == Protection()
    assert not p.locked(T0) and not p.hold and p.retention_json() is None


def test_the_snapshots_own_retention_counts():
    p = derive(initial(C, 100), [])
    assert (p.mode, p.until) == (C, at(100))
    assert p.locked(at(99)) and not p.locked(at(100))


def test_a_malformed_initial_retention_or_event_adds_nothing():
    assert derive({"mode": "compliance"}, []) == Protection()
    assert derive({"mode": "forever", "until": to_iso(at(100))}, []) == Protection()
    p = derive(
        initial(G, 100),
        [
            {"type": "lock", "time": to_iso(at(1)), "mode": C, "id": "x"},
            {"type": "lock", "time": to_iso(at(2)), "mode": "bogus", "until": to_iso(at(900)), "id": "y"},
        ],
    )
    assert (p.mode, p.until) == (G, at(100))


# -- compliance only grows ---------------------------------------------------------------


def test_compliance_is_never_shortened():
    p = derive(initial(C, 1000), [lock(1, C, 500)])
    assert (p.mode, p.until) == (C, at(1000))


def test_compliance_is_never_shortened_even_by_an_event_claiming_bypass():
    p = derive(initial(C, 1000), [lock(1, C, 500, bypass=True), lock(2, G, 10, bypass=True), unlock(3)])
    assert (p.mode, p.until) == (C, at(1000))


def test_compliance_is_never_downgraded_to_governance():
    p = derive(initial(C, 1000), [lock(1, G, 5000)])
    assert p.mode == C
    assert p.until == at(5000)  # the extension counts, the mode stays


def test_compliance_is_extended():
    p = derive(initial(C, 1000), [lock(1, C, 2000), lock(2, C, 1500)])
    assert (p.mode, p.until) == (C, at(2000))


# -- governance shortened only with bypass --------------------------------------------


def test_governance_is_extended_freely():
    p = derive(initial(G, 1000), [lock(1, G, 3000)])
    assert (p.mode, p.until) == (G, at(3000))


def test_governance_is_not_shortened_without_bypass():
    p = derive(initial(G, 1000), [lock(1, G, 10)])
    assert (p.mode, p.until) == (G, at(1000))


def test_governance_is_shortened_with_bypass():
    p = derive(initial(G, 1000), [lock(1, G, 10, bypass=True)])
    assert (p.mode, p.until) == (G, at(10))


def test_governance_is_lifted_only_by_an_unlock_with_bypass():
    assert derive(initial(G, 1000), [unlock(1, bypass=False)]).until == at(1000)
    p = derive(initial(G, 1000), [unlock(1)])
    assert p.until is None and p.mode is None


def test_governance_upgraded_to_compliance():
    p = derive(initial(G, 1000), [lock(1, C, 2000)])
    assert (p.mode, p.until) == (C, at(2000))


def test_governance_is_not_shortened_by_an_upgrade_to_a_shorter_compliance_lock():
    """Changing the mode is no bypass: a governance lock until 1000 followed by a compliance
    lock until 500 (no bypass) must still protect until 1000."""
    p = derive(initial(G, 1000), [lock(1, C, 500)])
    assert p.until is not None and p.until >= at(1000), p


# -- hold / release order ---------------------------------------------------------------


def test_hold_then_release():
    assert derive(None, [hold(1), release(2)]).hold is False


def test_release_then_hold():
    p = derive(None, [release(1), hold(2, reason="audit 2030")])
    assert p.hold is True and p.hold_reason == "audit 2030"


def test_events_are_ordered_by_time_not_by_list_order():
    assert derive(None, [release(2), hold(1)]).hold is False
    assert derive(None, [hold(2), release(1)]).hold is True


def test_hold_is_independent_of_retention():
    p = derive(initial(G, 10), [hold(1)])
    assert p.hold and not p.locked(at(20))
    assert "legal hold" in p.describe(at(20))


def test_hold_and_release_within_one_second_keep_their_order():
    """A hold at 12:00:00 and a release half a second later: the release is the latest."""
    h = hold(0)  # time "2030-01-01T00:00:00Z"
    r = release(0.5)  # time "2030-01-01T00:00:00.500000Z": sorts before h as text
    assert derive(None, [h, r]).hold is False


def test_locks_within_one_second_keep_their_order():
    """A bypassing shortening at .5 s after a whole-second extension must be applied last."""
    evs = [lock(1, G, 5000), lock(1.5, G, 100, bypass=True)]
    p = derive(initial(G, 1000), evs)
    assert p.until == at(100)


# -- properties ------------------------------------------------------------------------

_event = st.tuples(
    st.sampled_from(["lock", "lock", "lock", "unlock", "hold", "release"]),
    st.sampled_from([G, C]),
    st.integers(0, 5000),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    start=st.one_of(st.none(), st.tuples(st.sampled_from([G, C]), st.integers(0, 5000))),
    evs=st.lists(_event, max_size=12),
)
def test_derive_follows_object_lock_rules(start, evs):
    """After every event: compliance keeps its mode and never ends earlier; governance ends
    earlier only through an event that says it bypassed governance; the last hold/release wins."""
    init = initial(*start) if start else None
    events = []
    for i, (kind, mode, until, bypass) in enumerate(evs):
        t = 10 * (i + 1)  # whole seconds, strictly increasing
        if kind == "lock":
            events.append(lock(t, mode, until, bypass, eid=f"e{i:03d}"))
        elif kind == "unlock":
            events.append(dict(unlock(t, bypass), id=f"e{i:03d}"))
        elif kind == "hold":
            events.append(hold(t, eid=f"e{i:03d}"))
        else:
            events.append(release(t, eid=f"e{i:03d}"))
    prev = derive(init, [])
    held = False
    for k in range(1, len(events) + 1):
        cur = derive(init, events[:k])
        ev = events[k - 1]
        if ev["type"] in ("hold", "release"):
            held = ev["type"] == "hold"
        assert cur.hold is held
        if prev.mode == C:
            assert cur.mode == C, (prev, ev, cur)
            assert cur.until >= prev.until, (prev, ev, cur)
        elif prev.mode == G:
            shorter = cur.until is None or cur.until < prev.until
            if shorter:
                assert ev.get("bypass_governance"), (prev, ev, cur)
        prev = cur
