"""The worker pool: batches answered in order, failures reach the caller, workers end with their parent."""

from __future__ import annotations

import os
import signal
import time

import pytest

from amber.repo.processes import PipePool, WorkerFailed

_offset = 0


def _set_offset(n: int) -> None:
    global _offset
    _offset = n


def _add(batch):
    """The handler: plain values in, plain values out; some batches fail on purpose."""
    if batch == "boom":
        raise ValueError("a bug in the handler")
    if batch == "die":
        os._exit(3)
    if batch == "pid":
        return os.getpid()
    if type(batch) is tuple and batch[0] == "echo":
        return batch[1]
    return [x + _offset for x in batch]


@pytest.fixture
def pool():
    p = PipePool(2, _set_offset, (100,), _add)
    yield p
    p.shutdown()


def test_every_batch_gets_its_own_result(pool):
    futures = [pool.submit(list(range(i, i + 50))) for i in range(200)]
    for i, fut in enumerate(futures):
        assert fut.result(timeout=60) == [x + 100 for x in range(i, i + 50)]


def test_plain_values_of_every_kind_cross_both_ways(pool):
    values = [b"\x00bytes", "t\u00e9xt \udcff", None, True, 2**70, -1, {"k": [1, (2, 3)]}, b"x" * (8 << 20)]
    assert pool.submit(("echo", values)).result(timeout=60) == values
    with pytest.raises(WorkerFailed, match="TypeError"):  # adding an int to a tuple: that batch fails
        pool.submit([(1, 2)]).result(timeout=60)
    assert pool.submit([1]).result(timeout=60) == [101]  # the pool goes on


def test_an_exception_in_the_handler_fails_that_batch_only(pool):
    bad = pool.submit("boom")
    good = pool.submit([1, 2])
    with pytest.raises(WorkerFailed, match="ValueError: a bug in the handler"):
        bad.result(timeout=60)
    assert good.result(timeout=60) == [101, 102]


def test_a_worker_that_dies_fails_its_batches_and_not_the_caller(pool):
    pids = {pool.submit("pid").result(timeout=60) for _ in range(20)}
    died = pool.submit("die")
    with pytest.raises(WorkerFailed, match="ended unexpectedly"):
        died.result(timeout=60)
    # the other worker takes every batch from now on
    assert [pool.submit([5]).result(timeout=60) for _ in range(6)] == [[105]] * 6
    assert len(pids) >= 1


def test_workers_end_when_their_parent_is_killed(tmp_path):
    """A parent killed with SIGKILL cannot shut its pool down: the workers notice and end."""
    pid_file = tmp_path / "pids"
    child = os.fork()
    if child == 0:  # the parent of the pool
        try:
            p = PipePool(2, _set_offset, (0,), _add)
            pids = {p.submit("pid").result(timeout=60) for _ in range(20)}
            pid_file.write_text(" ".join(map(str, pids)))
            time.sleep(60)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    workers = [int(x) for x in pid_file.read_text().split()]
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_shutdown_lets_batches_finish_and_refuses_new_ones():
    p = PipePool(2, _set_offset, (1,), _add)
    futures = [p.submit([i]) for i in range(100)]
    p.shutdown()
    assert [f.result(timeout=1) for f in futures] == [[i + 1] for i in range(100)]
    with pytest.raises(WorkerFailed):
        p.submit([1])
    p.shutdown()  # twice is harmless
