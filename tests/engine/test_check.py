"""check: clean repositories pass; damage is found and traced to snapshots and files."""

import os

import pytest

from amber.errors import RestoreFailed
from amber.format.layout import pack as pack_key
from amber.repo import packcheck

from .helpers import open_repo, small_tree, write


@pytest.fixture
def backed_up(repo, repo_path, tmp_path):
    src = small_tree(tmp_path / "src")
    result = repo.backup([src])
    r = open_repo(repo_path)
    return r, r.find_snapshot(result.snapshot_id), src


@pytest.fixture(params=["threads", "processes"])
def checkers(request, monkeypatch):
    """Packs checked on threads, or in worker processes (spawned, as for a large repository)."""
    monkeypatch.setattr(packcheck, "PROCESS_AFTER_BYTES", 0 if request.param == "processes" else 1 << 60)
    return request.param


def _blob_of(repo, snap, path):
    """(blob id, index entry) of the first chunk of the file at `path` in the snapshot."""
    repo.load_index()
    node = repo.node_at(snap, path)
    bid = bytes.fromhex(node["content"][0])
    return bid, repo.blobs.lookup(bid)


def _pack_file(repo_path, pack_id: bytes) -> str:
    return os.path.join(repo_path, *pack_key(pack_id).split("/"))


def test_a_clean_repository_checks_ok(backed_up):
    repo, snap, _ = backed_up
    report = repo.check()
    assert report.ok and report.errors == []
    assert report.snapshots == 1 and report.trees > 1 and report.packs >= 2


def test_a_clean_repository_checks_ok_reading_all_data(backed_up, checkers):
    repo, _, _ = backed_up
    report = repo.check(read_data=True)
    assert report.ok, report.errors
    assert report.packs_read == report.packs and report.bytes_read > 0
    assert report.damaged_packs == [] and report.affected == []


def test_an_empty_repository_checks_ok(repo):
    report = repo.check(read_data=True)
    assert report.ok and report.snapshots == 0


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_flipped_byte_in_a_pack_is_found_and_traced(backed_up, repo_path, where, checkers):
    repo, snap, src = backed_up
    victim = os.path.join(src, "unique.bin")
    bid, entry = _blob_of(repo, snap, victim)
    offset = {
        "start": entry.offset,
        "middle": entry.offset + entry.length // 2,
        "end": entry.offset + entry.length - 1,
    }[where]
    path = _pack_file(repo_path, entry.pack)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))

    assert open_repo(repo_path).check().ok  # structure alone cannot see it
    report = open_repo(repo_path).check(read_data=True)
    assert not report.ok
    pack_hex = entry.pack.hex()
    assert report.damaged_packs == [pack_hex]
    assert any(pack_hex in e for e in report.errors)
    assert f"{snap.short_id} {victim}" in report.affected
    assert all(victim in a for a in report.affected)  # only the file that used the blob
    assert any(snap.short_id in e or "1 snapshot" in e for e in report.errors)


def test_a_damaged_file_fails_its_restore_and_only_it(backed_up, repo_path, tmp_path):
    repo, snap, src = backed_up
    victim = os.path.join(src, "unique.bin")
    _, entry = _blob_of(repo, snap, victim)
    path = _pack_file(repo_path, entry.pack)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(entry.offset + 20)
        b = f.read(1)
        f.seek(entry.offset + 20)
        f.write(bytes([b[0] ^ 0xFF]))
    r = open_repo(repo_path)
    with pytest.raises(RestoreFailed) as info:
        r.restore(r.find_snapshot(snap.id), str(tmp_path / "restore"))
    assert len(info.value.stats.errors) == 1
    assert "unique.bin" in info.value.stats.errors[0]
    out = os.path.join(tmp_path / "restore", src.lstrip("/"))
    with open(os.path.join(out, "hello.txt"), "rb") as f:
        assert f.read() == b"hello, amber\n"


def test_a_deleted_pack_is_found_without_reading_data(backed_up, repo_path):
    repo, snap, src = backed_up
    victim = os.path.join(src, "unique.bin")
    _, entry = _blob_of(repo, snap, victim)
    os.unlink(_pack_file(repo_path, entry.pack))
    report = open_repo(repo_path).check()
    assert not report.ok
    pack_hex = entry.pack.hex()
    assert any(pack_hex in e and "missing" in e for e in report.errors)
    assert pack_hex in report.damaged_packs
    assert f"{snap.short_id} {victim}" in report.affected


def test_a_deleted_tree_pack_is_found(backed_up, repo_path):
    repo, snap, _ = backed_up
    repo.load_index()
    tree_pack = repo.blobs.lookup(bytes.fromhex(snap.tree)).pack
    os.unlink(_pack_file(repo_path, tree_pack))
    report = open_repo(repo_path).check()
    assert not report.ok
    assert any(tree_pack.hex() in e for e in report.errors)


def test_a_truncated_pack_is_found(backed_up, repo_path, checkers):
    repo, snap, src = backed_up
    _, entry = _blob_of(repo, snap, os.path.join(src, "unique.bin"))
    path = _pack_file(repo_path, entry.pack)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 10)
    report = open_repo(repo_path).check(read_data=True)
    assert not report.ok
    assert entry.pack.hex() in report.damaged_packs


def test_a_damaged_index_file_is_reported(backed_up, repo_path):
    index_dir = repo_path / "index"
    (name,) = os.listdir(index_dir)
    path = index_dir / name
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    report = open_repo(repo_path).check()
    assert not report.ok
    assert any(name in e for e in report.errors)


def test_a_damaged_snapshot_is_reported(backed_up, repo_path):
    _, snap, _ = backed_up
    path = repo_path / "snapshots" / snap.id
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    report = open_repo(repo_path).check()
    assert not report.ok
    assert any(snap.id in e for e in report.errors)


def test_an_unindexed_pack_is_only_a_warning(backed_up, repo_path):
    write(repo_path / "data" / "ff" / ("ff" * 32), b"leftover of an interrupted backup", mode=0o444)
    report = open_repo(repo_path).check()
    assert report.ok
    assert any("ff" * 32 in w for w in report.warnings)
