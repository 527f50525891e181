"""Every decoder of hostile bytes fails with one of amber's own errors, never another exception.

The property of the fuzz targets in fuzz/ (coverage-guided, run by fuzz/run.sh), checked on
every test run with hypothesis: whatever the bytes, a decoder returns or raises an
AmberError (IntegrityError for damage, exit 20), which the CLI reports naming the object.
Inputs found by fuzzing that still crash a decoder are listed at the end.
"""

from __future__ import annotations

import base64
import io
import json
import os
import warnings
import zipfile

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from amber import evidence
from amber.audit import checkpoint as cpfmt
from amber.crypto import keys as keyfmt
from amber.errors import AmberError
from amber.format import compression, index, pack, snapshot, tree

from sources import init_repo, write

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BUNDLES = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_amber_errors(fn, *args) -> None:
    try:
        result = fn(*args)
        if hasattr(result, "__next__"):  # a generator decodes as it is consumed
            for _ in result:
                pass
    except AmberError:
        pass


def json_values(keys=()):
    """JSON documents, their object keys drawn partly from the names a decoder expects."""
    key = st.sampled_from(list(keys)) | st.text(max_size=8) if keys else st.text(max_size=8)
    leaf = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False)
        | st.text(max_size=20)
    )
    return st.recursive(leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(key, c, max_size=6), max_leaves=20)


def as_json(strategy):
    return strategy.map(lambda v: json.dumps(v).encode())


TREE_KEYS = ("v", "nodes", "name", "type", "mode", "uid", "gid", "size", "content", "sha256", "subtree", "digest")
SNAPSHOT_KEYS = ("v", "time", "hostname", "username", "paths", "tags", "tree", "content_root", "parent", "summary")
KEY_FILE_KEYS = ("version", "kdf", "n", "r", "p", "salt", "data", "created", "host", "user")
MASTER_KEYS = ("data", "ids", "signing", "chunker_seed")


# -- pure decoders ----------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=2048) | as_json(json_values(TREE_KEYS)))
def test_tree_decode(raw):
    only_amber_errors(tree.decode, raw, "tree")


@FAST
@given(st.binary(max_size=2048) | as_json(json_values(SNAPSHOT_KEYS)))
def test_snapshot_decode(raw):
    only_amber_errors(snapshot.decode, raw, "snapshot")


@FAST
@given(st.binary(max_size=2048), st.booleans())
@example(b"\x00" * 4 + b"\xff" * 4, True)
def test_index_decode(raw, magic):
    only_amber_errors(index.decode, (index.MAGIC + raw) if magic else raw, "index")


@FAST
@given(st.binary(max_size=1024), st.integers(min_value=-1, max_value=2**40))
def test_pack_decode_header_and_split_trailer(raw, n):
    only_amber_errors(pack.decode_header, raw, n, "pack")
    only_amber_errors(pack.split_trailer, raw, n, "pack")


@FAST
@given(st.integers(min_value=-1, max_value=300), st.binary(max_size=1024), st.integers(min_value=-2, max_value=2**40))
@example(1, b"\x28\xb5\x2f\xfd", 10)
def test_compression_decompress(comp, payload, raw_length):
    only_amber_errors(compression.decompress, comp, payload, raw_length, "blob")


@FAST
@given(st.binary(max_size=1024) | as_json(json_values(KEY_FILE_KEYS)))
def test_key_file_info(raw):
    only_amber_errors(keyfmt.key_file_info, raw)


@FAST
@given(st.binary(max_size=1024) | as_json(json_values(MASTER_KEYS)))
def test_master_keys_decode(raw):
    only_amber_errors(keyfmt.MasterKeys.decode, raw)


SIGNER = keyfmt.MasterKeys(bytes(32), bytes(32), bytes(range(32)), 0).signing_key()
ORIGIN = "amber/" + "0" * 32
PUBLIC = cpfmt.public_bytes(SIGNER)


def notes():
    """Checkpoint notes: arbitrary bytes, and notes shaped like one, signed or not."""
    line = st.text(max_size=40).filter(lambda s: "\n" not in s)
    shaped = st.builds(
        lambda o, s, r, sig: f"{o}\n{s}\n{r}\n\n{sig}\n".encode(),
        line,
        st.integers(min_value=0, max_value=2**64).map(str) | line,
        st.binary(min_size=0, max_size=40).map(lambda b: base64.b64encode(b).decode()) | line,
        line.map(lambda t: f"\u2014 {ORIGIN} {t}"),
    )
    signed = st.builds(
        lambda size, root: cpfmt.sign(cpfmt.Checkpoint(ORIGIN, size, root), ORIGIN, SIGNER),
        st.integers(min_value=0, max_value=2**64),
        st.binary(min_size=32, max_size=32),
    )
    return st.binary(max_size=1024) | shaped | signed | signed.map(lambda n: n[:-3] + n[-2:])


@FAST
@given(notes())
def test_checkpoint_parse_and_verify(note):
    only_amber_errors(cpfmt.parse, note)
    only_amber_errors(cpfmt.verify, note, ORIGIN, PUBLIC)
    only_amber_errors(cpfmt.parse_verifier_key, note.decode("utf-8", "surrogateescape"))


