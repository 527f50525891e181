"""Blob compression, and the bound on what a stored blob may expand to."""

import struct
import tracemalloc

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.errors import IntegrityError
from amber.format import compression as blob

FAST = settings(max_examples=80, deadline=None)

compressible = st.builds(lambda unit, n: unit * n, st.binary(min_size=1, max_size=16), st.integers(1, 4000))
payloads = st.one_of(st.binary(max_size=4096), compressible)


@FAST
@given(data=payloads)
def test_compress_then_decompress_round_trips(data):
    comp, payload = blob.compress(data)
    assert comp in (blob.COMP_NONE, blob.COMP_ZSTD)
    assert blob.decompress(comp, payload, len(data)) == data
    if comp == blob.COMP_NONE:
        assert payload == data
    else:
        assert len(payload) <= len(data) - (len(data) >> 5)


def test_compressible_data_is_compressed_and_random_data_is_not():
    import os

    comp, payload = blob.compress(b"amber " * 10_000)
    assert comp == blob.COMP_ZSTD and len(payload) < 1000
    noise = os.urandom(100_000)
    assert blob.compress(noise) == (blob.COMP_NONE, noise)
    assert blob.compress(b"tiny") == (blob.COMP_NONE, b"tiny")


@FAST
@given(data=compressible.filter(lambda d: len(d) >= 64), data2=st.data())
def test_a_wrong_raw_length_is_an_integrity_error(data, data2):
    comp, payload = blob.compress(data)
    wrong = data2.draw(st.integers(0, len(data) * 2).filter(lambda n: n != len(data)), label="claimed")
    with pytest.raises(IntegrityError):
        blob.decompress(comp, payload, wrong)


@FAST
@given(data=st.binary(max_size=300), claimed=st.integers(0, 1000))
def test_uncompressed_payload_must_match_its_length(data, claimed):
    if claimed == len(data):
        assert blob.decompress(blob.COMP_NONE, data, claimed) == data
    else:
        with pytest.raises(IntegrityError):
            blob.decompress(blob.COMP_NONE, data, claimed)


@FAST
@given(garbage=st.binary(max_size=300), claimed=st.integers(0, 1 << 20))
def test_zstd_garbage_is_an_integrity_error(garbage, claimed):
    try:
        out = blob.decompress(blob.COMP_ZSTD, garbage, claimed)
    except IntegrityError:
        return
    assert len(out) == claimed


@pytest.mark.parametrize("comp", [2, 3, 255])
def test_unknown_compression_is_an_integrity_error(comp):
    with pytest.raises(IntegrityError):
        blob.decompress(comp, b"abc", 3)


@pytest.mark.parametrize("claimed", [-1, blob.MAX_BLOB_RAW + 1, 1 << 40])
def test_implausible_raw_lengths_are_refused(claimed):
    with pytest.raises(IntegrityError):
        blob.decompress(blob.COMP_NONE, b"", claimed)
    with pytest.raises(IntegrityError):
        blob.decompress(blob.COMP_ZSTD, blob.compress(b"x" * 1000)[1], claimed)


def _peak_while(fn) -> int:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _bomb(declared: int, real: int = 100_000) -> bytes:
    """A zstd frame that decodes to `real` zero bytes but declares `declared` in its header."""
    frame = zstandard.ZstdCompressor(level=3, write_content_size=True).compress(b"\0" * real)
    params = zstandard.get_frame_parameters(frame)
    assert params.content_size == real
    # Rebuild the header: magic | descriptor (8-byte content size, no single-segment) |
    # window descriptor (128 KiB) | content size; the compressed blocks follow unchanged.
    descriptor = frame[4]
    single_segment = bool(descriptor & 0x20)
    assert descriptor & 0x03 == 0  # no dictionary id
    fcs_len = {0: 1 if single_segment else 0, 1: 2, 2: 4, 3: 8}[descriptor >> 6]
    blocks = frame[4 + 1 + (0 if single_segment else 1) + fcs_len :]
    return b"\x28\xb5\x2f\xfd" + bytes([0b11000000, 0x38]) + struct.pack("<Q", declared) + blocks


def test_the_bomb_helper_makes_a_valid_frame():
    bomb = _bomb(100_000)
    assert zstandard.ZstdDecompressor().decompress(bomb) == b"\0" * 100_000
    assert zstandard.get_frame_parameters(_bomb(1 << 40)).content_size == 1 << 40


def test_bomb_declaring_a_huge_size_is_an_integrity_error():
    """A frame whose header declares a terabyte must not make amber try to allocate it."""
    with pytest.raises(IntegrityError):
        blob.decompress(blob.COMP_ZSTD, _bomb(1 << 40), 100_000)


def test_bomb_is_refused_without_expanding_it():
    """A frame that really expands to 64 MiB, claiming 1000 bytes, is refused at ~1000 bytes."""
    bomb = zstandard.ZstdCompressor(level=3).compress(b"\0" * (64 << 20))
    assert len(bomb) < 10_000

    def attempt():
        with pytest.raises(IntegrityError):
            blob.decompress(blob.COMP_ZSTD, bomb, 1000)

    assert _peak_while(attempt) < 4 << 20


def test_bomb_without_a_declared_size_is_refused_without_expanding_it():
    bomb = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(b"\0" * (64 << 20))

    def attempt():
        with pytest.raises(IntegrityError):
            blob.decompress(blob.COMP_ZSTD, bomb, 1000)

    assert _peak_while(attempt) < 4 << 20


# -- whole-object frames (index files) -------------------------------------------------------


@FAST
@given(data=payloads)
def test_bounded_round_trip(data):
    assert blob.decompress_bounded(blob.compress_bounded(data), len(data), "index") == data


@FAST
@given(data=compressible.filter(lambda d: len(d) > 1))
def test_bounded_refuses_frames_above_the_limit(data):
    with pytest.raises(IntegrityError):
        blob.decompress_bounded(blob.compress_bounded(data), len(data) - 1, "index")


def test_bounded_refuses_frames_without_a_size():
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(b"x" * 1000)
    with pytest.raises(IntegrityError):
        blob.decompress_bounded(frame, 1 << 20, "index")


def test_bounded_refuses_a_lying_size():
    with pytest.raises(IntegrityError):
        blob.decompress_bounded(_bomb(200_000), 1 << 20, "index")
    with pytest.raises(IntegrityError):
        blob.decompress_bounded(_bomb(1 << 40), 1 << 20, "index")


@FAST
@given(garbage=st.binary(max_size=200))
def test_bounded_garbage_is_an_integrity_error(garbage):
    try:
        blob.decompress_bounded(garbage, 1 << 20, "index")
    except IntegrityError:
        pass
