"""Master keys and the password-wrapped key files that hold them."""

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.clock import FakeClock
from amber.crypto import keys as keyfile
from amber.crypto.keys import MasterKeys
from amber.errors import IntegrityError, WrongPassword

FAST = settings(max_examples=50, deadline=None)
N = 16  # scrypt cost for tests: the format, not the hardness, is under test
passwords = st.text(max_size=40)


@FAST
@given(password=passwords)
def test_wrap_then_unwrap_round_trips(password):
    mk = MasterKeys.generate()
    raw = keyfile.wrap(mk, password, n=N, clock=FakeClock())
    assert keyfile.unwrap(raw, password) == mk


@FAST
@given(password=passwords, other=passwords)
def test_wrong_password_is_refused(password, other):
    if password == other:
        return
    raw = keyfile.wrap(MasterKeys.generate(), password, n=N)
    with pytest.raises(WrongPassword):
        keyfile.unwrap(raw, other)


def test_key_file_records_its_parameters():
    raw = keyfile.wrap(MasterKeys.generate(), "correct horse battery", n=N, clock=FakeClock())
    doc = json.loads(raw)
    assert doc["kdf"] == "scrypt" and doc["version"] == 1
    assert (doc["n"], doc["r"], doc["p"]) == (N, keyfile.SCRYPT_R, keyfile.SCRYPT_P)
    assert len(base64.b64decode(doc["salt"])) == 16
    assert doc["created"] == "2030-01-01T00:00:00Z"
    assert keyfile.key_file_info(raw)["n"] == N
    assert b"correct horse" not in raw  # the password itself is never stored


def test_two_wraps_of_the_same_keys_differ():
    mk = MasterKeys.generate()
    a, b = keyfile.wrap(mk, "pw", n=N), keyfile.wrap(mk, "pw", n=N)
    assert json.loads(a)["salt"] != json.loads(b)["salt"]
    assert keyfile.unwrap(a, "pw") == keyfile.unwrap(b, "pw") == mk


def test_master_keys_json_round_trips():
    mk = MasterKeys.generate()
    assert MasterKeys.decode(mk.encode()) == mk
    assert 0 <= mk.chunker_seed < 2**63


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"data": "AAAA"}',
        b'{"data": "!!", "ids": "AAAA", "signing": "AAAA", "chunker_seed": 1}',
        json.dumps(
            {
                "data": base64.b64encode(bytes(31)).decode(),
                "ids": base64.b64encode(bytes(32)).decode(),
                "signing": base64.b64encode(bytes(32)).decode(),
                "chunker_seed": 1,
            }
        ).encode(),
        json.dumps(
            {
                "data": base64.b64encode(bytes(32)).decode(),
                "ids": base64.b64encode(bytes(32)).decode(),
                "signing": base64.b64encode(bytes(32)).decode(),
                "chunker_seed": "x",
            }
        ).encode(),
    ],
)
def test_malformed_key_material_is_an_integrity_error(raw):
    with pytest.raises(IntegrityError):
        MasterKeys.decode(raw)


def _key_file(**changes) -> bytes:
    doc = json.loads(keyfile.wrap(MasterKeys.generate(), "pw", n=N))
    doc.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        del doc[k]
    return json.dumps(doc).encode()


ABSURD = [
    {"n": 1 << 40},
    {"n": 1 << 23},
    {"n": 3},
    {"n": 1000},
    {"n": 0},
    {"n": -16},
    {"n": 1},
    {"n": 16.0},
    {"n": "16"},
    {"n": None},
    {"r": 0},
    {"r": 1 << 20},
    {"p": 0},
    {"p": 1 << 20},
    {"r": 65, "p": 1},
    {"r": 8, "p": 9},
    {"r": None},
    {"p": "1"},
]


@pytest.mark.parametrize("changes", ABSURD, ids=lambda c: ",".join(f"{k}={v!r}" for k, v in c.items()))
def test_absurd_scrypt_parameters_are_refused_before_any_work(changes):
    raw = _key_file(**changes)
    with pytest.raises(IntegrityError):
        keyfile.key_file_info(raw)
    with pytest.raises(IntegrityError):
        keyfile.unwrap(raw, "pw")


