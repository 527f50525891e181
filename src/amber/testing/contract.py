"""`StorageContract`: the tests every storage backend must pass.

Subclass it in a backend's test module (the class name must start with
`Test`) and define `make_storage`; every case below then runs against that
backend. The storage guarantees themselves are stated in
`amber.storage.base`.

    class TestMyStorage(StorageContract):
        def make_storage(self, tmp_path, clock):
            return MyStorage(str(tmp_path / "store"), clock=clock)

        def client_factory(self, storage):  # optional: a second client of the same store
            return functools.partial(MyStorage, storage.root)

Time is a `FakeClock` (fixture `clock`) the tests move by hand: a backend
must read the time from `storage.clock`, or from a clock given to its
constructor, and never sleep. WORM cases run only when the backend's
`capabilities` say it has object lock or legal holds.
"""

from __future__ import annotations

import datetime as _dt
import multiprocessing
import queue
import random

import pytest

from ..clock import FakeClock
from ..errors import AlreadyExists, NotFound, UsageError
from ..storage.base import GOVERNANCE, Retention, Storage
from .races import race_puts
from .worm import WormContract

DAY = _dt.timedelta(days=1)

INVALID_KEYS = [
    "",
    "/",
    "/abs",
    "/abs/key",
    "trailing/",
    "a//b",
    "..",
    "../a",
    "a/..",
    "a/../b",
    ".",
    "./a",
    "a/./b",
    ".hidden",
    "a/.tmp-1-abc",
    "with space",
    " lead",
    "trail ",
    "a\\b",
    "nul\x00byte",
    "new\nline",
    "caf\u00e9",
    b"bytes-key",
]

INVALID_PREFIXES = ["/", "/abs/", "../", "a/../", "a//", "./", ".hidden/", "with space/"]


def _payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _race_child(factory, keys, payload, barrier, results) -> None:
    """One client in the cross-process race: put every key once, report which it won."""
    try:
        storage = factory()
        barrier.wait(timeout=60)
        won, errors = [], []
        for key in keys:
            try:
                storage.put(key, payload)
                won.append(key)
            except AlreadyExists:
                pass
            except Exception as e:  # reported to the parent, which fails the test
                errors.append(f"{key}: {type(e).__name__}: {e}")
        results.put((payload, won, errors))
    except Exception as e:
        results.put((payload, [], [f"{type(e).__name__}: {e}"]))


