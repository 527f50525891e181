"""Write a seed corpus per target into fuzz/corpus/<target>/: valid encodings made with
amber's own encoders (and a genuine evidence bundle from a throwaway repository), so the
fuzzer starts past the first checks."""

from __future__ import annotations

import json
import os
import sys
import tempfile

from amber.audit import checkpoint as cpfmt
from amber.crypto import keys as keyfmt
from amber.format import compression, index, pack, snapshot, tree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import targets


def seeds() -> dict[str, list[bytes]]:
    node = {
        "name": "a.txt",
        "type": "file",
        "mode": 420,
        "uid": 0,
        "gid": 0,
        "mtime_ns": 0,
        "ctime_ns": 0,
        "inode": 1,
        "size": 3,
        "content": ["00" * 32],
        "sha256": "11" * 32,
    }
    folder = {
        "name": "d",
        "type": "dir",
        "mode": 493,
        "uid": 0,
        "gid": 0,
        "mtime_ns": 0,
        "ctime_ns": 0,
        "inode": 2,
        "subtree": "22" * 32,
        "digest": "33" * 32,
    }
    entries = [pack.PackEntry(0, 0, 0, 10, 10, bytes(32)), pack.PackEntry(1, 1, 10, 20, 64, bytes(range(32)))]
    header = pack.encode_header(entries)
    comp, payload = compression.compress(b"amber " * 100)
    keys = keyfmt.MasterKeys(bytes(32), bytes(32), bytes(range(32)), 7)
    note = cpfmt.sign(cpfmt.Checkpoint(targets._ORIGIN, 3, bytes(32)), targets._ORIGIN, targets._SIGNER)
    snap = {
        "v": 1,
        "time": "2026-01-01T00:00:00Z",
        "hostname": "h",
        "username": "u",
        "paths": ["/a"],
        "tags": [],
        "tree": "44" * 32,
        "content_root": "55" * 32,
    }
    return {
        "tree_decode": [tree.encode([node, folder]), tree.encode([])],
        "snapshot_decode": [snapshot.encode(snap)],
        "index_decode": [index.encode([(bytes(32), entries)])],
        "pack_header": [(30).to_bytes(4, "little") + header],
        "pack_trailer": [(100).to_bytes(4, "little") + (40).to_bytes(4, "little")],
        "decompress": [bytes([comp]) + (600 + 1).to_bytes(4, "little") + payload],
        "key_file_info": [keyfmt.wrap(keys, "pw", n=2)],
        "master_keys": [keys.encode()],
        "checkpoint_parse": [note],
        "checkpoint_verify": [note, b"s" + note],
        "evidence_verify": _bundles(),
    }


def _bundles() -> list[bytes]:
    from amber.repository import Repository

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("XDG_STATE_HOME", os.path.join(tmp, "state"))
        os.environ.setdefault("XDG_CACHE_HOME", os.path.join(tmp, "cache"))
        src = os.path.join(tmp, "src", "d")
        os.makedirs(src)
        with open(os.path.join(src, "a.txt"), "wb") as f:
            f.write(b"evidence\n")
        repo = Repository.init(os.path.join(tmp, "repo"), "pw", kdf_n=1 << 10)
        res = repo.backup([os.path.dirname(src)])
        snap = repo.find_snapshot(res.snapshot_id)
        out = os.path.join(tmp, "b.zip")
        repo.export_evidence(snap, [os.path.join(src, "a.txt")], out)
        repo.close()
        with open(out, "rb") as f:
            genuine = f.read()
    manifest = json.dumps(targets._template_manifest()).encode()
    return [
        b"\x00" + genuine,
        b"\x00" + genuine + b"k",
        b"\x02\x05" + b'"x"',
        b"\x01\x00" + len(manifest).to_bytes(2, "little") + manifest,
    ]


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for name, items in seeds().items():
        folder = os.path.join(base, name)
        os.makedirs(folder, exist_ok=True)
        for i, data in enumerate(items):
            with open(os.path.join(folder, f"seed-{i}"), "wb") as f:
                f.write(data)
    print(f"seeds written under {base}")


if __name__ == "__main__":
    main()
