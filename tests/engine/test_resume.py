"""An interrupted backup's packs are reused by the next one; dead runs stop blocking prune."""

from __future__ import annotations

import os
import subprocess

import pytest

from amber.clock import to_iso
from amber.errors import StorageError
from amber.format import layout
from amber.repo import adopt
from amber.repo import records as rec
from amber.retention import runs
from amber.testing import FailingStorage

from .helpers import assert_same_tree, open_repo, restored, small_tree, with_storage, write

SMALL_PACKS = 256 << 10


@pytest.fixture
def src(tmp_path):
    s = small_tree(tmp_path / "src")
    for i in range(12):
        write(os.path.join(s, "many", f"r{i}.bin"), os.urandom(300_000))
    return s


def _interrupt(repo, src) -> set[bytes]:
    """A backup whose index files and snapshot never reach storage; returns the packs it stored."""
    failing = _IndexRefused(repo.storage)
    with pytest.raises(StorageError):
        with_storage(repo, failing, pack_size=SMALL_PACKS).backup([src], use_cache=False)
    stored = {layout.pack_id(k) for k in failing.stored_keys if k.startswith(layout.DATA)}
    assert len(stored) >= 6
    return stored


class _IndexRefused(FailingStorage):
    """Stores packs, fails the first index file: a backup stopped before it indexed anything."""

    def __init__(self, inner) -> None:
        super().__init__(inner, fail_after=10**9)

    def put(self, key, data, *, retention=None):
        if key.startswith(layout.INDEX):
            self.fail_after = 0
        return super().put(key, data, retention=retention)


def test_the_next_backup_reuses_the_packs_of_an_interrupted_one(repo, repo_path, src, tmp_path):
    stored = _interrupt(repo, src)
    total = sum(repo.storage.stat(layout.pack(p)).size for p in stored)
    client = open_repo(repo_path)
    warnings: list[str] = []
    client.warn = warnings.append
    result = client.backup([src])
    assert result.bytes_added < total * 0.2, f"{result.bytes_added} of {total} bytes stored again"
    assert result.resumed == (len(stored), total) and result.to_json()["packs_resumed"] == len(stored)
    assert warnings == []
    r = open_repo(repo_path)
    r.load_index()
    assert stored <= set(r.blobs.pack_index_files), "the adopted packs have no index file"
    rep = r.check(read_data=True)
    assert rep.ok and rep.packs_unindexed == 0, rep.errors
    target = tmp_path / "restore"
    r.restore(r.find_snapshot(result.snapshot_id), str(target), verify=True)
    assert_same_tree(src, restored(target, src))


def test_a_pack_a_prune_plan_names_is_not_adopted(repo, repo_path, src):
    stored = sorted(_interrupt(repo, src))
    planned = stored[0]
    doc = {"v": 1, "time": to_iso(repo.clock.now()), "packs": [planned.hex()]}
    repo.records.put(rec.PRUNE, doc, layout.prune_plan)
    open_repo(repo_path).backup([src])
    r = open_repo(repo_path)
    r.load_index()
    assert planned not in r.blobs.pack_index_files
    assert set(stored[1:]) <= set(r.blobs.pack_index_files)


def test_a_pack_whose_header_does_not_authenticate_is_left_alone(repo, repo_path, src):
    _interrupt(repo, src)
    junk = os.urandom(5000)
    import blake3

    pid = blake3.blake3(junk).digest()
    write(os.path.join(repo_path, *layout.pack(pid).split("/")), junk, mode=0o444)
    client = open_repo(repo_path)
    warnings: list[str] = []
    client.warn = warnings.append
    client.backup([src])
    assert any(pid.hex() in w and "not reused" in w for w in warnings), warnings
    r = open_repo(repo_path)
    r.load_index()
    assert pid not in r.blobs.pack_index_files
    rep = r.check()
    assert rep.packs_unindexed == 1 and rep.bytes_unindexed == len(junk)


def test_adoption_reads_only_headers(repo, repo_path, src):
    stored = _interrupt(repo, src)
    r = open_repo(repo_path)
    r.load_index()
    counted = _CountingGets(r.storage)
    r.blobs.storage = counted
    found = adopt.unindexed(r.blobs)
    with r.blobs.session():
        done = adopt.adopt(r.blobs, found)
    assert done.packs == len(stored) and done.index_file is not None
    assert counted.whole == 0 and counted.ranged == 2 * len(stored)


