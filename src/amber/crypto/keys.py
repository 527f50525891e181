"""Master keys and the password-wrapped key files that hold them.

A repository has one set of random master keys; each `keys/<id>` object wraps
them under a key derived from one password with scrypt (parameters stored).
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import socket
from dataclasses import dataclass

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..clock import Clock, SystemClock, to_iso
from ..errors import IntegrityError, WrongPassword
from ..format.canonical import key_file_json, sorted_json
from .aead import KIND_KEY, Sealer

SCRYPT_N = 1 << 15
SCRYPT_R = 8
SCRYPT_P = 1
# What amber writes costs 128 * N * r * p = 32 MiB of memory and as much work; a key file may ask
# for at most 4 times that (MAX_SCRYPT_COST, the documented margin for a slower future default):
# a hostile key file can never make opening a repository cost more than that per key file.
SCRYPT_MARGIN = 4
MAX_SCRYPT_MEMORY = 128 * SCRYPT_N * SCRYPT_R * SCRYPT_P * SCRYPT_MARGIN  # 128 MiB
MAX_SCRYPT_COST = SCRYPT_N * SCRYPT_R * SCRYPT_P * SCRYPT_MARGIN  # N * r * p
SALT_BYTES = (16, 64)  # amber writes 16; readers accept up to 64
MAX_KEY_FILE = 64 << 10  # bytes of one key file a reader parses
MAX_CHUNKER_SEED = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class MasterKeys:
    data: bytes  # AES-256-GCM key for every encrypted object
    ids: bytes  # BLAKE3 key for blob ids
    signing: bytes  # Ed25519 seed (audit checkpoints)
    chunker_seed: int  # FastCDC gear-table seed, secret so chunk sizes leak less

    @classmethod
    def generate(cls) -> "MasterKeys":
        return cls(os.urandom(32), os.urandom(32), os.urandom(32), int.from_bytes(os.urandom(8), "big") >> 1)

    def encode(self) -> bytes:
        """The key material as sealed in a key file: `sorted_json` (FORMAT.md §5.1)."""
        return sorted_json(
            {
                "data": _b64(self.data),
                "ids": _b64(self.ids),
                "signing": _b64(self.signing),
                "chunker_seed": self.chunker_seed,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> "MasterKeys":
        try:
            d = json.loads(raw)
            if not isinstance(d, dict):
                raise TypeError("not an object")
            seed = d["chunker_seed"]
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_CHUNKER_SEED:
                raise ValueError("chunker_seed is not an integer in 0..2^63-1")
            keys = cls(_unb64(d["data"]), _unb64(d["ids"]), _unb64(d["signing"]), seed)
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            raise IntegrityError(f"key material is malformed: {e}") from None
        if len(keys.data) != 32 or len(keys.ids) != 32 or len(keys.signing) != 32:
            raise IntegrityError("key material has wrong key lengths")
        return keys

    def signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.signing)

    def blob_id(self, data: bytes | bytearray | memoryview) -> bytes:
        return blake3.blake3(data, key=self.ids).digest()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password.encode("utf-8"))


def wrap(keys: MasterKeys, password: str, *, n: int = SCRYPT_N, clock: Clock | None = None) -> bytes:
    """A key file: JSON with the KDF parameters and the sealed master keys."""
    salt = os.urandom(16)
    sealed = Sealer(_derive(password, salt, n, SCRYPT_R, SCRYPT_P)).seal(KIND_KEY, keys.encode())
    doc = {
        "version": 1,
        "kdf": "scrypt",
        "n": n,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
        "salt": _b64(salt),
        "created": to_iso((clock or SystemClock()).now()),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "data": _b64(sealed),
    }
    return key_file_json(doc)


def key_file_info(raw: bytes) -> dict:
    """The key file's fields, every one checked (FORMAT.md §5.2) before any scrypt runs."""
    if len(raw) > MAX_KEY_FILE:
        raise IntegrityError(f"key file is larger than {MAX_KEY_FILE} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise IntegrityError("key file is not valid JSON") from None
    if not isinstance(doc, dict) or type(doc.get("version")) is not int or doc["version"] != 1:
        raise IntegrityError("key file has an unknown version")
    if doc.get("kdf") != "scrypt":
        raise IntegrityError("key file has an unknown KDF")
    for name in ("n", "r", "p"):
        v = doc.get(name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise IntegrityError(f"key file has an invalid scrypt parameter {name}")
    n, r, p = doc["n"], doc["r"], doc["p"]
    if n < 2 or n & (n - 1):
        raise IntegrityError(f"key file asks for scrypt N={n}, which is not a power of two")
    if r * p > 64 or n * r * p > MAX_SCRYPT_COST or 128 * r * n * p > MAX_SCRYPT_MEMORY:
        raise IntegrityError(
            f"key file asks for scrypt N={n}, r={r}, p={p}: more than {SCRYPT_MARGIN} times the cost amber "
            f"writes (at most {MAX_SCRYPT_MEMORY >> 20} MiB, r*p <= 64)"
        )
    for name in ("salt", "data"):
        if not isinstance(doc.get(name), str):
            raise IntegrityError(f"key file has no {name}")
        try:
            value = _unb64(doc[name])
        except ValueError:
            raise IntegrityError(f"key file: {name} is not base64") from None
        if name == "salt" and not SALT_BYTES[0] <= len(value) <= SALT_BYTES[1]:
            raise IntegrityError(f"key file: the salt is not {SALT_BYTES[0]} to {SALT_BYTES[1]} bytes")
    for name in ("created", "host", "user"):
        if name in doc and not isinstance(doc[name], str):
            raise IntegrityError(f"key file: {name} is not a string")
    return doc


def cost(doc: dict) -> int:
    """The relative work of trying a (checked) key file: N * r * p."""
    return doc["n"] * doc["r"] * doc["p"]


def unwrap(raw: bytes, password: str) -> MasterKeys:
    doc = key_file_info(raw)
    try:
        salt, sealed = _unb64(doc["salt"]), _unb64(doc["data"])
    except (KeyError, ValueError, TypeError):
        raise IntegrityError("key file is malformed") from None
    try:
        key = _derive(password, salt, doc["n"], doc["r"], doc["p"])
    except (ValueError, MemoryError) as e:
        raise IntegrityError(f"key file: scrypt refused its parameters ({e})") from None
    try:
        plain = Sealer(key).open(KIND_KEY, sealed)
    except IntegrityError:
        raise WrongPassword("wrong password or no key found") from None
    return MasterKeys.decode(plain)
