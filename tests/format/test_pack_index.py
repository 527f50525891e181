"""Pack headers and index files: round trips, and damage that must be refused cleanly."""

import re
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.errors import IntegrityError
from amber.format import index as indexfmt
from amber.format import pack as packfmt
from amber.format.index import IndexedPack
from amber.format.pack import BLOB_DATA, BLOB_TREE, REC_LEN, PackEntry

FAST = settings(max_examples=80, deadline=None)

u32 = st.integers(0, 2**32 - 1)
ids = st.binary(min_size=32, max_size=32)


@st.composite
def blob_sizes(draw):
    """(type, compression, stored length, raw length) within the format's limits."""
    t = draw(st.sampled_from([BLOB_DATA, BLOB_TREE]))
    limit = packfmt.MAX_DATA_RAW if t == BLOB_DATA else packfmt.MAX_TREE_RAW
    raw_length = draw(st.one_of(st.integers(0, 1 << 16), st.integers(0, limit)))
    length = draw(st.integers(packfmt.ENVELOPE_OVERHEAD, raw_length + packfmt.ENVELOPE_OVERHEAD))
    return t, draw(st.sampled_from([0, 1])), length, raw_length


@st.composite
def pack_entries(draw, max_size=20):
    """Entries as a pack header describes them: offsets cumulative from 0."""
    raw = draw(st.lists(st.tuples(blob_sizes(), ids), max_size=max_size))
    out, offset = [], 0
    for (t, comp, length, raw_length), bid in raw:
        out.append(PackEntry(t, comp, offset, length, raw_length, bid))
        offset += length
    return out


@st.composite
def index_entries(draw, max_size=10):
    """Entries as an index stores them: any offsets that keep the blob inside 4 GiB."""
    out = []
    for (t, c, ln, rl), bid in draw(st.lists(st.tuples(blob_sizes(), ids), max_size=max_size)):
        off = draw(st.integers(0, 2**32 - ln))
        out.append(PackEntry(t, c, off, ln, rl, bid))
    return out


index_docs = st.lists(st.tuples(ids, index_entries()), max_size=6)


# -- pack headers ----------------------------------------------------------------------


@FAST
@given(entries=pack_entries())
def test_pack_header_round_trips(entries):
    plain = packfmt.encode_header(entries)
    assert len(plain) == REC_LEN * len(entries)
    body = sum(e.length for e in entries)
    assert packfmt.decode_header(plain, body, "pack") == entries


@FAST
@given(entries=pack_entries(), delta=st.integers(1, 1000))
def test_pack_header_must_cover_the_body_exactly(entries, delta):
    plain = packfmt.encode_header(entries)
    body = sum(e.length for e in entries)
    with pytest.raises(IntegrityError):
        packfmt.decode_header(plain, body + delta, "pack")
    if body >= delta:
        with pytest.raises(IntegrityError):
            packfmt.decode_header(plain, body - delta, "pack")


@FAST
@given(entries=pack_entries(), data=st.data())
def test_pack_header_cut_mid_record_is_refused(entries, data):
    plain = packfmt.encode_header(entries)
    if not plain:
        return
    cut = data.draw(st.integers(0, len(plain) - 1).filter(lambda n: n % REC_LEN))
    with pytest.raises(IntegrityError):
        packfmt.decode_header(plain[:cut], 0, "pack")


@pytest.mark.parametrize("blob_type", [2, 7, 255])
def test_pack_header_with_unknown_blob_type_is_refused(blob_type):
    plain = struct.pack("<BBII32s", blob_type, 0, 10, 10, bytes(32))
    with pytest.raises(IntegrityError):
        packfmt.decode_header(plain, 10, "pack")


@FAST
@given(garbage=st.binary(max_size=REC_LEN * 4), body=st.integers(0, 1 << 20))
def test_pack_header_garbage_is_refused_or_decoded(garbage, body):
    try:
        entries = packfmt.decode_header(garbage, body, "pack")
    except IntegrityError:
        return
    assert sum(e.length for e in entries) == body


@FAST
@given(n=u32, pad=st.binary(max_size=64))
def test_trailer_round_trips_or_is_refused(n, pad):
    tail = pad + packfmt.trailer(n)
    size = len(tail)
    if n + 4 <= size and n <= packfmt.MAX_HEADER:
        assert packfmt.split_trailer(tail, size, "pack") == n
    else:
        with pytest.raises(IntegrityError):
            packfmt.split_trailer(tail, size, "pack")


