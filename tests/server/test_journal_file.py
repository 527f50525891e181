"""The journal file itself, in this process: appends from two writers, a line torn by a crash."""

from __future__ import annotations

import threading

import pytest

from amber.errors import IntegrityError
from amber.server.journal import Journal, verify_journal
from amber.server.key import ServerKey
from amber.server.state import ServerPaths


@pytest.fixture
def journal(tmp_path):
    paths = ServerPaths(str(tmp_path / "root"))
    return Journal(paths.journal, ServerKey.load_or_create(paths))


def test_appends_from_many_threads_make_one_chain(journal):
    def writer(n):
        for i in range(25):
            journal.append("put", repo="r", key=f"data/{n}/{i}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = verify_journal(journal)
    assert [r["seq"] for r in records] == list(range(100))


def test_a_line_torn_by_a_crash_is_cut_and_the_cut_journaled(journal):
    journal.append("put", repo="r", key="a")
    with open(journal.path, "ab") as f:
        f.write(b'{"seq": 1, "op": "put", "ke')  # the crash came mid-write
    with pytest.raises(IntegrityError):
        verify_journal(journal)
    journal.append("put", repo="r", key="b")
    records = verify_journal(journal)
    assert [(r["op"], r.get("key")) for r in records] == [("put", "a"), ("journal-repair", None), ("put", "b")]
    assert records[1]["details"]["dropped_bytes"] == 27


def test_the_key_is_made_once_and_kept(tmp_path):
    paths = ServerPaths(str(tmp_path / "root"))
    first = ServerKey.load_or_create(paths)
    again = ServerKey.load_or_create(paths)
    assert first.public_text() == again.public_text()
    assert oct((tmp_path / "root" / ".amber-server" / "key").stat().st_mode & 0o777) == "0o600"
