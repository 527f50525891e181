"""Master keys and the password-wrapped key files that hold them.

A repository has one set of random master keys; each `keys/<id>` object wraps
them (or, for a write-only backup key, the part of them a writer needs) under a
key derived from one password with Argon2id (scrypt in key files of earlier
versions, which still open), its parameters stored in the key file and bounded
when read, before any derivation runs.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import socket
from dataclasses import dataclass, replace

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..clock import Clock, SystemClock, to_iso
from ..errors import IntegrityError, WrongPassword
from ..format.canonical import key_file_json, sorted_json
from . import content as contentkeys
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
# Argon2id as amber writes it: OWASP's first recommended setting (46 MiB, one pass, one lane),
# about 0.1 s here, as much as the scrypt it replaces (so no command opens slower) with more memory.
ARGON2_MEMORY = 46 << 10  # KiB
ARGON2_ITERATIONS = 1
ARGON2_LANES = 1
# What a key file may ask for, whatever amber wrote: room for stronger defaults later (RFC 9106's
# 64 MiB x 3 passes fits), while a hostile key file costs at most 256 MiB and about 2 s to try.
MAX_ARGON2_MEMORY = 256 << 10  # KiB
MAX_ARGON2_COST = 1 << 20  # memory (KiB) * iterations
MAX_ARGON2_LANES = 16
KDFS = ("argon2id", "scrypt")
SALT_BYTES = (16, 64)  # amber writes 16; readers accept up to 64
MAX_KEY_FILE = 64 << 10  # bytes of one key file a reader parses
MAX_CHUNKER_SEED = (1 << 63) - 1


FULL = "full"
BACKUP = "backup"
ROLES = (FULL, BACKUP)


@dataclass(frozen=True, slots=True)
class MasterKeys:
    """What one key file holds (FORMAT.md §5.1).

    Every key holds the data key (index, pack headers, records, the audit log), the id key
    and the chunker seed (so every client deduplicates against everything stored) and the
    audit log's checkpoint key. In a repository of format 2 it also holds the repository's
    content public key (crypto/content.py) and an author key that signs its audit events.
    A full key holds the content private key, and its author key is the repository's admin
    key (the same in every full key file). A backup key (write-only) holds neither: its
    author key is its own, and nothing it holds opens file content, trees or snapshots."""

    data: bytes  # AES-256-GCM key for everything that holds no user data
    ids: bytes  # BLAKE3 key for blob ids
    signing: bytes  # Ed25519 seed (audit checkpoints)
    chunker_seed: int  # FastCDC gear-table seed, secret so chunk sizes leak less
    role: str = FULL
    content_public: bytes | None = None  # X25519, format 2
    content_private: bytes | None = None  # X25519, full keys of format 2
    author: bytes | None = None  # Ed25519 seed signing this key's audit events, format 2

    @classmethod
    def generate(cls, content: bool = True) -> "MasterKeys":
        """New full keys: of format 2 (a content key pair and an admin key) unless `content` is False."""
        base = cls(os.urandom(32), os.urandom(32), os.urandom(32), int.from_bytes(os.urandom(8), "big") >> 1)
        return base.with_content() if content else base

    def with_content(self) -> "MasterKeys":
        """These keys, of format 2: a new content key pair and admin key (`amber upgrade`)."""
        private, public = contentkeys.generate()
        return replace(self, content_public=public, content_private=private, author=os.urandom(32))

    def backup_key(self) -> "MasterKeys":
        """A write-only key for this repository: no content private key, an author key of its own."""
        if self.content_public is None:
            raise ValueError("write-only keys need a repository of format 2")
        return replace(self, role=BACKUP, content_private=None, author=os.urandom(32))

    @property
    def sealed_content(self) -> bool:
        """Whether content is sealed to a content key (format 2) rather than under the data key."""
        return self.content_public is not None

    @property
    def can_read(self) -> bool:
        """Whether these keys open file content, trees and snapshot documents."""
        return self.role == FULL

    def encode(self) -> bytes:
        """The key material as sealed in a key file: `sorted_json` (FORMAT.md §5.1)."""
        doc: dict = {
            "data": _b64(self.data),
            "ids": _b64(self.ids),
            "signing": _b64(self.signing),
            "chunker_seed": self.chunker_seed,
        }
        if self.content_public is not None:  # format 2; format 1 material is encoded as it always was
            doc["role"] = self.role
            doc["content_public"] = _b64(self.content_public)
            doc["author"] = _b64(self.author or b"")
            if self.content_private is not None:
                doc["content_private"] = _b64(self.content_private)
        return sorted_json(doc)

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
            if "content_public" in d:
                role = d.get("role")
                if role not in ROLES:
                    raise ValueError(f"role is not one of {', '.join(ROLES)}")
                private = _unb64(d["content_private"]) if "content_private" in d else None
                keys = replace(
                    keys,
                    role=role,
                    content_public=_unb64(d["content_public"]),
                    content_private=private,
                    author=_unb64(d["author"]),
                )
            elif "role" in d or "content_private" in d or "author" in d:
                raise ValueError("a role, content private key or author key without a content public key")
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            raise IntegrityError(f"key material is malformed: {e}") from None
        if len(keys.data) != 32 or len(keys.ids) != 32 or len(keys.signing) != 32:
            raise IntegrityError("key material has wrong key lengths")
        if keys.content_public is not None:
            if len(keys.content_public) != 32 or len(keys.author or b"") != 32:
                raise IntegrityError("key material has wrong key lengths")
            if keys.role == FULL:
                if keys.content_private is None:
                    raise IntegrityError("key material claims the full role but holds no content private key")
                private = keys.content_private
                if len(private) != 32 or contentkeys.public_of(private) != keys.content_public:
                    raise IntegrityError("key material: the content private key does not match its public key")
            elif keys.content_private is not None:
                raise IntegrityError("key material of a backup key holds a content private key")
        return keys

    def signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.signing)

    def author_key(self) -> Ed25519PrivateKey | None:
        """The key that signs this key's audit events (format 2), else None."""
        return Ed25519PrivateKey.from_private_bytes(self.author) if self.author else None

    def blob_id(self, data: bytes | bytearray | memoryview) -> bytes:
        return blake3.blake3(data, key=self.ids).digest()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def _derive(password: str, salt: bytes, doc: dict) -> bytes:
    """The wrapping key from a (checked) key file's KDF and parameters."""
    secret = password.encode("utf-8")
    if doc["kdf"] == "argon2id":
        kdf = Argon2id(
            salt=salt, length=32, iterations=doc["iterations"], lanes=doc["lanes"], memory_cost=doc["memory"]
        )
        return kdf.derive(secret)
    return Scrypt(salt=salt, length=32, n=doc["n"], r=doc["r"], p=doc["p"]).derive(secret)