@pytest.mark.parametrize("tail,size", [(b"", 0), (b"\x00\x00\x00", 3), (b"\x00\x00\x00\x00", 3)])
def test_trailer_of_a_too_short_pack_is_refused(tail, size):
    with pytest.raises(IntegrityError):
        packfmt.split_trailer(tail, size, "pack")


def test_trailer_refuses_huge_headers():
    n = packfmt.MAX_HEADER + 1
    with pytest.raises(IntegrityError):
        packfmt.split_trailer(packfmt.trailer(n), n + 100, "pack")


# -- index files -------------------------------------------------------------------------


def pairs(packs) -> list:
    """(pack, entries) of each decoded pack: format-1 documents name no writer key."""
    out = []
    for p in packs:
        assert p.writer is None
        out.append((p.pack, p.entries))
    return out


@FAST
@given(doc=index_docs)
def test_index_round_trips(doc):
    raw = indexfmt.encode(doc)
    assert raw[:5] == b"AMBI\x01"
    assert pairs(indexfmt.decode(raw)) == doc


@FAST
@given(doc=index_docs, writers=st.lists(st.one_of(st.none(), st.binary(min_size=32, max_size=32)), min_size=1))
def test_index_of_format_2_round_trips(doc, writers):
    """Version 2 names each pack's writer key (all zeros: none, a pack sealed under the data key)."""
    packs = [IndexedPack(p, e, writers[i % len(writers)]) for i, (p, e) in enumerate(doc)]
    packs = [p._replace(writer=None) if p.writer == bytes(32) else p for p in packs]
    raw = indexfmt.encode(packs)
    v2 = any(p.writer is not None for p in packs)
    assert raw[:5] == (b"AMBI\x02" if v2 else b"AMBI\x01")
    assert list(indexfmt.decode(raw)) == packs
    for cut in range(0, len(raw), max(1, len(raw) // 7)):
        with pytest.raises(IntegrityError):
            list(indexfmt.decode(raw[:cut]))


@FAST
@given(doc=index_docs, data=st.data())
def test_truncated_index_is_an_integrity_error(doc, data):
    raw = indexfmt.encode(doc)
    cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
    with pytest.raises(IntegrityError):
        list(indexfmt.decode(raw[:cut]))


@FAST
@given(doc=index_docs, extra=st.binary(min_size=1, max_size=100))
def test_index_with_trailing_bytes_is_an_integrity_error(doc, extra):
    with pytest.raises(IntegrityError):
        list(indexfmt.decode(indexfmt.encode(doc) + extra))


def _decodes_or_refuses(raw):
    try:
        out = list(indexfmt.decode(raw))
    except IntegrityError:
        with pytest.raises(IntegrityError):  # the records as stored are refused the same
            indexfmt.decode_records(raw)
        return None
    for pack_id, entries, _writer in out:
        assert isinstance(pack_id, bytes) and len(pack_id) == 32
        assert all(isinstance(e, PackEntry) for e in entries)
    assert [(p.pack, p.records, p.blobs, p.writer) for p in indexfmt.decode_records(raw)] == [
        (p.pack, _stored(p.entries), len(p.entries), p.writer) for p in out
    ]
    return out


def _stored(entries) -> bytes:
    return b"".join(struct.pack("<32sBBIII", e.id, e.type, e.comp, e.offset, e.length, e.raw_length) for e in entries)


@FAST
@given(doc=index_docs, writers=st.lists(st.one_of(st.none(), st.binary(min_size=32, max_size=32)), min_size=1))
def test_index_records_are_the_entries_as_stored(doc, writers):
    """decode_records (what loading the index reads) is decode with each pack's entries left
    as their stored bytes; damage is refused the same way."""
    packs = [IndexedPack(p, e, writers[i % len(writers)]) for i, (p, e) in enumerate(doc)]
    packs = [p._replace(writer=None) if p.writer == bytes(32) else p for p in packs]
    raw = indexfmt.encode(packs)
    got = indexfmt.decode_records(raw)
    assert [(p.pack, p.records, p.blobs, p.writer) for p in got] == [
        (p.pack, _stored(p.entries), len(p.entries), p.writer) for p in packs
    ]
    assert all(len(p.records) == p.blobs * indexfmt.BLOB_RECORD for p in got)
    for cut in range(0, len(raw), max(1, len(raw) // 7)):
        with pytest.raises(IntegrityError):
            indexfmt.decode_records(raw[:cut])
    with pytest.raises(IntegrityError):
        indexfmt.decode_records(raw + b"x")


@FAST
@given(garbage=st.binary(max_size=300))
def test_index_garbage_is_an_integrity_error(garbage):
    _decodes_or_refuses(garbage)
    _decodes_or_refuses(b"AMBI\x01" + garbage)


@FAST
@given(doc=index_docs, data=st.data())
def test_damaged_index_is_refused_or_decoded(doc, data):
    raw = bytearray(indexfmt.encode(doc))
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
        raw[pos] = data.draw(st.integers(0, 255), label="value")
    _decodes_or_refuses(bytes(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"AMBI",
        b"AMBI\x01",
        b"AMBI\x03\x00\x00\x00\x00",
        b"XMBI\x01\x00\x00\x00\x00",
        b"AMBI\x01\x01\x00\x00\x00",
        b"AMBI\x01\xff\xff\xff\xff",
        b"AMBI\x01\x01\x00\x00\x00" + bytes(32) + b"\xff\xff\xff\xff",
    ],
)
def test_malformed_indexes_are_refused(raw):
    with pytest.raises(IntegrityError):
        list(indexfmt.decode(raw))


def test_empty_index_decodes_to_nothing():
    assert list(indexfmt.decode(indexfmt.encode([]))) == []


# -- lengths beyond what the format allows are refused at decode --------------------------------

IMPOSSIBLE = [
    (BLOB_DATA, 1, 0, 2**32 - 1, 2**32 - 1),  # a 4 GiB data blob
    (BLOB_DATA, 0, 0, 100, (8 << 20) + 1),  # a data blob larger than the chunker's largest cut
    (BLOB_TREE, 0, 0, 100, (1 << 30) + 1),  # a tree larger than a reader accepts
    (BLOB_DATA, 1, 0, 1000, 10),  # stored much longer than its plaintext
    (BLOB_DATA, 0, 0, 5, 5),  # shorter than an envelope
    (BLOB_DATA, 7, 0, 50, 50),  # unknown compression
    (2, 0, 0, 50, 50),  # unknown type
    (BLOB_DATA, 0, 2**32 - 40, 50, 50),  # beyond 4 GiB
]


@pytest.mark.parametrize("entry", IMPOSSIBLE, ids=str)
def test_index_entries_beyond_the_format_are_refused(entry):
    t, c, off, ln, rl = entry
    raw = indexfmt.encode([(b"p" * 32, [PackEntry(t, c, off, ln, rl, b"b" * 32)])])
    with pytest.raises(IntegrityError, match="index"):
        list(indexfmt.decode(raw))


@pytest.mark.parametrize("entry", [e for e in IMPOSSIBLE if e[2] == 0], ids=str)
def test_pack_header_entries_beyond_the_format_are_refused(entry):
    t, c, _off, ln, rl = entry
    plain = packfmt.encode_header([PackEntry(t, c, 0, ln, rl, b"b" * 32)])
    with pytest.raises(IntegrityError, match="pack"):
        packfmt.decode_header(plain, ln, "pack x")


@settings(max_examples=300, deadline=None)
@given(
    t=st.integers(0, 255),
    c=st.integers(0, 255),
    off=st.integers(0, 2**32 - 1),
    ln=st.integers(0, 2**32 - 1) | st.integers(0, 200),
    rl=st.integers(0, 2**32 - 1) | st.integers(0, 200),
)
def test_index_decoding_accepts_exactly_the_entries_entry_problem_accepts(t, c, off, ln, rl):
    """The index decoder's inlined checks are entry_problem's, for any field values."""
    from amber.errors import IntegrityError
    from amber.format.pack import entry_problem

    raw = indexfmt.encode([(b"p" * 32, [PackEntry(t, c, off, ln, rl, b"b" * 32)])])
    problem = entry_problem(t, c, off, ln, rl)
    if problem is None:
        assert pairs(indexfmt.decode(raw)) == [(b"p" * 32, [PackEntry(t, c, off, ln, rl, b"b" * 32)])]
    else:
        with pytest.raises(IntegrityError, match=re.escape(problem)):
            list(indexfmt.decode(raw))
