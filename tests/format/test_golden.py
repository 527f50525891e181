"""Golden vectors: byte layouts pinned so that any format change is caught.

The expected values in tests/vectors/ were computed once and are never
regenerated to make a test pass: a failure here means the on-disk format
changed, which needs a new format version and a migration path.
"""

import base64
import json
import os
import shutil
from pathlib import Path

import pytest

from amber.crypto import content
from amber.crypto import keys as keyfile
from amber.crypto.aead import KIND_SNAPSHOT, KIND_SNAPSHOT_HEADER, Sealer
from amber.crypto.keys import MasterKeys
from amber.errors import IntegrityError
from amber.format import index as indexfmt
from amber.format import pack as packfmt
from amber.format import snapshot as snapfmt
from amber.format import tree as treefmt
from amber.format.index import IndexedPack
from amber.format.pack import PackEntry
from amber.repository import Repository

from sources import describe_entry

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def load(name):
    with open(VECTORS / name) as f:
        return json.load(f)


def entry(d):
    return PackEntry(d["type"], d["comp"], d["offset"], d["length"], d["raw_length"], bytes.fromhex(d["id"]))


def test_pack_header_layout():
    v = load("pack_header.json")
    entries = [entry(e) for e in v["entries"]]
    encoded = bytes.fromhex(v["encoded_hex"])
    assert packfmt.encode_header(entries).hex() == v["encoded_hex"]
    assert packfmt.decode_header(encoded, v["body_length"], "pack") == entries
    t = v["trailer"]
    assert packfmt.trailer(t["header_envelope_length"]).hex() == t["encoded_hex"]


def test_index_layout():
    v = load("index.json")
    packs = [(bytes.fromhex(p["pack"]), [entry(e) for e in p["entries"]]) for p in v["packs"]]
    assert indexfmt.encode(packs).hex() == v["encoded_hex"]
    assert [(p.pack, p.entries) for p in indexfmt.decode(bytes.fromhex(v["encoded_hex"]))] == packs


def test_tree_encoding_and_merkle_digest():
    v = load("tree.json")
    raw = treefmt.encode(v["nodes"])
    assert raw == v["encoded"].encode("ascii")
    assert treefmt.digest(raw) == v["digest"]
    assert treefmt.decode(raw) == sorted(v["nodes"], key=lambda n: n["name"])
    assert treefmt.encode([]) == v["empty_encoded"].encode()
    assert treefmt.digest(treefmt.encode([])) == v["empty_digest"]


def test_blob_ids():
    v = load("blob_ids.json")
    mk = MasterKeys(data=bytes(32), ids=bytes.fromhex(v["id_key_hex"]), signing=bytes(32), chunker_seed=0)
    data = {"mebibyte": bytes(i % 251 for i in range(1 << 20))}
    for vec in v["vectors"]:
        payload = data.get(vec["name"], bytes.fromhex(vec.get("data_hex", "")))
        assert mk.blob_id(payload).hex() == vec["id"], vec["name"]
    import blake3

    u = v["unkeyed"]
    assert blake3.blake3(bytes.fromhex(u["data_hex"])).hexdigest() == u["hash"]


def test_envelopes_open():
    v = load("envelopes.json")
    sealer = Sealer(bytes.fromhex(v["key_hex"]))
    for vec in v["vectors"]:
        env = bytes.fromhex(vec["envelope_hex"])
        assert env[:3] == bytes((1, 1, vec["kind"]))
        assert sealer.open(vec["kind"], env) == bytes.fromhex(vec["plaintext_hex"])


def test_key_file_unwraps():
    v = load("keyfile.json")
    mk = keyfile.unwrap(v["key_file"].encode(), v["password"])
    want = v["master_keys"]
    assert mk == MasterKeys(
        bytes.fromhex(want["data"]), bytes.fromhex(want["ids"]), bytes.fromhex(want["signing"]), want["chunker_seed"]
    )


def test_chunk_boundaries():
    import blake3
    import pyfastcdc

    from amber import repository

    v = load("chunker.json")
    assert (v["avg"], v["min"], v["max"]) == (repository.CHUNK_AVG, repository.CHUNK_MIN, repository.CHUNK_MAX)
    data = blake3.blake3(b"amber chunker vector").digest(length=v["data_length"])
    c = pyfastcdc.FastCDC(v["avg"], min_size=v["min"], max_size=v["max"], seed=v["seed"])
    assert [ch.length for ch in c.cut_buf(data)] == v["lengths"]


# -- a repository written by an earlier version --------------------------------------------


