"""Blob payloads: optional zstd compression, with a bound on what a blob may expand to."""

from __future__ import annotations

import threading

import zstandard

from ..errors import IntegrityError

COMP_NONE = 0
COMP_ZSTD = 1
ZSTD_LEVEL = 3
MAX_BLOB_RAW = 1 << 30  # chunks are <= 8 MiB; tree blobs of huge folders may be far larger

_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "c", None)
    if c is None:
        c = _local.c = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True, write_checksum=False)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "d", None)
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


def compress(data: bytes | bytearray | memoryview) -> tuple[int, bytes]:
    """(compression, payload): zstd unless that saves under 1/32 of the size."""
    n = len(data)
    if n < 64:
        return COMP_NONE, bytes(data)
    out = _compressor().compress(data)
    if len(out) > n - (n >> 5):
        return COMP_NONE, bytes(data)
    return COMP_ZSTD, out


def decompress(comp: int, payload: bytes, raw_length: int, what: str = "blob") -> bytes:
    if raw_length < 0 or raw_length > MAX_BLOB_RAW:
        raise IntegrityError(f"{what}: implausible size {raw_length}")
    if comp == COMP_NONE:
        out = payload
    elif comp == COMP_ZSTD:
        try:
            declared = zstandard.get_frame_parameters(payload).content_size
        except zstandard.ZstdError as e:
            raise IntegrityError(f"{what}: not a zstd frame ({e})") from None
        if declared != raw_length:  # checked before any work: no decompression bombs
            raise IntegrityError(f"{what}: frame declares {declared} bytes, index says {raw_length}")
        try:
            out = _decompressor().decompress(payload, max_output_size=raw_length)
        except zstandard.ZstdError as e:
            raise IntegrityError(f"{what}: cannot decompress ({e})") from None
    else:
        raise IntegrityError(f"{what}: unknown compression {comp}")
    if len(out) != raw_length:
        raise IntegrityError(f"{what}: expected {raw_length} bytes, got {len(out)}")
    return out


def compress_bounded(data: bytes) -> bytes:
    return _compressor().compress(data)


def decompress_bounded(payload: bytes, limit: int, what: str) -> bytes:
    """Decompress a whole-object zstd frame, refusing to expand past `limit` bytes."""
    try:
        params = zstandard.get_frame_parameters(payload)
    except zstandard.ZstdError as e:
        raise IntegrityError(f"{what}: not a zstd frame ({e})") from None
    size = params.content_size
    if size == zstandard.CONTENTSIZE_UNKNOWN or size > limit:
        raise IntegrityError(f"{what}: declared size {size} out of bounds")
    try:
        out = _decompressor().decompress(payload, max_output_size=size)
    except zstandard.ZstdError as e:
        raise IntegrityError(f"{what}: cannot decompress ({e})") from None
    if len(out) != size:
        raise IntegrityError(f"{what}: size mismatch")
    return out
