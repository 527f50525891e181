"""Small files read by worker processes: the same snapshot as the threads make."""

import hashlib
import os
import pickle

import pytest

from amber.backup import archiver as backup_mod
from amber.format.pack import BLOB_DATA
from amber.repo.chunks import FileRead, SealedChunk, seal_chunk

from .helpers import assert_same_tree, full_tree, open_repo, restored, write


@pytest.fixture
def processes_at_once(monkeypatch):
    monkeypatch.setattr(backup_mod, "PROCESS_AFTER_FILES", 0)
    monkeypatch.setattr(backup_mod, "PROCESS_AFTER_BYTES", 0)


def test_worker_processes_make_the_same_snapshot_as_threads(repo, repo_path, tmp_path, processes_at_once):
    src = os.path.join(tmp_path, "src")
    full_tree(src)
    for i in range(300):
        write(os.path.join(src, "many", f"f{i}.txt"), f"small file {i}\n".encode() * (i + 1))
    with_procs = repo.backup([src], processes=True, use_cache=False)
    with_threads = open_repo(repo_path).backup([src], processes=False, use_cache=False)
    r = open_repo(repo_path)
    a, b = r.find_snapshot(with_procs.snapshot_id), r.find_snapshot(with_threads.snapshot_id)
    # the folders above src (the test's temporary folders) change as other tests run beside this one
    assert r.node_at(a, src)["digest"] == r.node_at(b, src)["digest"]
    assert with_threads.bytes_added < 2000  # everything the processes stored was found again
    assert r.check(read_data=True).errors == []
    r.restore(a, str(tmp_path / "out"), verify=True)
    assert_same_tree(src, restored(tmp_path / "out", src))


def test_a_vanished_file_in_a_worker_batch_is_an_error_not_a_crash(repo, tmp_path, processes_at_once, monkeypatch):
    src = os.path.join(tmp_path, "src")
    for i in range(20):
        write(os.path.join(src, f"f{i}.txt"), b"x" * (i + 1))
    victim = os.path.join(src, "f7.txt")
    real_submit = backup_mod.Archiver._submit

    def submit_after_unlink(self, recs):  # the file vanishes after the walk saw it
        if any(r.path == victim for r in recs) and os.path.exists(victim):
            os.unlink(victim)
        return real_submit(self, recs)

    monkeypatch.setattr(backup_mod.Archiver, "_submit", submit_after_unlink)
    res = repo.backup([src], processes=True, use_cache=False)
    assert res.stats.files_total == 19
    assert any("f7.txt" in e for e in res.stats.errors)


def test_a_chunk_sealed_elsewhere_pickles_and_reads_back(repo, repo_path):
    """What a worker process returns crosses the process boundary whole and is stored as if sealed here."""
    data = b"sealed in a worker process\n" * 500
    chunk = seal_chunk(repo.blobs.sealer, repo.keys.ids, data)
    read = FileRead([chunk.id.hex()], hashlib.sha256(data).hexdigest(), len(data), [chunk])
    back = pickle.loads(pickle.dumps(read))
    assert back == read and type(back.chunks[0]) is SealedChunk
    assert chunk.id == repo.keys.blob_id(data) and chunk.raw_length == len(data)
    with pytest.raises(AttributeError):
        chunk.comp = 0  # frozen
    c = back.chunks[0]
    with repo.blobs.session() as session:
        assert session.add_sealed(BLOB_DATA, c.id, c.comp, c.raw_length, c.sealed) == len(c.sealed)
        assert session.add(BLOB_DATA, c.id, data) == 0  # the thread path finds it
        session.flush()
    r = open_repo(repo_path)
    r.load_index()
    assert r.blobs.read(c.id) == data
