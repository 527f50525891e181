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