class _BasicContract:
    """Shared storage tests. Subclasses define `make_storage(self, tmp_path, clock)`."""

    #: size of the object in the large round trip
    large_size = 20 << 20
    #: threads and keys in the in-process put race
    race_threads = 12
    race_keys = 20
    #: processes in the cross-process put race
    race_processes = 4

    # -- what a backend's test class provides ------------------------------------

    def make_storage(self, tmp_path, clock) -> Storage:
        """A new, empty store that reads the time from `clock`."""
        raise NotImplementedError("a StorageContract subclass must define make_storage")

    def client_factory(self, storage: Storage):
        """A picklable zero-argument callable opening another client of the same store.

        It is called in other processes for the cross-process put race, and in
        this one to check that retention and holds are seen by every client.
        Return None when the store cannot be reached by a second client.
        """
        return None

    # Whether the store judges retention by the test's clock. A real server (S3)
    # judges by its own clock, so the cases that wait for a lock to expire stop
    # there; the backend's own tests show real expiry with short real periods.
    time_travel = True

    def advance(self, clock, seconds: float) -> None:
        if not self.time_travel:
            pytest.skip("the server judges retention by its own clock; expiry is tested with real time")
        clock.advance(seconds)

    # -- fixtures ------------------------------------------------------------------

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def storage(self, tmp_path, clock):
        s = self.make_storage(tmp_path, clock)
        if s.clock is not clock:
            s.clock = clock
        yield s
        s.close()

    @staticmethod
    def _keys(storage: Storage, prefix: str = "") -> dict[str, int]:
        return {info.key: info.size for info in storage.list(prefix)}

    @staticmethod
    def _assert_absent(storage: Storage, key: str) -> None:
        """Every way of reaching `key` says it is not there."""
        for reach in (
            lambda: storage.get(key),
            lambda: storage.get(key, 0, 1),
            lambda: storage.stat(key),
            lambda: storage.delete(key),
        ):
            with pytest.raises(NotFound):
                reach()
        assert storage.exists(key) is False

    # -- put, get, stat, list --------------------------------------------------------

    def test_put_then_get_stat_list(self, storage):
        data = b"hello, amber\n"
        storage.put("config", data)
        storage.put("data/ab/abcdef", b"\x00\x01\x02")
        assert storage.get("config") == data
        info = storage.stat("config")
        assert info.key == "config"
        assert info.size == len(data)
        assert info.retention is None
        assert info.legal_hold is False
        assert storage.exists("config")
        assert not storage.exists("missing")
        assert self._keys(storage) == {"config": len(data), "data/ab/abcdef": 3}

    def test_put_copies_the_data(self, storage):
        buf = bytearray(b"original")
        storage.put("k", buf)
        buf[:] = b"mutated!"
        assert storage.get("k") == b"original"

    def test_put_accepts_memoryview(self, storage):
        data = b"0123456789" * 100
        storage.put("k", memoryview(data)[10:20])
        assert storage.get("k") == b"0123456789"

    def test_empty_object_round_trips(self, storage):
        storage.put("keys/empty", b"")
        assert storage.get("keys/empty") == b""
        assert storage.get("keys/empty", 0, 0) == b""
        assert storage.stat("keys/empty").size == 0
        assert self._keys(storage, "keys/") == {"keys/empty": 0}

    def test_large_object_round_trips(self, storage):
        data = _payload(1, self.large_size)
        storage.put("data/00/large", data)
        assert storage.stat("data/00/large").size == len(data)
        assert storage.get("data/00/large") == data
        mid = len(data) // 2
        assert storage.get("data/00/large", mid, 1 << 20) == data[mid : mid + (1 << 20)]
        assert storage.get("data/00/large", len(data) - 5, 5) == data[-5:]

    # -- put-if-absent ----------------------------------------------------------------

    def test_put_refuses_to_overwrite(self, storage):
        storage.put("snapshots/one", b"first")
        with pytest.raises(AlreadyExists):
            storage.put("snapshots/one", b"second")
        with pytest.raises(AlreadyExists):
            storage.put("snapshots/one", b"first")
        with pytest.raises(AlreadyExists):
            storage.put("snapshots/one", b"")
        assert storage.get("snapshots/one") == b"first"
        assert self._keys(storage) == {"snapshots/one": 5}

    def test_put_race_between_threads_has_one_winner(self, storage):
        keys = [f"race/key-{i}" for i in range(self.race_keys)]
        won = race_puts(storage, self.race_threads, keys, lambda i: f"client {i} ".encode() * (i + 1) * 4096)
        for key in keys:
            (winner,) = won[key]
            assert storage.get(key) == f"client {winner} ".encode() * (winner + 1) * 4096

    def test_put_race_between_processes_has_one_winner(self, storage):
        if not storage.capabilities.conditional_put:
            pytest.skip(f"{type(storage).__name__}: put-if-absent is not atomic across clients")
        factory = self.client_factory(storage)
        if factory is None:
            pytest.skip(f"{type(storage).__name__}: cannot be opened from another process")
        ctx = multiprocessing.get_context("spawn")
        n = self.race_processes
        barrier = ctx.Barrier(n)
        results = ctx.Queue()
        keys = [f"race/proc-{i}" for i in range(self.race_keys)]
        payloads = [f"process {i} ".encode() * 16384 for i in range(n)]
        procs = [ctx.Process(target=_race_child, args=(factory, keys, payloads[i], barrier, results)) for i in range(n)]
        for p in procs:
            p.start()
        reports = []
        try:
            for _ in procs:
                reports.append(results.get(timeout=120))
        except queue.Empty:
            pytest.fail("a racing process did not report back")
        finally:
            for p in procs:
                p.join(timeout=30)
                if p.is_alive():
                    p.kill()
        assert [e for _, _, errs in reports for e in errs] == []
        for key in keys:
            winners = [payload for payload, won, _ in reports if key in won]
            assert len(winners) == 1, f"{key}: {len(winners)} processes won the put"
            assert storage.get(key) == winners[0]

    # -- ranged reads ----------------------------------------------------------------

    @pytest.mark.parametrize(
        "offset,length",
        [
            (0, None),
            (0, 1),
            (0, 100),
            (1, 99),
            (37, 13),
            (50, None),
            (99, 1),
            (99, None),
            (100, 0),
            (100, None),
            (0, 0),
            (42, 0),
        ],
    )
    def test_get_range(self, storage, offset, length):
        data = bytes(range(100))
        storage.put("ranged", data)
        end = len(data) if length is None else offset + length
        assert storage.get("ranged", offset, length) == data[offset:end]

    def test_get_range_of_a_large_object(self, storage):
        data = _payload(2, 3 << 20)
        storage.put("data/ff/ranges", data)
        for offset, length in [(0, 4), (1 << 20, 1 << 20), (len(data) - 4, 4), (len(data) - (1 << 20), None)]:
            end = len(data) if length is None else offset + length
            assert storage.get("data/ff/ranges", offset, length) == data[offset:end]

    # -- missing keys ------------------------------------------------------------------

    @pytest.mark.parametrize("key", ["missing", "data/00/missing", "present/below"])
    def test_missing_key_raises_not_found(self, storage, key):
        storage.put("present", b"x")
        self._assert_absent(storage, key)

    def test_a_folder_of_keys_is_not_an_object(self, storage):
        storage.put("folder/inner", b"x")
        self._assert_absent(storage, "folder")
        assert storage.get("folder/inner") == b"x"

    # -- listing -----------------------------------------------------------------------

    def test_list_by_folder_prefix(self, storage):
        keys = {
            "config": 1,
            "keys/k1": 2,
            "keys/k2": 3,
            "data/ab/ab01": 4,
            "data/ab/ab02": 5,
            "data/abc/abc01": 6,
            "data/cd/cd01": 7,
            "index/i1": 8,
            "snapshots/s1": 9,
            "snap/x": 10,
            "snapshotsX/y": 11,
        }
        for k, size in keys.items():
            storage.put(k, b"z" * size)
        assert self._keys(storage) == keys
        assert self._keys(storage, "keys/") == {"keys/k1": 2, "keys/k2": 3}
        assert self._keys(storage, "data/") == {
            "data/ab/ab01": 4,
            "data/ab/ab02": 5,
            "data/abc/abc01": 6,
            "data/cd/cd01": 7,
        }
        # "data/ab" is a string prefix of "data/abc" but not its folder
        assert self._keys(storage, "data/ab/") == {"data/ab/ab01": 4, "data/ab/ab02": 5}
        assert self._keys(storage, "data/abc/") == {"data/abc/abc01": 6}
        assert self._keys(storage, "snapshots/") == {"snapshots/s1": 9}
        assert self._keys(storage, "snap/") == {"snap/x": 10}
        assert self._keys(storage, "nothing/") == {}
        assert self._keys(storage, "data/zz/") == {}

    def test_list_of_an_empty_store(self, storage):
        assert list(storage.list()) == []
        assert list(storage.list("data/")) == []

    def test_list_does_not_descend_into_an_object_prefix(self, storage):
        storage.put("config", b"c")
        assert self._keys(storage, "config/") == {}

    def test_list_reports_sizes_and_deep_nesting(self, storage):
        deep = "a/b/c/d/e/f/g/h"
        storage.put(deep, b"12345")
        storage.put("a/b/other", b"")
        assert self._keys(storage, "a/") == {deep: 5, "a/b/other": 0}
        assert self._keys(storage, "a/b/c/d/") == {deep: 5}

    # -- key validation ----------------------------------------------------------------

    @staticmethod
    def _not_refused(call, items) -> list:
        """The items for which `call` did not raise UsageError (with what it did instead)."""
        out = []
        for item in items:
            try:
                result = call(item)
                if hasattr(result, "__next__"):
                    list(result)
            except UsageError:
                continue
            except Exception as e:
                out.append((item, type(e).__name__))
            else:
                out.append((item, "accepted"))
        return out

    def test_invalid_keys_are_refused_by_put(self, storage):
        assert self._not_refused(lambda k: storage.put(k, b"x"), INVALID_KEYS) == []
        assert list(storage.list()) == []

    def test_invalid_keys_are_refused_by_get(self, storage):
        assert self._not_refused(storage.get, INVALID_KEYS) == []
        assert self._not_refused(lambda k: storage.get(k, 0, 1), INVALID_KEYS) == []

    def test_invalid_keys_are_refused_by_stat(self, storage):
        assert self._not_refused(storage.stat, INVALID_KEYS) == []

    def test_invalid_keys_are_refused_by_delete(self, storage):
        assert self._not_refused(storage.delete, INVALID_KEYS) == []

    def test_invalid_keys_are_refused_by_lock_calls(self, storage, clock):
        self._need(storage, "object_lock")
        r = Retention(GOVERNANCE, clock.now() + DAY)
        assert self._not_refused(lambda k: storage.set_retention(k, r), INVALID_KEYS) == []
        if storage.capabilities.legal_hold:
            assert self._not_refused(lambda k: storage.set_legal_hold(k, True), INVALID_KEYS) == []

    def test_invalid_list_prefixes_are_refused(self, storage):
        storage.put("a/b", b"x")
        assert self._not_refused(storage.list, INVALID_PREFIXES) == []

    @pytest.mark.parametrize("key", ["a", "A-Z_0-9", "x.y", "v1.2.3-rc_1", "a/b.c/d-e_f", "0" * 200])
    def test_valid_keys_are_accepted(self, storage, key):
        storage.put(key, b"ok")
        assert storage.get(key) == b"ok"

    # -- delete ------------------------------------------------------------------------

    def test_delete_removes(self, storage):
        storage.put("index/one", b"1")
        storage.put("index/two", b"2")
        storage.delete("index/one")
        self._assert_absent(storage, "index/one")
        assert self._keys(storage) == {"index/two": 1}
        storage.put("index/one", b"again")  # the key is free once more
        assert storage.get("index/one") == b"again"


class StorageContract(_BasicContract, WormContract):
    """Every case, basic and WORM: subclass this in a backend's test module."""