def kdf_params(n: int | None = None, argon2: tuple[int, int, int] | None = None) -> dict:
    """The KDF fields of a new key file: Argon2id (`argon2`: memory in KiB, iterations, lanes;
    amber's defaults when None), or scrypt of cost `n` where one is asked for (tests make
    cheap key files so)."""
    if n is not None:
        return {"kdf": "scrypt", "n": n, "r": SCRYPT_R, "p": SCRYPT_P}
    memory, iterations, lanes = argon2 or (ARGON2_MEMORY, ARGON2_ITERATIONS, ARGON2_LANES)
    return {"kdf": "argon2id", "memory": memory, "iterations": iterations, "lanes": lanes}


def wrap(
    keys: MasterKeys,
    password: str,
    *,
    n: int | None = None,
    argon2: tuple[int, int, int] | None = None,
    clock: Clock | None = None,
) -> bytes:
    """A key file: JSON with the KDF parameters (see `kdf_params`) and the sealed master keys."""
    salt = os.urandom(16)
    params = kdf_params(n, argon2)
    sealed = Sealer(_derive(password, salt, params)).seal(KIND_KEY, keys.encode())
    doc = {
        "version": 1,
        **params,
        "salt": _b64(salt),
        "created": to_iso((clock or SystemClock()).now()),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "data": _b64(sealed),
    }
    if keys.content_public is not None:
        doc["role"] = keys.role  # shown by `key list` without the password; must match the sealed role
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
    if doc.get("kdf") not in KDFS:
        raise IntegrityError("key file has an unknown KDF")
    if doc["kdf"] == "argon2id":
        _check_argon2(doc)
    else:
        _check_scrypt(doc)
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
    if "role" in doc and doc["role"] not in ROLES:
        raise IntegrityError(f"key file: role is not one of {', '.join(ROLES)}")
    return doc


