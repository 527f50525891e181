"""Snapshot documents."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.errors import IntegrityError
from amber.format import snapshot as snapfmt

DOC = {
    "v": 1,
    "time": "2030-01-01T00:00:00Z",
    "hostname": "h",
    "paths": ["/a"],
    "tree": "00" * 32,
    "content_root": "11" * 32,
    "tags": ["x"],
    "summary": {"files_total": 1},
}


def test_round_trip():
    raw = snapfmt.encode(DOC)
    assert snapfmt.decode(raw, "snapshot") == DOC
    assert snapfmt.encode(dict(reversed(list(DOC.items())))) == raw  # canonical


@pytest.mark.parametrize("missing", snapfmt.REQUIRED)
def test_required_fields(missing):
    doc = {k: v for k, v in DOC.items() if k != missing}
    with pytest.raises(IntegrityError):
        snapfmt.decode(snapfmt.encode(doc), "snapshot")


@pytest.mark.parametrize("raw", [b"", b"[]", b"null", b'{"v":2}', b"\xff", b"{"])
def test_malformed(raw):
    with pytest.raises(IntegrityError):
        snapfmt.decode(raw, "snapshot")


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(max_size=200))
def test_garbage_is_an_integrity_error(garbage):
    with pytest.raises(IntegrityError):
        snapfmt.decode(garbage, "snapshot")


# -- format 2: the header and the sealed document -------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_format_2_objects_of_junk_only_raise_integrity_errors(raw):
    for candidate in (raw, snapfmt.MAGIC2 + raw):
        try:
            snapfmt.split_sealed(candidate, "snapshots/x")
        except IntegrityError:
            pass
        try:
            snapfmt.decode_header(candidate, "snapshots/x")
        except IntegrityError:
            pass


@settings(max_examples=100, deadline=None)
@given(header=st.binary(min_size=1, max_size=200), document=st.binary(min_size=1, max_size=200))
def test_format_2_objects_split_back(header, document):
    assert snapfmt.split_sealed(snapfmt.join_sealed(header, document), "s") == (header, document)


def test_a_header_says_what_its_document_says():
    doc = {
        "v": 1,
        "time": "2026-12-01T00:00:00Z",
        "hostname": "h",
        "paths": ["/a"],
        "tags": ["x"],
        "tree": "a" * 64,
        "content_root": "b" * 64,
    }
    head = snapfmt.decode_header(snapfmt.encode(snapfmt.header_of(doc, "d3JpdGVy", "00" * 8, ["c" * 64])), "s")
    assert snapfmt.header_matches(head, doc)
    for field, value in (("hostname", "other"), ("paths", ["/b"]), ("tags", []), ("time", "2027-01-01T00:00:00Z")):
        assert not snapfmt.header_matches(dict(head, **{field: value}), doc)
    for field, value in (("recipient", "XYZ"), ("packs", ["nothex"]), ("paths", ["relative"]), ("v", 1)):
        with pytest.raises(IntegrityError):
            snapfmt.decode_header(snapfmt.encode(dict(head, **{field: value})), "s")
