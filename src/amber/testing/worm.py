"""The WORM half of the storage contract: retention and legal holds, as S3 Object Lock.

Mixed into `StorageContract`; it uses that class's fixtures (`storage`, `clock`)
and its `advance` hook, and runs only where the backend's capabilities say it
has object lock or legal holds.
"""

from __future__ import annotations

import datetime as _dt

import pytest

from ..errors import AlreadyExists, Locked, NotFound, Unsupported
from ..storage.base import COMPLIANCE, GOVERNANCE, Retention
from .races import race_puts

DAY = _dt.timedelta(days=1)


class WormContract:
    # -- object lock -------------------------------------------------------------------

    def _need(self, storage, capability: str) -> None:
        if not getattr(storage.capabilities, capability):
            pytest.skip(f"{type(storage).__name__} has no {capability.replace('_', ' ')}")

    def test_put_with_retention_needs_object_lock(self, storage):
        if storage.capabilities.object_lock:
            pytest.skip(f"{type(storage).__name__} has object lock")
        r = Retention(COMPLIANCE, storage.clock.now() + DAY)
        with pytest.raises(Unsupported):
            storage.put("locked", b"x", retention=r)
        assert not storage.exists("locked")
        storage.put("plain", b"x")
        with pytest.raises(Unsupported):
            storage.set_retention("plain", r)

    def test_legal_hold_needs_support(self, storage):
        if storage.capabilities.legal_hold:
            pytest.skip(f"{type(storage).__name__} has legal holds")
        storage.put("plain", b"x")
        with pytest.raises(Unsupported):
            storage.set_legal_hold("plain", True)
        storage.delete("plain")

    @pytest.mark.parametrize("mode", [GOVERNANCE, COMPLIANCE])
    def test_retention_blocks_delete_until_it_expires(self, storage, clock, mode):
        self._need(storage, "object_lock")
        r = Retention(mode, clock.now() + DAY)
        storage.put("snapshots/locked", b"data", retention=r)
        info = storage.stat("snapshots/locked")
        assert info.retention == r
        assert info.legal_hold is False
        with pytest.raises(Locked):
            storage.delete("snapshots/locked")
        self.advance(clock, DAY.total_seconds() - 1)
        with pytest.raises(Locked):
            storage.delete("snapshots/locked")
        assert storage.get("snapshots/locked") == b"data"
        self.advance(clock, 2)
        storage.delete("snapshots/locked")
        assert not storage.exists("snapshots/locked")

    def test_a_refused_put_leaves_the_retention_alone(self, storage, clock):
        self._need(storage, "object_lock")
        r = Retention(GOVERNANCE, clock.now() + DAY)
        storage.put("k", b"first", retention=r)
        storage.put("plain", b"first")
        for key in ("k", "plain"):
            with pytest.raises(AlreadyExists):
                storage.put(key, b"second", retention=Retention(COMPLIANCE, clock.now() + 100 * DAY))
        assert storage.stat("k").retention == r
        assert storage.stat("plain").retention is None
        storage.delete("plain")
        storage.delete("k", bypass_governance=True)

    def test_put_race_with_retention_keeps_the_winners_retention(self, storage, clock):
        """The retention given with a put is part of the put: only the winner's applies."""
        self._need(storage, "object_lock")
        keys = [f"race/locked-{i}" for i in range(5)]
        now = clock.now()
        won = race_puts(
            storage,
            self.race_threads,
            keys,
            lambda i: f"client {i}".encode() * 4096,
            lambda i: Retention(GOVERNANCE, now + (i + 1) * DAY),
        )
        for key in keys:
            (w,) = won[key]
            assert storage.get(key) == f"client {w}".encode() * 4096
            assert storage.stat(key).retention == Retention(GOVERNANCE, now + (w + 1) * DAY), key

    def test_protection_is_seen_by_another_client(self, storage, clock):
        self._need(storage, "object_lock")
        factory = self.client_factory(storage)
        if factory is None:
            pytest.skip(f"{type(storage).__name__}: no second client of the same store")
        r = Retention(COMPLIANCE, clock.now() + DAY)
        storage.put("k", b"x", retention=r)
        other = factory()
        other.clock = clock
        assert other.stat("k").retention == r
        with pytest.raises(Locked):
            other.delete("k", bypass_governance=True)
        if storage.capabilities.legal_hold:
            storage.set_legal_hold("k", True)
            assert other.stat("k").legal_hold is True
            self.advance(clock, 2 * DAY.total_seconds())
            with pytest.raises(Locked):
                other.delete("k")
            other.set_legal_hold("k", False)
            assert storage.stat("k").legal_hold is False
        self.advance(clock, 2 * DAY.total_seconds())
        other.delete("k")
        assert not storage.exists("k")

    def test_retention_can_be_set_after_put(self, storage, clock):
        self._need(storage, "object_lock")
        storage.put("k", b"x")
        r = Retention(COMPLIANCE, clock.now() + DAY)
        storage.set_retention("k", r)
        assert storage.stat("k").retention == r
        with pytest.raises(Locked):
            storage.delete("k", bypass_governance=True)

    def test_retention_on_a_missing_key(self, storage, clock):
        self._need(storage, "object_lock")
        with pytest.raises(NotFound):
            storage.set_retention("missing", Retention(GOVERNANCE, clock.now() + DAY))

    def test_compliance_can_be_extended(self, storage, clock):
        self._need(storage, "object_lock")
        storage.put("k", b"x", retention=Retention(COMPLIANCE, clock.now() + DAY))
        longer = Retention(COMPLIANCE, clock.now() + 10 * DAY)
        storage.set_retention("k", longer)
        assert storage.stat("k").retention == longer
        self.advance(clock, 2 * DAY.total_seconds())
        with pytest.raises(Locked):
            storage.delete("k")
        self.advance(clock, 9 * DAY.total_seconds())
        storage.delete("k")

    def test_compliance_cannot_be_shortened(self, storage, clock):
        self._need(storage, "object_lock")
        r = Retention(COMPLIANCE, clock.now() + 10 * DAY)
        storage.put("k", b"x", retention=r)
        for bypass in (False, True):
            with pytest.raises(Locked):
                storage.set_retention("k", Retention(COMPLIANCE, clock.now() + DAY), bypass_governance=bypass)
            with pytest.raises(Locked):
                storage.set_retention("k", Retention(COMPLIANCE, clock.now()), bypass_governance=bypass)
        assert storage.stat("k").retention == r

    def test_compliance_cannot_be_downgraded_to_governance(self, storage, clock):
        self._need(storage, "object_lock")
        r = Retention(COMPLIANCE, clock.now() + DAY)
        storage.put("k", b"x", retention=r)
        for until in (clock.now() + DAY, clock.now() + 30 * DAY):
            for bypass in (False, True):
                with pytest.raises(Locked):
                    storage.set_retention("k", Retention(GOVERNANCE, until), bypass_governance=bypass)
        assert storage.stat("k").retention == r
        with pytest.raises(Locked):
            storage.delete("k", bypass_governance=True)

    def test_governance_is_shortened_only_with_bypass(self, storage, clock):
        self._need(storage, "object_lock")
        r = Retention(GOVERNANCE, clock.now() + 10 * DAY)
        storage.put("k", b"x", retention=r)
        shorter = Retention(GOVERNANCE, clock.now() + DAY)
        with pytest.raises(Locked):
            storage.set_retention("k", shorter)
        assert storage.stat("k").retention == r
        storage.set_retention("k", shorter, bypass_governance=True)
        assert storage.stat("k").retention == shorter
        self.advance(clock, DAY.total_seconds() + 1)
        storage.delete("k")

    def test_governance_can_be_extended_and_made_compliance(self, storage, clock):
        """Extending governance needs nothing; making it compliance needs the governance bypass
        while it is active, as S3 Object Lock (AWS, MinIO, Ceph) requires."""
        self._need(storage, "object_lock")
        storage.put("k", b"x", retention=Retention(GOVERNANCE, clock.now() + DAY))
        longer = Retention(GOVERNANCE, clock.now() + 2 * DAY)
        storage.set_retention("k", longer)
        assert storage.stat("k").retention == longer
        stricter = Retention(COMPLIANCE, clock.now() + 3 * DAY)
        with pytest.raises(Locked):
            storage.set_retention("k", stricter)
        assert storage.stat("k").retention == longer
        storage.set_retention("k", stricter, bypass_governance=True)
        assert storage.stat("k").retention == stricter
        with pytest.raises(Locked):
            storage.delete("k", bypass_governance=True)

    def test_governance_delete_before_expiry_only_with_bypass(self, storage, clock):
        self._need(storage, "object_lock")
        storage.put("k", b"x", retention=Retention(GOVERNANCE, clock.now() + DAY))
        with pytest.raises(Locked):
            storage.delete("k")
        assert storage.exists("k")
        storage.delete("k", bypass_governance=True)
        assert not storage.exists("k")

    def test_compliance_delete_is_refused_even_with_bypass(self, storage, clock):
        self._need(storage, "object_lock")
        storage.put("k", b"x", retention=Retention(COMPLIANCE, clock.now() + DAY))
        with pytest.raises(Locked):
            storage.delete("k", bypass_governance=True)
        assert storage.get("k") == b"x"

    # -- legal hold --------------------------------------------------------------------

    def test_legal_hold_blocks_delete_until_released(self, storage):
        self._need(storage, "legal_hold")
        storage.put("k", b"x")
        storage.set_legal_hold("k", True)
        assert storage.stat("k").legal_hold is True
        with pytest.raises(Locked):
            storage.delete("k")
        with pytest.raises(Locked):
            storage.delete("k", bypass_governance=True)
        storage.set_legal_hold("k", False)
        assert storage.stat("k").legal_hold is False
        storage.delete("k")
        assert not storage.exists("k")

    def test_legal_hold_outlives_retention(self, storage, clock):
        self._need(storage, "legal_hold")
        self._need(storage, "object_lock")
        r = Retention(GOVERNANCE, clock.now() + DAY)
        storage.put("k", b"x", retention=r)
        storage.set_legal_hold("k", True)
        info = storage.stat("k")
        assert info.retention == r and info.legal_hold is True
        self.advance(clock, 2 * DAY.total_seconds())
        with pytest.raises(Locked):
            storage.delete("k")
        with pytest.raises(Locked):
            storage.delete("k", bypass_governance=True)
        storage.set_legal_hold("k", False)
        storage.delete("k")

    def test_legal_hold_on_a_missing_key(self, storage):
        self._need(storage, "legal_hold")
        with pytest.raises(NotFound):
            storage.set_legal_hold("missing", True)

    def test_legal_hold_does_not_outlive_its_object(self, storage):
        self._need(storage, "legal_hold")
        storage.put("k", b"x")
        storage.set_legal_hold("k", True)
        storage.set_legal_hold("k", False)
        storage.delete("k")
        storage.put("k", b"new")
        assert storage.stat("k").legal_hold is False
        storage.delete("k")