class _CountingGets(FailingStorage):
    def __init__(self, inner) -> None:
        super().__init__(inner, fail_after=10**9)
        self.whole = self.ranged = 0

    def get(self, key, offset=0, length=None):
        if length is None:
            self.whole += 1
        else:
            self.ranged += 1
        return super().get(key, offset, length)


# -- run markers ------------------------------------------------------------------------


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_a_marker_names_its_process():
    here = runs.Host.current()
    doc = here.marker(os.getpid())
    assert doc["pid"] == os.getpid() and doc["host"] == here.host
    assert not here.is_dead(doc)


@pytest.mark.parametrize(
    "change, dead",
    [
        ({}, False),  # this process: alive
        ({"pid": "dead"}, True),
        ({"pid_start": 1}, True),  # the pid was reused by another process
        ({"boot_id": "another boot"}, True),
        ({"host": "elsewhere"}, False),
        ({"machine_id": "another machine"}, False),
        ({"pidns": 1}, False),  # another pid namespace: cannot tell
        ({"boot_id": None}, False),  # too little to tell
    ],
)
def test_dead_runs_are_recognised_only_on_this_host(change, dead):
    here = runs.Host.current()
    if here.boot_id is None or here.pidns is None or here.machine_id is None:
        pytest.skip("no /proc or /etc/machine-id here: runs cannot be told dead")
    doc = here.marker(os.getpid())
    for k, v in change.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = _dead_pid() if v == "dead" else v
    assert here.is_dead(doc) is dead


def _plant_marker(repo, **fields) -> str:
    doc = {"v": 1, "time": to_iso(repo.clock.now()), **fields}
    return repo.records.put(rec.PRUNE, doc, layout.run_marker)


def test_a_dead_run_of_this_host_does_not_block_prune(repo, repo_path, src):
    stored = _interrupt(repo, src)  # its marker names this (live) process: plant a dead one instead
    for info in repo.storage.list(layout.RUNNING):
        os.chmod(os.path.join(repo_path, *info.key.split("/")), 0o644)
        os.remove(os.path.join(repo_path, *info.key.split("/")))
    _plant_marker(repo, **runs.Host.current().marker(_dead_pid()))
    rep = open_repo(repo_path).prune()
    assert rep.waiting_for_runs == []
    assert stored <= {bytes.fromhex(p) for p in rep.packs_deleted}, "the dead run's packs were not collected"
    assert list(repo.storage.list(layout.RUNNING)) == [], "the dead run's marker is still there"
    assert open_repo(repo_path).check().packs_unindexed == 0


def test_a_fresh_run_of_another_host_blocks_prune(repo, repo_path, src):
    stored = _interrupt(repo, src)
    rid = _plant_marker(repo, host="elsewhere", pid=1, boot_id="b", machine_id="m", pidns=1)
    rep = open_repo(repo_path).prune()
    assert rid in rep.waiting_for_runs
    assert not rep.packs_deleted
    assert all(repo.storage.stat(layout.pack(p)) for p in stored)


def test_a_write_only_key_resumes_too(repo, repo_path, src, tmp_path):
    from amber.crypto import keys as keyfile

    from .helpers import KDF_N

    repo.add_key("backup key password", kdf_n=KDF_N, role=keyfile.BACKUP)
    writer = open_repo(repo_path, password="backup key password")
    stored = _interrupt(writer, src)
    total = sum(repo.storage.stat(layout.pack(p)).size for p in stored)
    result = open_repo(repo_path, password="backup key password").backup([src])
    assert result.bytes_added < total * 0.2
    r = open_repo(repo_path)
    assert r.check(read_data=True).ok
    target = tmp_path / "restore"
    r.restore(r.find_snapshot(result.snapshot_id), str(target), verify=True)
    assert_same_tree(src, restored(target, src))


def test_without_a_machine_id_a_new_boot_id_is_not_taken_for_a_reboot():
    """Two containers of one host name on two machines share no boot id: without a machine
    id to tell them apart, a marker of the other is respected, not taken for a dead run."""
    here = runs.Host("box", None, "boot-a", 7)
    other = {"host": "box", "boot_id": "boot-b", "pidns": 7, "pid": 1}
    assert not here.is_dead(other, alive=lambda pid, start: False)
    assert runs.Host("box", "m", "boot-a", 7).is_dead(dict(other, machine_id="m"))


