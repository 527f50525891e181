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
    chunk = seal_chunk(repo.blobs.blob_sealer, repo.keys.ids, data)
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


# -- restore: files of one blob written by worker processes ---------------------------------


@pytest.fixture
def restore_processes_at_once(monkeypatch):
    from amber.restore import restorer as restorer_mod

    monkeypatch.setattr(restorer_mod, "PROCESS_AFTER_FILES", 0)


def _blob_entry(repo, snap, path):
    node = repo.node_at(snap, path)
    repo.load_index()
    bid = bytes.fromhex(node["content"][0])
    return bid, repo.blobs.lookup(bid)


def test_worker_processes_restore_the_same_tree_as_threads(repo, repo_path, tmp_path, restore_processes_at_once):
    src = os.path.join(tmp_path, "src")
    full_tree(src)  # hard links, symlinks, modes, mtimes, odd names, files of many blobs
    for i in range(300):
        write(os.path.join(src, "many", f"f{i}.txt"), f"small file {i}\n".encode() * (i + 1))
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    r = open_repo(repo_path)
    stats = r.restore(snap, str(tmp_path / "procs"), verify=True, processes=True)
    assert stats.errors == [] and stats.files_done == stats.files and stats.verified == stats.files
    assert_same_tree(src, restored(tmp_path / "procs", src))
    open_repo(repo_path).restore(snap, str(tmp_path / "threads"), processes=False)
    assert_same_tree(restored(tmp_path / "threads", src), restored(tmp_path / "procs", src))
    leftovers = [n for _d, _s, names in os.walk(tmp_path / "procs") for n in names if n.startswith(".amber-restore-")]
    assert leftovers == []


def test_a_damaged_blob_restored_by_a_worker_names_its_file_and_the_rest_is_restored(
    repo, repo_path, tmp_path, restore_processes_at_once
):
    from amber.errors import RestoreFailed

    src = os.path.join(tmp_path, "src")
    for i in range(50):
        write(os.path.join(src, f"f{i:02d}.txt"), f"file {i} ".encode() * (100 + i))
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    victim = os.path.join(src, "f17.txt")
    _bid, entry = _blob_entry(open_repo(repo_path), snap, victim)
    pack = os.path.join(repo_path, "packs", entry.pack.hex()[:2], entry.pack.hex())
    if not os.path.exists(pack):
        pack = next(os.path.join(d, n) for d, _s, names in os.walk(repo_path) for n in names if n == entry.pack.hex())
    os.chmod(pack, 0o644)
    with open(pack, "r+b") as f:
        f.seek(entry.offset + entry.length // 2)
        b = f.read(1)
        f.seek(entry.offset + entry.length // 2)
        f.write(bytes([b[0] ^ 0x01]))
    out = tmp_path / "out"
    with pytest.raises(RestoreFailed) as exc:
        open_repo(repo_path).restore(snap, str(out), processes=True)
    errors = exc.value.stats.errors
    assert len(errors) == 1 and "f17.txt" in errors[0] and "authentication failed" in errors[0]
    got = restored(out, src)
    assert not os.path.exists(os.path.join(got, "f17.txt"))  # never a partial or wrong file under its name
    for i in range(50):
        if i != 17:
            with open(os.path.join(got, f"f{i:02d}.txt"), "rb") as f:
                assert f.read() == f"file {i} ".encode() * (100 + i)
    assert [n for n in os.listdir(got) if n.startswith(".amber-restore-")] == []
