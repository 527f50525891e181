"""Settings records and key revocations: their encodings (golden vectors, round trips) and how
the settings in force are derived from records and the audit log's `setting` events."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amber.crypto import keys as keyfile
from amber.crypto.aead import Sealer
from amber.crypto.keys import MasterKeys
from amber.errors import IntegrityError
from amber.format import layout
from amber.repo import keys as keyring
from amber.repo import records as rec
from amber.repo import settings as settingsrec
from amber.storage.memory import MemoryStorage

KEY = bytes(range(32))

# Computed once (FORMAT.md §6.1 and §5.3); never regenerated to make a test pass.
SETTINGS_DOC = {
    "v": 1,
    "version": 3,
    "default_retention": {"duration": "30d", "mode": "compliance"},
    "min_retention": "7d",
}
SETTINGS_JSON = (
    b'{"default_retention": {"duration": "30d", "mode": "compliance"}, "min_retention": "7d", "v": 1, "version": 3}'
)
SETTINGS_ENVELOPE = (
    "0101060f43f1ae42a8b46859d8474e127a477195cd9867bf0c9b1e531fadc5a68bf7987529484210d1a7c07a03d331e757ca8526"
    "8aef83293be5f9a8f1a355eeeba8d898b5a87d993454f74bac62f67833399b2264bbbaabb930c1d9993d6c3cec1955548e72041e"
    "fb3b70c37829c0e4a883f7f530ebb62d7a746101f7bee8a2dc236a98bc6800e35b7fb523"
)
REVOCATION_DOC = {
    "v": 1,
    "revoked": "ab" * 32,
    "key": "cd" * 32,
    "time": "2031-01-01T00:00:00Z",
    "host": "h",
    "user": "u",
    "by": "ef" * 32,
}
REVOCATION_JSON = (
    b'{"by": "'
    + b"ef" * 32
    + b'", "host": "h", "key": "'
    + b"cd" * 32
    + b'", "revoked": "'
    + b"ab" * 32
    + b'", "time": "2031-01-01T00:00:00Z", "user": "u", "v": 1}'
)
ZERO_SALT_IDENTITY = "374708fff7719dd5979ec875d56cd2286f6d3cf7ec317a3b25632aab28ec37bb"  # SHA-256 of 16 zero bytes


def records() -> rec.Records:
    return rec.Records(MemoryStorage(), Sealer(KEY))


def test_settings_record_golden_vector():
    assert settingsrec.SETTINGS.encode(SETTINGS_DOC) == SETTINGS_JSON
    plain = Sealer(KEY).open(6, bytes.fromhex(SETTINGS_ENVELOPE))
    assert plain == SETTINGS_JSON
    assert settingsrec.SETTINGS.decode(plain, "settings/000000000003") == SETTINGS_DOC
    assert layout.settings_record(3) == "settings/000000000003"
    assert layout.settings_version("settings/000000000003") == 3
    assert layout.settings_version("settings/3") is None


def test_revocation_golden_vector_and_identity():
    assert keyring.REVOCATION.encode(REVOCATION_DOC) == REVOCATION_JSON
    assert keyring.REVOCATION.decode(REVOCATION_JSON, "revoked/x") == REVOCATION_DOC
    doc = json.loads(keyfile.wrap(MasterKeys.generate(), "pw", n=1 << 2))
    doc["salt"] = base64.b64encode(bytes(16)).decode()
    assert keyring.identity(json.dumps(doc).encode()) == ZERO_SALT_IDENTITY
    doc["host"] = "elsewhere"  # the identity stays with the key, not with the file's bytes
    assert keyring.identity(json.dumps(doc).encode()) == ZERO_SALT_IDENTITY


durations = st.builds(
    lambda n, u: f"{n}{u}", st.integers(1, 999_999_999), st.sampled_from(["s", "m", "h", "d", "w", "mo", "y"])
)
retentions = st.none() | st.fixed_dictionaries(
    {"duration": durations, "mode": st.sampled_from(["governance", "compliance"])}
)


@given(version=st.integers(1, 10**12 - 1), default=retentions, minimum=st.none() | durations)
def test_settings_records_round_trip(version, default, minimum):
    r = records()
    s = settingsrec.Settings(version, default, minimum)
    _name, raw = r.seal(settingsrec.SETTINGS, s.record())
    assert r.open(settingsrec.SETTINGS, layout.settings_record(version), raw, named=False) == s.record()


hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)


@given(revoked=hex64, key=hex64, text=st.text(max_size=50), by=st.text(max_size=70))
def test_revocations_round_trip(revoked, key, text, by):
    r = records()
    doc = {"v": 1, "revoked": revoked, "key": key, "time": "2031-01-01T00:00:00Z", "host": text, "user": text, "by": by}
    name, raw = r.seal(keyring.REVOCATION, doc)
    assert r.open(keyring.REVOCATION, layout.revocation(name), raw) == doc


@pytest.mark.parametrize(
    "doc",
    [
        {**SETTINGS_DOC, "version": 0},
        {**SETTINGS_DOC, "version": True},
        {**SETTINGS_DOC, "min_retention": "0d"},
        {**SETTINGS_DOC, "default_retention": {"duration": "30d", "mode": "forever"}},
        {**SETTINGS_DOC, "v": 2},
        REVOCATION_DOC,
    ],
)
def test_malformed_settings_records_are_integrity_errors(doc):
    with pytest.raises(IntegrityError, match="settings/000000000001"):
        settingsrec.SETTINGS.decode(json.dumps(doc).encode(), "settings/000000000001")


def put_version(r: rec.Records, s: settingsrec.Settings) -> dict:
    """Store a settings record and return the `setting` event that records it."""
    raw, sha = settingsrec.seal(r, s)
    r.storage.put(layout.settings_record(s.version), raw)
    return {"seq": s.version, "type": "setting", "details": {"sha256": sha, **s.to_json()}}


def test_only_logged_records_count_and_the_minimum_never_goes_down():
    r = records()
    config = {"default_retention": None, "min_retention": "7d"}
    ev1 = put_version(r, settingsrec.Settings(1, None, "10d"))
    put_version(r, settingsrec.Settings(2, None, "1s"))  # planted: no event
    logged = {1: ev1}
    got, problems = settingsrec.effective(r, config, lambda: logged)
    assert got == settingsrec.Settings(1, None, "10d")
    assert len(problems) == 1 and "settings/000000000002" in problems[0] and "not recorded" in problems[0]
    assert settingsrec.next_version(r, logged) == 3

    # a logged version replaced behind the log: reported, and its minimum still holds
    ev3 = put_version(r, settingsrec.Settings(3, None, "30d"))
    r.storage.delete(layout.settings_record(3))
    r.storage.put(layout.settings_record(3), settingsrec.seal(r, settingsrec.Settings(3, None, "1s"))[0])
    got, problems = settingsrec.effective(r, config, lambda: {1: ev1, 3: ev3})
    assert got.min_retention == "30d" and any("does not match its `setting` event" in p for p in problems)


def test_no_records_read_no_log():
    def never():
        raise AssertionError("the log was read although no settings record exists")

    got, problems = settingsrec.effective(records(), {"default_retention": None}, never)
    assert got == settingsrec.Settings(0, None, None) and problems == []