# -- heartbeats ------------------------------------------------------------------------

import datetime as dt  # noqa: E402


def _other_host_marker(repo, age: dt.timedelta) -> str:
    start = to_iso(repo.clock.now() - age)
    doc = {"v": 1, "time": start, "beat": runs.BEAT_EVERY, "host": "elsewhere", "pid": 1, "boot_id": "b"}
    return repo.records.put(rec.PRUNE, doc, layout.run_marker)


def _beat(repo, rid: str, age: dt.timedelta = dt.timedelta(0)) -> None:
    """A heartbeat of run `rid` written `age` ago (by its time, and by the file's mtime)."""
    when = repo.clock.now() - age
    name = repo.records.put(rec.PRUNE, {"v": 1, "time": to_iso(when), "run": rid}, layout.heartbeat)
    path = os.path.join(repo.storage.root, *layout.heartbeat(name).split("/"))
    os.utime(path, (when.timestamp(), when.timestamp()))


def test_another_hosts_run_silent_for_half_an_hour_no_longer_blocks_prune(repo, repo_path):
    rid = _other_host_marker(repo, dt.timedelta(minutes=40))
    _beat(repo, rid, dt.timedelta(minutes=35))
    rep = open_repo(repo_path).prune()
    assert rep.waiting_for_runs == []
    assert list(repo.storage.list(layout.BEATS)) == [], "the silent run's heartbeats were kept"


def test_another_hosts_long_backup_with_fresh_heartbeats_blocks_prune(repo, repo_path):
    rid = _other_host_marker(repo, dt.timedelta(hours=30))  # older than the 24 h rule
    _beat(repo, rid, dt.timedelta(minutes=2))
    assert open_repo(repo_path).prune().waiting_for_runs == [rid]


def test_a_heartbeat_from_the_future_is_not_believed(repo, repo_path):
    rid = _other_host_marker(repo, dt.timedelta(hours=2))
    _beat(repo, rid, -dt.timedelta(days=30))
    assert open_repo(repo_path).prune().waiting_for_runs == []


def test_heartbeats_are_written_until_stopped():
    import threading

    calls = threading.Semaphore(0)
    beat = runs.Heartbeat(calls.release, every=0.01).start()
    for _ in range(3):
        assert calls.acquire(timeout=10)
    beat.stop()
    assert not beat._thread.is_alive()


def test_a_backup_announces_heartbeats_and_prune_cleans_them(repo, repo_path, src):
    result = repo.backup([src])
    marker = repo.records.get(rec.PRUNE, next(iter(repo.storage.list(layout.RUNNING))).key)
    assert marker["beat"] == runs.BEAT_EVERY and marker["pid"] == os.getpid()
    _beat(repo, repo.load_snapshot(result.snapshot_id).doc["run"])
    open_repo(repo_path).prune()
    assert list(repo.storage.list(layout.RUNNING)) == [] and list(repo.storage.list(layout.BEATS)) == []


class _FirstIndexRefused(FailingStorage):
    """Refuses the first index file put (the one resuming writes), then lets everything through."""

    def __init__(self, inner) -> None:
        super().__init__(inner, fail_after=10**9)
        self.refused = False

    def put(self, key, data, *, retention=None):
        if key.startswith(layout.INDEX) and not self.refused:
            self.refused = True
            from amber.testing import InjectedFault

            raise InjectedFault(f"injected failure writing {key}")
        return super().put(key, data, retention=retention)


def test_a_failed_index_file_for_adopted_packs_is_written_at_the_end(repo, repo_path, src):
    stored = _interrupt(repo, src)
    client = open_repo(repo_path)
    flaky = _FirstIndexRefused(client.storage)
    warnings: list[str] = []
    resumed = with_storage(client, flaky)
    resumed.warn = warnings.append
    result = resumed.backup([src])
    assert flaky.refused and any("could not all be reused" in w for w in warnings)
    assert result.bytes_added < sum(repo.storage.stat(layout.pack(p)).size for p in stored) * 0.2
    r = open_repo(repo_path)
    r.load_index()
    assert stored <= set(r.blobs.pack_index_files)
    assert r.check(read_data=True).ok