# -- evidence bundles --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    """The members of a genuine bundle, and the key to check it with."""
    base = tmp_path_factory.mktemp("hostile-bundle")
    saved = {k: os.environ.get(k) for k in ("XDG_STATE_HOME", "XDG_CACHE_HOME")}
    os.environ["XDG_STATE_HOME"], os.environ["XDG_CACHE_HOME"] = str(base / "state"), str(base / "cache")
    try:
        repo = init_repo(base / "repo")
        write(base / "src" / "d" / "a.txt", b"evidence\n")
        write(base / "src" / "b.bin", os.urandom(3000))
        res = repo.backup([str(base / "src")])
        snap = repo.find_snapshot(res.snapshot_id)
        out = base / "b.zip"
        evidence.export(repo, snap, [str(base / "src" / "d" / "a.txt"), str(base / "src" / "b.bin")], str(out))
        vkey = repo.audit.vkey()
        repo.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    with zipfile.ZipFile(out) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    return {"members": members, "vkey": vkey, "dir": base}


def zip_of(entries) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are one of the attacks
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, data in entries:
                try:
                    z.writestr(name, data)
                except (ValueError, IndexError):  # a name the writer itself refuses
                    pass
    return buf.getvalue()


def check(genuine, data: bytes, key: bool = True):
    path = genuine["dir"] / "fuzzed.zip"
    path.write_bytes(data)
    try:
        return evidence.verify_bundle(str(path), genuine["vkey"] if key else None)
    except AmberError:
        return None


NAMES = ["manifest.json", "event.json", "checkpoint.txt", "public-key.txt", "files/0", "files/1", "../x", "/a", "d/"]


@BUNDLES
@given(st.data())
def test_verify_bundle_on_any_bytes_or_members(genuine, data):
    how = data.draw(st.sampled_from(["raw", "members", "mutated-zip"]))
    if how == "raw":
        raw = data.draw(st.binary(max_size=4096))
    elif how == "members":
        names = NAMES + [n for n, _ in genuine["members"] if n.startswith("trees/")]
        entries = data.draw(st.lists(st.tuples(st.sampled_from(names), st.binary(max_size=512)), max_size=8))
        raw = zip_of(entries)
    else:  # the genuine zip's bytes, some of them changed: headers, sizes, offsets, streams
        raw = bytearray(zip_of(genuine["members"]))
        for pos, value in data.draw(
            st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), min_size=1, max_size=6)
        ):
            raw[pos] = value
        raw = bytes(raw)
    check(genuine, raw, key=data.draw(st.booleans()))


@BUNDLES
@given(st.data())
def test_verify_bundle_with_any_member_changed_fails(genuine, data):
    """A genuine bundle with a file, tree or the event changed never verifies, and only an
    AmberError ever escapes."""
    names = [n for n, _ in genuine["members"] if n.startswith(("files/", "trees/")) or n == "event.json"]
    target = data.draw(st.sampled_from(names))
    old = dict(genuine["members"])[target]
    new = data.draw(st.binary(max_size=600) | st.just(old[:-1]) | st.just(old + b" "))
    if new == old:
        return
    rep = check(genuine, zip_of([(n, new if n == target else d) for n, d in genuine["members"]]))
    assert rep is None or not rep.ok, target


def manifest_paths(obj, prefix=()):
    yield prefix
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from manifest_paths(v, (*prefix, k))


@BUNDLES
@given(st.data())
def test_verify_bundle_with_any_manifest_value_replaced(genuine, data):
    """One value of the manifest, at any depth, replaced by any JSON value: the report says
    what failed, or the change was to `created`, the one claim nothing can prove."""
    manifest = json.loads(dict(genuine["members"])["manifest.json"])
    where = data.draw(st.sampled_from(list(manifest_paths(manifest))[1:]))
    value = data.draw(json_values(("path", "member", "size", "sha256", "merkle_path", "seq")))
    obj = manifest
    for k in where[:-1]:
        obj = obj[k]
    if obj[where[-1]] == value and type(obj[where[-1]]) is type(value):
        return
    obj[where[-1]] = value
    raw = json.dumps(manifest).encode()
    rep = check(genuine, zip_of([(n, raw if n == "manifest.json" else d) for n, d in genuine["members"]]))
    assert rep is not None, "a manifest is a report's business, not an exception's"
    assert not rep.ok or (where == ("created",) and isinstance(value, str)), where


# -- found by fuzzing, in decoders this module does not own ---------------------------------------

FOUND = [
    pytest.param(keyfmt.MasterKeys.decode, b"[" * 100_000, id="master-keys-deep-json-RecursionError"),
    pytest.param(
        keyfmt.MasterKeys.decode,
        b'{"data":"'
        + b"A" * 43
        + b'=","ids":"'
        + b"A" * 43
        + b'=","signing":"'
        + b"A" * 43
        + b'=","chunker_seed":1e400}',
        id="master-keys-infinite-seed-OverflowError",
    ),
    pytest.param(keyfmt.key_file_info, b"[" * 100_000, id="key-file-deep-json-RecursionError"),
    pytest.param(
        cpfmt.parse,
        b"amber/x\n" + b"1" * 5000 + b"\n" + b"A" * 43 + b"=\n\n\xe2\x80\x94 a " + b"A" * 91 + b"=\n",
        id="checkpoint-size-of-5000-digits-ValueError",
    ),
]


@pytest.mark.parametrize(("decoder", "raw"), FOUND)
def test_inputs_found_by_fuzzing(decoder, raw):
    only_amber_errors(decoder, raw)
