"""The envelope that seals every encrypted object.

    byte 0      envelope version (1)
    byte 1      algorithm: 1 = AES-256-GCM under the repository data key (or, for a
                key file, under the key derived from its password); 2 = AES-256-GCM
                under a writer key agreed with the repository's content public key
                (crypto/content.py: what holds user data in a repository of format 2)
    byte 2      object kind (KIND_*), so no object can stand in for another
    bytes 3-14  random 96-bit nonce
    then        ciphertext followed by the 16-byte GCM tag

The first three bytes are the associated data: a changed version, algorithm
or kind fails authentication like any other flipped bit.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import IntegrityError

VERSION = 1
ALG_AES256GCM = 1
ALG_CONTENT = 2  # AES-256-GCM under a writer key (X25519 + HKDF-SHA256, crypto/content.py)
ALGORITHMS = (ALG_AES256GCM, ALG_CONTENT)

KIND_DATA = 1
KIND_TREE = 2
KIND_PACK_HEADER = 3
KIND_INDEX = 4
KIND_SNAPSHOT = 5
KIND_CONFIG = 6
KIND_KEY = 7
KIND_EVENT = 8  # retention and legal-hold events of a snapshot
KIND_PRUNE = 9  # prune plans and tombstones
KIND_LOG = 10  # audit log entries
KIND_LOG_BUNDLE = 11  # the tiled audit log's entry bundles
KIND_LOG_TILE = 12  # the tiled audit log's hash tiles
KIND_PACK_HEADER_SEALED = 13  # a pack header naming the writer key its blobs are sealed under
KIND_SNAPSHOT_HEADER = 14  # what a snapshot shows without the content key (format 2)

HEADER_LEN = 3
NONCE_LEN = 12
TAG_LEN = 16
OVERHEAD = HEADER_LEN + NONCE_LEN + TAG_LEN

_KIND_NAMES = {
    KIND_DATA: "data blob",
    KIND_TREE: "tree blob",
    KIND_PACK_HEADER: "pack header",
    KIND_INDEX: "index",
    KIND_SNAPSHOT: "snapshot",
    KIND_CONFIG: "config",
    KIND_KEY: "key",
    KIND_EVENT: "event",
    KIND_PRUNE: "prune record",
    KIND_LOG: "log entry",
    KIND_LOG_BUNDLE: "log entry bundle",
    KIND_LOG_TILE: "log tile",
    KIND_PACK_HEADER_SEALED: "pack header",
    KIND_SNAPSHOT_HEADER: "snapshot header",
}


class Sealer:
    """Seals and opens envelopes under one 32-byte key, of one algorithm (ALG_*): an envelope
    of the other algorithm never opens, so no object sealed under the shared data key can
    stand in for content sealed under a writer key, nor the other way round."""

    __slots__ = ("_aead", "alg")

    def __init__(self, key: bytes, alg: int = ALG_AES256GCM) -> None:
        if len(key) != 32:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        if alg not in ALGORITHMS:
            raise ValueError(f"unknown envelope algorithm {alg}")
        self._aead = AESGCM(key)
        self.alg = alg

    def seal(self, kind: int, plaintext: bytes) -> bytes:
        header = bytes((VERSION, self.alg, kind))
        nonce = os.urandom(NONCE_LEN)
        return header + nonce + self._aead.encrypt(nonce, plaintext, header)

    def open(self, kind: int, envelope: bytes, what: str = "") -> bytes:
        what = what or _KIND_NAMES.get(kind, "object")
        if len(envelope) < OVERHEAD:
            raise IntegrityError(f"{what}: truncated ({len(envelope)} bytes)")
        header = bytes(envelope[:HEADER_LEN])
        if header[0] != VERSION:
            raise IntegrityError(f"{what}: unknown envelope version {header[0]}")
        if header[1] != self.alg:
            if header[1] in ALGORITHMS:
                raise IntegrityError(f"{what}: sealed with algorithm {header[1]}, expected {self.alg}")
            raise IntegrityError(f"{what}: unknown algorithm {header[1]}")
        if header[2] != kind:
            raise IntegrityError(
                f"{what}: holds a {_KIND_NAMES.get(header[2], 'unknown object')}, "
                f"expected a {_KIND_NAMES.get(kind, 'object')}"
            )
        nonce = envelope[HEADER_LEN : HEADER_LEN + NONCE_LEN]
        try:
            return self._aead.decrypt(nonce, envelope[HEADER_LEN + NONCE_LEN :], header)
        except InvalidTag:
            raise IntegrityError(f"{what}: authentication failed (damaged or tampered)") from None


def envelope_kind(envelope: bytes | memoryview) -> int | None:
    """The kind an envelope claims (unauthenticated: opening it checks), None if too short."""
    return envelope[2] if len(envelope) >= OVERHEAD else None
