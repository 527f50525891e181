"""Every storage key comes from format/layout.py; names round-trip and malformed keys are refused."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from amber.format import canonical, layout
from amber.storage.rules import check_key

hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)


@given(st.binary(min_size=32, max_size=32))
def test_pack_keys_round_trip(pid):
    key = layout.pack(pid)
    assert key.startswith(layout.DATA) and check_key(key) == key
    assert layout.pack_id(key) == pid
    assert layout.content_name(key) == pid.hex()


@given(hex64, hex64)
def test_event_keys_round_trip(sid, eid):
    key = layout.event(sid, eid)
    assert key.startswith(f"{layout.LOCKS}{sid}/")
    assert layout.event_key_parts(key) == (sid, eid)
    assert layout.content_name(key) == eid


@given(hex64)
def test_content_names_of_every_named_object(name):
    for key in (
        layout.snapshot(name),
        layout.index_file(name),
        layout.key_file(name),
        layout.run_marker(name),
        layout.prune_plan(name),
        layout.prune_tomb(name),
    ):
        assert check_key(key) == key
        assert layout.content_name(key) == name


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_log_keys_sort_as_numbers(n):
    assert layout.log_entry(n) < layout.log_entry(n + 1) or n + 1 >= 10**12
    assert layout.log_entry(n) == f"log/entries/{n:012d}"
    assert layout.log_checkpoint(n) == f"log/checkpoints/{n:012d}"


def test_malformed_pack_keys_are_not_packs():
    pid = bytes(range(32))
    good = layout.pack(pid)
    for bad in (
        good.replace("/00/", "/01/"),
        good[:-2],
        good + "00",
        "data/zz/" + "z" * 64,
        "data/x",
        layout.DATA + pid.hex(),
    ):
        assert layout.pack_id(bad) is None
    assert layout.event_key_parts("locks/only-two") is None
    assert layout.event_key_parts("snapshots/a/b") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_every_encoding_round_trips_and_is_deterministic(value):
    for encode in (canonical.ascii_json, canonical.utf8_json, canonical.sorted_json, canonical.key_file_json):
        raw = encode(value)
        assert encode(json.loads(raw)) == raw
    assert canonical.ascii_json(value).isascii()


def test_the_encodings_differ_as_documented():
    doc = {"b": "é", "a": [1, 2]}
    assert canonical.ascii_json(doc) == b'{"a":[1,2],"b":"\\u00e9"}'
    assert canonical.utf8_json(doc) == '{"a":[1,2],"b":"é"}'.encode()
    assert canonical.sorted_json(doc) == b'{"a": [1, 2], "b": "\\u00e9"}'
    assert canonical.key_file_json(doc) == b'{\n "a": [\n  1,\n  2\n ],\n "b": "\\u00e9"\n}\n'
    assert canonical.utf8_json({"n": "\udcff"}) == b'{"n":"\\udcff"}'
