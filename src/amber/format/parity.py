"""Reed–Solomon parity of a pack (FORMAT.md §8.3): a damaged or truncated region of a pack is
rebuilt in memory from the rest of it and its parity object.

A pack of `size` bytes is cut into k data shards of `shard` bytes (the last padded with
zeros); m parity shards are computed over them with zfec (Reed–Solomon over GF(2^8), any k
of the k + m shards rebuild the data). The parity object `parity/<pack id>` is

    b"AMBR" 0x01 | u8 k | u8 m | u32 LE shard | u64 LE size | 32-byte pack id |
    k × 16-byte BLAKE3 of each data shard | m × shard bytes of parity

It is not sealed: parity of ciphertext reveals nothing the ciphertext does not. It is not
trusted either: the shard digests only say which shards to rebuild, and a rebuilt pack is
accepted only when its BLAKE3 is the pack's id. Pure, but for the zfec calls.
"""

from __future__ import annotations

import math
import struct

import blake3
import zfec  # type: ignore[import-untyped]

from ..errors import IntegrityError

MAGIC = b"AMBR\x01"
_HEAD = struct.Struct("<BBIQ32s")
HEAD_LEN = len(MAGIC) + _HEAD.size
DIGEST_LEN = 16
MAX_SHARDS = 256  # zfec: k + m <= 256
MAX_DATA_SHARDS = 128  # a 16 MiB pack in shards of 128 KiB: at 2 %, two of them rebuildable
MIN_SHARD = 4 << 10
MAX_PERCENT = 50
MAX_PACK = 1 << 32


def geometry(size: int, percent: int) -> tuple[int, int, int]:
    """(k, m, shard) for a pack of `size` bytes and `percent` parity: as many parity shards as
    fit in `percent` of the pack with the object's own header and digests, and at least one (so
    a pack smaller than 100 / percent shards costs more than `percent`)."""
    k = max(1, min(MAX_DATA_SHARDS, math.ceil(size / MIN_SHARD)))
    shard = max(1, math.ceil(size / k))
    k = max(1, math.ceil(size / shard))
    budget = size * percent / 100 - HEAD_LEN - k * DIGEST_LEN
    m = max(1, min(MAX_SHARDS - k, math.floor(budget / shard)))
    return k, m, shard


def _shards(data: bytes | memoryview, k: int, shard: int) -> list[bytes | memoryview]:
    """The k data shards: views of `data` (a 16 MiB pack is not copied to be encoded), the
    last one copied only when it must be padded with zeros."""
    view = memoryview(data)
    out: list[bytes | memoryview] = []
    for i in range(k):
        part = view[i * shard : (i + 1) * shard]
        out.append(bytes(part) + bytes(shard - len(part)) if len(part) < shard else part)
    return out


def encode(pack_id: bytes, data: bytes, percent: int) -> bytes:
    """The parity object of a pack's bytes."""
    k, m, shard = geometry(len(data), percent)
    shards = _shards(data, k, shard)
    parity = zfec.Encoder(k, k + m).encode(shards, list(range(k, k + m)))
    digests = b"".join(blake3.blake3(s).digest(DIGEST_LEN) for s in shards)
    return MAGIC + _HEAD.pack(k, m, shard, len(data), pack_id) + digests + b"".join(parity)


def decode(raw: bytes, pack_id: bytes, what: str) -> tuple[int, int, int, int, list[bytes], list[bytes]]:
    """(k, m, shard, size, data shard digests, parity shards), every length checked."""
    if raw[: len(MAGIC)] != MAGIC or len(raw) < HEAD_LEN:
        raise IntegrityError(f"{what}: not an amber parity object")
    k, m, shard, size, pid = _HEAD.unpack_from(raw, len(MAGIC))
    if pid != pack_id:
        raise IntegrityError(f"{what}: the parity of another pack")
    if not (k >= 1 and m >= 1 and k + m <= MAX_SHARDS and shard >= 1 and 0 < size <= MAX_PACK):
        raise IntegrityError(f"{what}: impossible geometry k={k}, m={m}, shard={shard}")
    if not (k - 1) * shard < size <= k * shard:
        raise IntegrityError(f"{what}: {k} shards of {shard} bytes cannot hold {size} bytes")
    if len(raw) != HEAD_LEN + k * DIGEST_LEN + m * shard:
        raise IntegrityError(f"{what}: {len(raw)} bytes, its geometry needs {HEAD_LEN + k * DIGEST_LEN + m * shard}")
    pos = HEAD_LEN
    digests = [raw[pos + i * DIGEST_LEN : pos + (i + 1) * DIGEST_LEN] for i in range(k)]
    pos += k * DIGEST_LEN
    parity = [raw[pos + j * shard : pos + (j + 1) * shard] for j in range(m)]
    return k, m, shard, size, digests, parity


def repair(pack_id: bytes, damaged: bytes, raw_parity: bytes, what: str) -> tuple[bytes, int]:
    """(the pack's original bytes, how many shards were rebuilt) from its damaged or truncated
    bytes and its parity object; IntegrityError when too much is damaged or the result is not
    the pack (its BLAKE3 must be the pack id)."""
    k, m, shard, size, digests, parity = decode(raw_parity, pack_id, what)
    have = _shards(damaged[:size], k, shard)
    good = [
        i
        for i in range(k)
        if len(damaged) >= min((i + 1) * shard, size)  # all of it is there (not truncated away)
        and blake3.blake3(have[i]).digest(DIGEST_LEN) == digests[i]
    ]
    bad = k - len(good)
    if bad == 0:
        out = b"".join(have)[:size]
    elif bad > m:
        raise IntegrityError(f"{what}: {bad} of {k} shards damaged, parity rebuilds at most {m}")
    else:
        use = good + [k + j for j in range(bad)]
        blocks = [have[i] for i in good] + parity[:bad]
        out = b"".join(zfec.Decoder(k, k + m).decode(blocks, use))[:size]
    if blake3.blake3(out).digest() != pack_id:
        raise IntegrityError(f"{what}: the rebuilt pack does not match its name (its parity is wrong or damaged)")
    return out, bad
