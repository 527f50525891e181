"""Several writers append to one audit log at once: every event lands exactly once, the
sequence numbers are contiguous, and the log verifies. Writers are threads of one process
and separate processes, each opening the repository itself."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from amber.audit.log import ENTRIES
from amber.repository import Repository
from amber.storage.base import StorageWrapper

from audit_helpers import PASSWORD, events, open_repo

WRITERS = 4
EACH = 8


def assert_all_landed(repo_path, expected: set) -> None:
    repo = open_repo(repo_path)
    evs = events(repo)
    assert [ev["seq"] for ev in evs] == list(range(len(evs)))
    assert evs[0]["type"] == "init"
    got = [(ev["details"]["writer"], ev["details"]["n"]) for ev in evs[1:]]
    dupes = [k for k, c in collections.Counter(got).items() if c > 1]
    assert not dupes, f"events logged twice: {dupes}"
    assert set(got) == expected, f"missing: {sorted(expected - set(got))}"
    # each writer's own events are in the order it appended them
    for w in range(WRITERS):
        mine = [n for writer, n in got if writer == w]
        assert mine == sorted(mine)
    rep = repo.verify_audit_log()
    assert rep.ok, rep.errors
    assert rep.size == len(evs) == 1 + len(expected)
    assert rep.checkpoints >= 1 and not any("no checkpoint for the full log" in w for w in rep.warnings)


def test_threads_appending_at_once_all_land(repo, repo_path):
    barrier = threading.Barrier(WRITERS)
    errors = []

    def work(w: int) -> None:
        mine = open_repo(repo_path)  # each thread a client session of its own, as in a server
        barrier.wait()
        for n in range(EACH):
            try:
                mine.log_event("check", read_data=False, ok=True, errors=0, writer=w, n=n)
            except Exception as e:
                errors.append(f"writer {w} event {n}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, "\n".join(errors)
    assert_all_landed(repo_path, {(w, n) for w in range(WRITERS) for n in range(EACH)})


WORKER = textwrap.dedent("""
    import os, sys, time
    from amber.repository import Repository
    path, writer, count, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    repo = Repository.open(path, os.environ["AUDIT_TEST_PASSWORD"])
    repo.audit.check_history()
    time.sleep(max(0.0, start - time.time()))
    failed = 0
    for n in range(count):
        try:
            repo.log_event("check", read_data=False, ok=True, errors=0, writer=writer, n=n)
        except Exception as e:
            failed += 1
            print(f"writer {writer} event {n}: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1 if failed else 0)
""")


@pytest.mark.parametrize("state", ["one-client-state", "a-state-per-process"])
def test_processes_appending_at_once_all_land(repo, repo_path, tmp_path, state):
    """Several amber processes of one user share the remembered checkpoint; processes on
    different machines each have their own."""
    start = time.time() + 2.0
    procs = []
    for w in range(WRITERS):
        env = dict(os.environ, AUDIT_TEST_PASSWORD=PASSWORD)
        if state == "a-state-per-process":
            env["XDG_STATE_HOME"] = str(tmp_path / f"state-{w}")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(repo_path), str(w), str(EACH), str(start)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    failures = []
    for w, p in enumerate(procs):
        out, err = p.communicate(timeout=120)
        if p.returncode != 0:
            failures.append(f"process {w} exit {p.returncode}:\n{err.decode(errors='replace')}")
    assert not failures, "\n".join(failures)
    assert_all_landed(repo_path, {(w, n) for w in range(WRITERS) for n in range(EACH)})


class AnotherWriterMeanwhile(StorageWrapper):
    """Real local storage, where another client of the same user appends one event right
    after this client has listed the log's entries: the interleaving the threads and
    processes above hit by chance, made certain."""

    def __init__(self, inner, other) -> None:
        super().__init__(inner)
        self.other = other
        self.armed = True

    def list(self, prefix=""):
        out = list(self.inner.list(prefix))
        if prefix == ENTRIES and self.armed:
            self.armed = False
            self.other.log_event("check", read_data=False, ok=True, errors=0, writer=1, n=0)
        return out


def test_an_append_that_races_another_writer_of_the_same_client_lands(legacy_log, repo, repo_path):
    opened = open_repo(repo_path)
    mine = Repository(
        AnotherWriterMeanwhile(opened.storage, open_repo(repo_path)),
        opened.keys,
        opened.config,
        opened.key_id,
        opened.clock,
    )
    mine.log_event("check", read_data=False, ok=True, errors=0, writer=0, n=0)
    evs = events(open_repo(repo_path))
    assert [(ev["seq"], ev["details"].get("writer")) for ev in evs] == [(0, None), (1, 1), (2, 0)]
    assert open_repo(repo_path).verify_audit_log().ok
