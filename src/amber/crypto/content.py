"""Public-key sealing of what holds user data: file content, trees and snapshot documents
(repositories of format 2, docs/FORMAT.md §4.3).

A repository of format 2 has a content key pair (X25519). Every client holds its public
half; only full key files hold the private half. A writing client makes a fresh writer
key pair for each run, agrees a secret with the repository's public key (X25519), and
derives the run's content key from it with HKDF-SHA256, as HPKE's DHKEM(X25519,
HKDF-SHA256) base mode does (RFC 9180 §4.1): the blobs it writes are sealed under that
key (AES-256-GCM, envelope algorithm 2) and each pack names the writer's public key. The
writer's private half lives only in memory while the run lasts, so a client holding a
backup key cannot open what it wrote yesterday, nor what any other client wrote: opening
needs the repository's private key. A snapshot document is sealed the same way under a
writer key of its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import IntegrityError
from .aead import ALG_CONTENT, Sealer

KEY_LEN = 32
FINGERPRINT_LEN = 8
_INFO = b"amber content key v1"


def fingerprint(public: bytes) -> bytes:
    """The 8 bytes that name a repository content public key in envelopes and documents."""
    return hashlib.sha256(b"amber content public key\0" + public).digest()[:FINGERPRINT_LEN]


def public_of(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def generate() -> tuple[bytes, bytes]:
    """A new content key pair: (private, public), raw 32 bytes each."""
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    key = X25519PrivateKey.generate()
    private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return private, public_of(private)


def _derive(shared: bytes, writer_public: bytes, recipient_public: bytes) -> bytes:
    if shared == bytes(KEY_LEN):
        raise IntegrityError("writer key is of small order: no key can be agreed with it")
    return HKDF(hashes.SHA256(), KEY_LEN, salt=None, info=_INFO + writer_public + recipient_public).derive(shared)


@dataclass(frozen=True, slots=True)
class WriterKey:
    """One run's writer key: its public half (stored with what it seals) and the content key."""

    public: bytes
    key: bytes

    def sealer(self) -> Sealer:
        return Sealer(self.key, ALG_CONTENT)


def new_writer(recipient_public: bytes, private: bytes | None = None) -> WriterKey:
    """A fresh writer key for content only the holder of `recipient_public`'s private half opens
    (`private`: the writer's private key, given only to reproduce the golden vectors)."""
    eph = X25519PrivateKey.from_private_bytes(private) if private is not None else X25519PrivateKey.generate()
    public = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    except ValueError as e:
        raise IntegrityError(f"the repository's content public key is unusable: {e}") from None
    return WriterKey(public, _derive(shared, public, recipient_public))


class ContentOpener:
    """Opens content sealed to one repository content key pair; keys derived once per writer key."""

    __slots__ = ("_private", "public", "_keys")

    def __init__(self, private: bytes) -> None:
        self._private = X25519PrivateKey.from_private_bytes(private)
        self.public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._keys: dict[bytes, Sealer] = {}

    def sealer(self, writer_public: bytes, what: str) -> Sealer:
        """The sealer for content written under `writer_public`; IntegrityError naming `what`
        for a writer key no secret can be agreed with."""
        s = self._keys.get(writer_public)
        if s is None:
            if len(writer_public) != KEY_LEN:
                raise IntegrityError(f"{what}: the writer key is not {KEY_LEN} bytes")
            try:
                shared = self._private.exchange(X25519PublicKey.from_public_bytes(writer_public))
            except ValueError:
                raise IntegrityError(f"{what}: the writer key is of small order") from None
            try:
                s = Sealer(_derive(shared, writer_public, self.public), ALG_CONTENT)
            except IntegrityError as e:
                raise IntegrityError(f"{what}: {e}") from None
            if len(self._keys) > 4096:
                self._keys.clear()
            self._keys[writer_public] = s
        return s
