"""The server's Ed25519 key: generated at first start, kept in the state folder (0600).

It is never derived from a password: no client holds anything that could recreate it.
The journal is signed with it, and a witness of the audit log can countersign with it.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import AmberError
from .state import ServerPaths


class ServerKey:
    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()

    @classmethod
    def load_or_create(cls, paths: ServerPaths) -> ServerKey:
        """The key in the state folder, made there first if there is none (exclusive create:
        two processes starting at once end up with the same key)."""
        paths.ensure()
        try:
            with open(paths.key, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return cls._create(paths)
        try:
            key = serialization.load_pem_private_key(raw, password=None)
        except ValueError:
            raise AmberError(f"{paths.key} is not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise AmberError(f"{paths.key} is not an Ed25519 key")
        return cls(key)

    @classmethod
    def _create(cls, paths: ServerPaths) -> ServerKey:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(paths.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls.load_or_create(paths)  # another process made it first
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        made = cls(key)
        with open(paths.public_key, "w") as f:
            f.write(made.public_text() + "\n")
        return made

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def public_raw(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def public_text(self) -> str:
        """`ed25519:` and the base64 of the raw 32-byte public key."""
        return "ed25519:" + base64.b64encode(self.public_raw()).decode()


def verify(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
        return True
    except InvalidSignature:
        return False