def _positive(doc: dict, names: tuple[str, ...], kdf: str) -> None:
    for name in names:
        v = doc.get(name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise IntegrityError(f"key file has an invalid {kdf} parameter {name}")


def _check_scrypt(doc: dict) -> None:
    _positive(doc, ("n", "r", "p"), "scrypt")
    n, r, p = doc["n"], doc["r"], doc["p"]
    if n < 2 or n & (n - 1):
        raise IntegrityError(f"key file asks for scrypt N={n}, which is not a power of two")
    if r * p > 64 or n * r * p > MAX_SCRYPT_COST or 128 * r * n * p > MAX_SCRYPT_MEMORY:
        raise IntegrityError(
            f"key file asks for scrypt N={n}, r={r}, p={p}: more than {SCRYPT_MARGIN} times the cost amber "
            f"writes (at most {MAX_SCRYPT_MEMORY >> 20} MiB, r*p <= 64)"
        )


def _check_argon2(doc: dict) -> None:
    """Argon2id's parameters within RFC 9106's rules and MAX_ARGON2_MEMORY / MAX_ARGON2_COST."""
    _positive(doc, ("memory", "iterations", "lanes"), "Argon2id")
    memory, iterations, lanes = doc["memory"], doc["iterations"], doc["lanes"]
    if lanes > MAX_ARGON2_LANES or memory < 8 * lanes:
        raise IntegrityError(
            f"key file asks for Argon2id with {lanes} lanes and {memory} KiB: at most {MAX_ARGON2_LANES} "
            "lanes, and at least 8 KiB per lane"
        )
    if memory > MAX_ARGON2_MEMORY or memory * iterations > MAX_ARGON2_COST:
        raise IntegrityError(
            f"key file asks for Argon2id memory={memory} KiB, iterations={iterations}: more than amber "
            f"accepts (at most {MAX_ARGON2_MEMORY >> 10} MiB, memory x iterations <= {MAX_ARGON2_COST} KiB)"
        )


def cost(doc: dict) -> int:
    """The relative work of trying a (checked) key file: the bytes of memory its KDF fills,
    times its passes (scrypt: 128 * N * r * p, two passes; Argon2id: memory * iterations)."""
    if doc["kdf"] == "argon2id":
        return 1024 * doc["memory"] * doc["iterations"]
    return 2 * 128 * doc["n"] * doc["r"] * doc["p"]


def unwrap(raw: bytes, password: str) -> MasterKeys:
    doc = key_file_info(raw)
    try:
        salt, sealed = _unb64(doc["salt"]), _unb64(doc["data"])
    except (KeyError, ValueError, TypeError):
        raise IntegrityError("key file is malformed") from None
    try:
        key = _derive(password, salt, doc)
    except (ValueError, MemoryError) as e:
        raise IntegrityError(f"key file: {doc['kdf']} refused its parameters ({e})") from None
    try:
        plain = Sealer(key).open(KIND_KEY, sealed)
    except IntegrityError:
        raise WrongPassword("wrong password or no key found") from None
    keys = MasterKeys.decode(plain)
    if doc.get("role", FULL) != keys.role:
        raise IntegrityError(f"key file says its role is {doc.get('role', FULL)}, but it holds a {keys.role} key")
    return keys