@pytest.fixture
def frozen(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    doc = load("repo-v1.json")
    shutil.copytree(VECTORS / "repo-v1", tmp_path / "repo")
    return doc, Repository.open(str(tmp_path / "repo"), doc["password"])


def test_frozen_repository_opens_and_lists_its_snapshots(frozen):
    doc, repo = frozen
    assert repo.id == doc["repository_id"]
    snaps = repo.snapshots()
    assert [s.id for s in snaps] == [s["id"] for s in doc["snapshots"]]
    for got, want in zip(snaps, doc["snapshots"]):
        j = got.to_json()
        assert (j["time"], j["tree"], j["content_root"], j["hostname"], j["tags"], j["paths"]) == (
            want["time"],
            want["tree"],
            want["content_root"],
            want["hostname"],
            want["tags"],
            want["paths"],
        )


def test_frozen_repository_checks_clean(frozen):
    _, repo = frozen
    report = repo.check(read_data=True)
    assert report.errors == []
    assert report.snapshots == 2 and report.packs_read == report.packs > 0


@pytest.mark.parametrize("which", [0, 1])
def test_frozen_repository_restores(frozen, tmp_path, which):
    doc, repo = frozen
    want = doc["snapshots"][which]
    snap = repo.find_snapshot(want["id"])
    target = tmp_path / "restore"
    repo.restore(snap, str(target), verify=True)
    root = os.path.join(str(target), doc["source"].lstrip("/"))
    got = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(folder, name)
            got[os.fsencode(os.path.relpath(p, root)).hex()] = describe_entry(p)
    assert got == want["files"]
    for group in doc["hardlinks"]:
        inodes = {os.lstat(os.path.join(root.encode(), bytes.fromhex(h))).st_ino for h in group}
        assert len(inodes) == 1


def test_backup_chunk_boundaries_are_stable(frozen, tmp_path):
    """The chunking a backup does, end to end, with the frozen repository's secret seed."""
    import blake3

    doc, repo = frozen
    v = load("chunker.json")
    src = tmp_path / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(blake3.blake3(b"amber chunker vector").digest(length=v["data_length"]))
    result = repo.backup([str(src)])
    fresh = Repository.open(str(tmp_path / "repo"), doc["password"])
    node = fresh.node_at(fresh.find_snapshot(result.snapshot_id), str(src / "data.bin"))
    fresh.load_index()
    lengths = [fresh.blobs.lookup(bytes.fromhex(h)).raw_length for h in node["content"]]
    assert lengths == v["repo_v1_backup"]["lengths"]


# -- format 2: content sealed to the repository's content key ----------------------------------


def test_content_key_agreement_and_envelopes():
    v = load("content.json")
    recipient = bytes.fromhex(v["recipient_public_hex"])
    assert content.public_of(bytes.fromhex(v["recipient_private_hex"])) == recipient
    assert content.fingerprint(recipient).hex() == v["recipient_fingerprint_hex"]
    writer = content.new_writer(recipient, bytes.fromhex(v["writer_private_hex"]))
    assert writer.public.hex() == v["writer_public_hex"] and writer.key.hex() == v["content_key_hex"]
    opener = content.ContentOpener(bytes.fromhex(v["recipient_private_hex"]))
    for vec in v["vectors"]:
        env = bytes.fromhex(vec["envelope_hex"])
        assert env[:3] == bytes((1, 2, vec["kind"]))
        assert opener.sealer(writer.public, "vector").open(vec["kind"], env) == bytes.fromhex(vec["plaintext_hex"])
        with pytest.raises(IntegrityError):  # never under the data key's algorithm
            Sealer(writer.key).open(vec["kind"], env)


def test_key_files_of_format_2_unwrap():
    v = load("content.json")["key_files"]
    full = keyfile.unwrap(v["full"].encode(), v["password"])
    backup = keyfile.unwrap(v["backup"].encode(), v["password"])
    for k in (full, backup):
        assert (k.data.hex(), k.ids.hex(), k.signing.hex(), k.chunker_seed) == (
            v["data_hex"],
            v["ids_hex"],
            v["signing_hex"],
            v["chunker_seed"],
        )
    assert full.role == "full" and full.content_private is not None and full.author.hex() == v["full_author_hex"]
    assert backup.role == "backup" and backup.content_private is None and backup.author.hex() == v["backup_author_hex"]
    assert backup.content_public == full.content_public
    assert json.loads(v["backup"])["role"] == "backup" and json.loads(v["full"])["role"] == "full"


def test_index_of_format_2_layout():
    v = load("content.json")["index_v2"]
    packs = [
        IndexedPack(
            bytes.fromhex(p["pack"]), [entry(e) for e in p["entries"]], p["writer"] and bytes.fromhex(p["writer"])
        )
        for p in v["packs"]
    ]
    assert indexfmt.encode(packs).hex() == v["encoded_hex"]
    assert list(indexfmt.decode(bytes.fromhex(v["encoded_hex"]))) == packs


def test_snapshot_of_format_2_opens():
    v = load("content.json")
    keys = v["key_files"]
    s = v["snapshot_v2"]
    stored = bytes.fromhex(s["stored_hex"])
    head_env, doc_env = snapfmt.split_sealed(stored, "vector")
    head = snapfmt.decode_header(Sealer(bytes.fromhex(keys["data_hex"])).open(KIND_SNAPSHOT_HEADER, head_env), "vector")
    assert head == s["header"]
    opener = content.ContentOpener(bytes.fromhex(v["recipient_private_hex"]))
    writer = base64.b64decode(head["writer"])
    doc = snapfmt.decode(opener.sealer(writer, "vector").open(KIND_SNAPSHOT, doc_env), "vector")
    assert doc == s["document"] and snapfmt.header_matches(head, doc)


def test_argon2id_key_file_unwraps():
    """An Argon2id key file (FORMAT.md §5.2): the KDF output pinned, then the master keys."""
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    v = load("keyfile_argon2id.json")
    doc = json.loads(v["key_file"])
    assert doc["kdf"] == "argon2id" and (doc["memory"], doc["iterations"], doc["lanes"]) == (256, 2, 2)
    kdf = Argon2id(salt=base64.b64decode(doc["salt"]), length=32, iterations=2, lanes=2, memory_cost=256)
    assert kdf.derive(v["password"].encode()).hex() == v["wrapping_key_hex"]
    mk = keyfile.unwrap(v["key_file"].encode(), v["password"])
    want = v["master_keys"]
    assert mk == MasterKeys(
        bytes.fromhex(want["data"]), bytes.fromhex(want["ids"]), bytes.fromhex(want["signing"]), want["chunker_seed"]
    )