def test_scrypt_memory_is_bounded():
    """n and r within their own limits may still ask for 32 GiB together (128 * n * r bytes)."""
    with pytest.raises(IntegrityError):
        keyfile.key_file_info(_key_file(n=1 << 22, r=64, p=1))


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"version": None},
        {"kdf": "argon2id"},
        {"kdf": None},
        {"salt": "***"},
        {"salt": None},
        {"salt": 5},
        {"data": "***"},
        {"data": None},
        {"data": ["x"]},
    ],
)
def test_malformed_key_files_are_integrity_errors(changes):
    with pytest.raises(IntegrityError):
        keyfile.unwrap(_key_file(**changes), "pw")


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", b"null", b"[1]", b'"key"', b"{"])
def test_key_files_that_are_not_json_objects_are_integrity_errors(raw):
    with pytest.raises(IntegrityError):
        keyfile.key_file_info(raw)


def test_damaged_sealed_keys_read_as_a_wrong_password():
    doc = json.loads(keyfile.wrap(MasterKeys.generate(), "pw", n=N))
    sealed = bytearray(base64.b64decode(doc["data"]))
    sealed[-1] ^= 1
    doc["data"] = base64.b64encode(bytes(sealed)).decode()
    with pytest.raises(WrongPassword):
        keyfile.unwrap(json.dumps(doc).encode(), "pw")


def test_blob_ids_are_keyed():
    a, b = MasterKeys.generate(), MasterKeys.generate()
    assert a.blob_id(b"same data") == a.blob_id(b"same data")
    assert a.blob_id(b"same data") != b.blob_id(b"same data")
    assert len(a.blob_id(b"")) == 32


# -- format 2: roles, the content key pair and author keys --------------------------------------

keys32 = st.binary(min_size=32, max_size=32)


@FAST
@given(
    data=keys32,
    ids=keys32,
    signing=keys32,
    author=keys32,
    seed=st.integers(0, keyfile.MAX_CHUNKER_SEED),
    backup=st.booleans(),
    password=passwords,
)
def test_format_2_material_round_trips_in_key_files(data, ids, signing, author, seed, backup, password):
    from amber.crypto import content

    private, public = content.generate()
    full = MasterKeys(data, ids, signing, seed, keyfile.FULL, public, private, author)
    mk = full.backup_key() if backup else full
    assert MasterKeys.decode(mk.encode()) == mk
    raw = keyfile.wrap(mk, password, n=N, clock=FakeClock())
    assert json.loads(raw)["role"] == mk.role
    assert keyfile.unwrap(raw, password) == mk
    assert mk.can_read is (not backup)


def _material(**changes) -> bytes:
    from amber.crypto import content

    private, public = content.generate()
    doc = json.loads(MasterKeys.generate(content=False).encode())
    doc.update(
        role="full",
        content_public=base64.b64encode(public).decode(),
        content_private=base64.b64encode(private).decode(),
        author=base64.b64encode(bytes(32)).decode(),
    )
    for k, v in changes.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "changes",
    [
        {"content_private": None},  # claims full, holds no private key
        {"role": "backup"},  # a backup key holding a private key
        {"role": "admin"},
        {"role": 1},
        {"content_private": base64.b64encode(bytes(range(32))).decode()},  # not the public key's
        {"content_public": base64.b64encode(bytes(31)).decode()},
        {"author": base64.b64encode(bytes(33)).decode()},
        {"author": None},
        {"content_public": None},  # a role and a private key without a public key
    ],
)
def test_inconsistent_format_2_material_is_an_integrity_error(changes):
    with pytest.raises(IntegrityError):
        MasterKeys.decode(_material(**changes))


@FAST
@given(
    junk=st.dictionaries(
        st.sampled_from(["role", "content_public", "content_private", "author"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=50), st.booleans()),
    )
)
def test_hostile_format_2_fields_only_raise_integrity_errors(junk):
    raw = _material(**junk)
    try:
        MasterKeys.decode(raw)
    except IntegrityError:
        pass


def test_a_key_file_whose_plaintext_role_was_edited_is_refused():
    mk = MasterKeys.generate().backup_key()
    doc = json.loads(keyfile.wrap(mk, "pw", n=N, clock=FakeClock()))
    doc["role"] = "full"
    with pytest.raises(IntegrityError, match="role"):
        keyfile.unwrap(json.dumps(doc).encode(), "pw")
    doc["role"] = "root"
    with pytest.raises(IntegrityError, match="role"):
        keyfile.key_file_info(json.dumps(doc).encode())
