"""The fuzz targets: one function per decoder of hostile bytes, each taking any bytes.

Each target feeds its input to one of amber's pure decoders (or, for evidence bundles,
to `verify_bundle` on a zip made from the input) and lets only amber's own errors
(`AmberError` and its subclasses) pass: anything else escaping is a finding. The
functions need nothing but amber, so a crashing input can be replayed without atheris:

    python fuzz/targets.py TARGET FILE...
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable

from amber.audit import checkpoint as cpfmt
from amber.crypto import keys as keyfmt
from amber.errors import AmberError
from amber.format import compression, index, pack, snapshot, tree

TARGETS: dict[str, Callable[[bytes], None]] = {}


def target(fn: Callable[[bytes], None]) -> Callable[[bytes], None]:
    TARGETS[fn.__name__] = fn
    return fn


def _u32(data: bytes) -> tuple[int, bytes]:
    """A little-endian number from the first 4 bytes, and the rest."""
    return int.from_bytes(data[:4], "little"), data[4:]


@target
def tree_decode(data: bytes) -> None:
    tree.decode(data, "fuzz")


@target
def snapshot_decode(data: bytes) -> None:
    snapshot.decode(data, "fuzz")


@target
def index_decode(data: bytes) -> None:
    for _pack_id, _entries in index.decode(data, "fuzz"):
        pass


@target
def pack_header(data: bytes) -> None:
    body_len, rest = _u32(data)
    pack.decode_header(rest, body_len, "fuzz")


@target
def pack_trailer(data: bytes) -> None:
    size, rest = _u32(data)
    pack.split_trailer(rest, size, "fuzz")


@target
def decompress(data: bytes) -> None:
    comp = data[0] if data else 0
    raw_length, payload = _u32(data[1:])
    compression.decompress(comp, payload, raw_length % (compression.MAX_BLOB_RAW + 2) - 1, "fuzz")


@target
def key_file_info(data: bytes) -> None:
    keyfmt.key_file_info(data)


@target
def master_keys(data: bytes) -> None:
    keyfmt.MasterKeys.decode(data)


@target
def checkpoint_parse(data: bytes) -> None:
    cpfmt.parse(data)


_SIGNER = keyfmt.MasterKeys(bytes(32), bytes(32), bytes(range(32)), 0).signing_key()
_ORIGIN = "amber/" + "0" * 32
_PUBLIC = cpfmt.public_bytes(_SIGNER)


@target
def checkpoint_verify(data: bytes) -> None:
    """A note against a fixed key; half the inputs carry a valid signature over a fuzzed body,
    so the checks after the signature are reached too."""
    if data[:1] == b"s":
        body = data[1:].split(b"\n\n", 1)[0]
        lines = body.decode("utf-8", "replace").split("\n") + ["", "", ""]
        try:
            size = int(lines[1]) if lines[1].isascii() and lines[1].isdigit() and len(lines[1]) < 20 else 0
        except ValueError:
            size = 0
        root = base64.b64decode(base64.b64encode(lines[2].encode()[:32].ljust(32, b"\0")))
        data = cpfmt.sign(cpfmt.Checkpoint(lines[0] or _ORIGIN, size, root), _ORIGIN, _SIGNER)
    cpfmt.verify(data, _ORIGIN, _PUBLIC)
    try:
        text = data.decode("utf-8", "surrogateescape")
    except UnicodeError:
        return
    cpfmt.parse_verifier_key(text)


# -- evidence bundles ---------------------------------------------------------------------------

MEMBERS = (
    "manifest.json",
    "event.json",
    "checkpoint.txt",
    "public-key.txt",
    "files/0",
    "files/1",
    "trees/" + "0" * 64 + ".json",
    "../x",
    "/abs",
    "dir/",
    "",
)


def _bundle_from(data: bytes) -> bytes:
    """The zip a fuzz input stands for. First byte: 0 the input is the zip itself; 1 members
    named from a fixed list, each `u8 name | u16 length | bytes`; 2 a manifest-shaped JSON
    whose values are taken from the input, with the other members."""
    mode, rest = (data[0] % 3, data[1:]) if data else (0, b"")
    if mode == 0:
        return rest
    out = _BytesZip()
    if mode == 1:
        while len(rest) >= 3:
            name = MEMBERS[rest[0] % len(MEMBERS)]
            n = int.from_bytes(rest[1:3], "little")
            out.add(name, rest[3 : 3 + n])
            rest = rest[3 + n :]
        return out.close()
    manifest = _template_manifest()
    try:
        value = json.loads(rest[1:])
    except (ValueError, RecursionError):
        value = rest[1:].decode("latin-1")
    paths = _paths(manifest)
    where = paths[rest[0] % len(paths)] if rest else paths[0]
    _put(manifest, where, value)
    out.add("manifest.json", json.dumps(manifest).encode())
    out.add("event.json", b"{}")
    out.add("checkpoint.txt", b"")
    out.add("public-key.txt", cpfmt.verifier_key(_ORIGIN, _PUBLIC).encode())
    out.add("files/0", b"x")
    return out.close()


class _BytesZip:
    def __init__(self) -> None:
        import io

        self.buf = io.BytesIO()
        self.z = zipfile.ZipFile(self.buf, "w", compression=zipfile.ZIP_DEFLATED)

    def add(self, name: str, data: bytes) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.z.writestr(name, data)
            except (ValueError, IndexError):  # a name the writer itself refuses
                pass

    def close(self) -> bytes:
        self.z.close()
        return self.buf.getvalue()


def _template_manifest() -> dict:
    return {
        "format": "amber-evidence-1",
        "repository": "0" * 32,
        "created": "2026-01-01T00:00:00Z",
        "snapshot": {
            "id": "1" * 64,
            "time": "2026-01-01T00:00:00Z",
            "hostname": "h",
            "username": "u",
            "paths": ["/a"],
            "tags": [],
            "tree": "2" * 64,
            "content_root": "3" * 64,
        },
        "files": [
            {
                "path": "/a/b",
                "member": "files/0",
                "size": 1,
                "sha256": "4" * 64,
                "mode": 420,
                "uid": 0,
                "gid": 0,
                "mtime_ns": 0,
                "merkle_path": ["3" * 64, "5" * 64],
            }
        ],
        "log": {"origin": _ORIGIN, "seq": 0, "tree_size": 1, "leaf_hash": "6" * 64, "inclusion_proof": []},
    }


def _paths(obj, prefix=()) -> list[tuple]:
    out = [prefix]
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for k, v in items:
        out.extend(_paths(v, (*prefix, k)))
    return out


def _put(obj, path: tuple, value) -> None:
    if not path:
        return
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


_TMP = tempfile.mkdtemp(prefix="amber-fuzz-")


@target
def evidence_verify(data: bytes) -> None:
    from amber.evidence import verify_bundle

    path = os.path.join(_TMP, "bundle.zip")
    with open(path, "wb") as f:
        f.write(_bundle_from(data))
    verify_bundle(path, None if data[-1:] == b"k" else cpfmt.verifier_key(_ORIGIN, _PUBLIC))


def only_amber_errors(fn: Callable[[bytes], None], data: bytes) -> None:
    """Run a target; AmberError is the decoder refusing the input as it should."""
    try:
        fn(data)
    except AmberError:
        pass


if __name__ == "__main__":
    name, *files = sys.argv[1:]
    for p in files:
        with open(p, "rb") as f:
            only_amber_errors(TARGETS[name], f.read())
        print(f"{p}: no finding")
