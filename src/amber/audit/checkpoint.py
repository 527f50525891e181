"""Signed checkpoints in the signed-note format of C2SP (Go's sumdb tree heads).

A checkpoint is a note whose body is three lines,

    <origin>
    <tree size, decimal>
    <root hash, standard base64>

followed by a blank line and one signature line per signer,

    — <key name> <base64(4-byte key hash || 64-byte Ed25519 signature)>

The signature covers the body bytes including its final newline. The key
hash is the first 4 bytes of SHA-256(key name || "\\n" || 0x01 || public key).
A public key is written as the verifier key `<name>+<key hash hex>+<base64(0x01 || public key)>`.
Pure functions: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import CheckpointError

ALG_ED25519 = 1
DASH = "\u2014"
MAX_NOTE = 16 << 10


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> bytes:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n".encode()


def key_hash(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()[:4]


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def verifier_key(name: str, public: bytes) -> str:
    return f"{name}+{key_hash(name, public).hex()}+{base64.b64encode(bytes([ALG_ED25519]) + public).decode()}"


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    try:
        name, khash, b64 = text.strip().split("+", 2)  # a name has no "+"; base64 may
        raw = base64.b64decode(b64, validate=True)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise CheckpointError("public key is not an Ed25519 verifier key")
        public = raw[1:]
        if key_hash(name, public).hex() != khash.lower():
            raise CheckpointError("public key hash does not match the key")
    except (ValueError, binascii.Error, UnicodeError):
        raise CheckpointError("public key is not a verifier key (name+hash+base64)") from None
    return name, public


def sign(cp: Checkpoint, name: str, key: Ed25519PrivateKey) -> bytes:
    return Signer(name, key).sign(cp)


class Signer:
    """Signs the checkpoints of one log under one key, its signature line's start made once
    (a full verify re-makes every stored checkpoint to compare it)."""

    __slots__ = ("_key", "_line")

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._line = f"{DASH} {name} ".encode(), key_hash(name, public_bytes(key))

    def sign(self, cp: Checkpoint) -> bytes:
        body = cp.body()
        return self.note(body, self._key.sign(body))

    def note(self, body: bytes, signature: bytes) -> bytes:
        """The note of `body` with `signature`, this key's Ed25519 signature of it."""
        start, khash = self._line
        return body + b"\n" + start + base64.b64encode(khash + signature) + b"\n"


def parse(note: bytes) -> tuple[Checkpoint, list[tuple[str, bytes]], bytes]:
    """(checkpoint, [(signer name, 4+64 signature bytes)], signed body); no verification."""
    if len(note) > MAX_NOTE:
        raise CheckpointError("checkpoint is too large")
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError("checkpoint is not UTF-8") from None
    body, sep, sigs = text.partition("\n\n")
    if not sep:
        raise CheckpointError("checkpoint has no signature block")
    lines = body.split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint body needs origin, size and root lines")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not origin or not (size_s.isascii() and size_s.isdigit()) or (size_s != "0" and size_s.startswith("0")):
        raise CheckpointError("checkpoint has a malformed origin or size")
    if len(size_s) > 19:  # a tree size is a uint64 (C2SP tlog-checkpoint)
        raise CheckpointError("checkpoint size is out of range")
    try:
        root = base64.b64decode(root_s, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError("checkpoint root is not base64") from None
    if len(root) != 32:
        raise CheckpointError("checkpoint root is not 32 bytes")
    signatures = []
    if not sigs.endswith("\n"):
        raise CheckpointError("checkpoint signature block must end with a newline")
    for line in sigs[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            raise CheckpointError("malformed signature line")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise CheckpointError("signature is not base64") from None
        if len(raw) not in (68, 76):  # a signature, or a witness's cosignature/v1
            raise CheckpointError("signature has the wrong length")
        signatures.append((parts[1], raw))
    size = int(size_s)
    if size >= 1 << 64:
        raise CheckpointError("checkpoint size is out of range")
    return Checkpoint(origin, size, root), signatures, (body + "\n").encode()


def signed_by(note: bytes, name: str) -> bytes | None:
    """The note as `name` signed it: its body and `name`'s signature line alone, without the
    lines other signers (witnesses' cosignatures) added after it; None if `name` has none.
    For a note `sign` made, this is that note byte for byte (what a TSA witness timestamped)."""
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError:
        return None
    body, sep, sigs = text.partition("\n\n")
    own = next((line for line in sigs.split("\n") if line.startswith(f"{DASH} {name} ")), None)
    return f"{body}\n\n{own}\n".encode() if sep and own is not None else None


def verify(note: bytes, name: str, public: bytes) -> Checkpoint:
    """The checkpoint, if `note` carries a valid signature by (name, public)."""
    cp, sigs, body = parse(note)
    want = key_hash(name, public)
    pub = Ed25519PublicKey.from_public_bytes(public)
    for signer, raw in sigs:
        if signer == name and raw[:4] == want and len(raw) == 68:
            try:
                pub.verify(raw[4:], body)
            except InvalidSignature:
                raise CheckpointError("checkpoint signature does not verify") from None
            return cp
    raise CheckpointError(f"checkpoint is not signed by {name}")


# -- cosignatures (C2SP tlog-cosignature, cosignature/v1) --------------------------------

ALG_COSIGNATURE_V1 = 4


def cosignature_key_hash(name: str, public: bytes) -> bytes:
    """The key ID of a witness key: SHA-256(name || "\\n" || 0x04 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public).digest()[:4]


def server_witness_name(public: bytes) -> str:
    """The name an `amber serve` key cosigns under: derived from the key, so a pinned key
    alone is enough to verify its cosignatures."""
    return "amber-serve-" + hashlib.sha256(public).hexdigest()[:16]


def cosigned_message(cp: Checkpoint, timestamp: int) -> bytes:
    """What a witness signs: `cosignature/v1`, `time <seconds since the epoch>`, the checkpoint body."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + cp.body()


def cosignature_line(cp: Checkpoint, name: str, public: bytes, sign: Callable[[bytes], bytes], timestamp: int) -> str:
    """A note signature line `— <name> <base64(key ID || uint64 time || Ed25519 signature)>`;
    `sign(message)` is the witness's Ed25519 signing function."""
    sig = cosignature_key_hash(name, public) + timestamp.to_bytes(8, "big") + sign(cosigned_message(cp, timestamp))
    return f"{DASH} {name} {base64.b64encode(sig).decode()}\n"


def verify_cosignature(note: bytes, name: str, public: bytes) -> tuple[Checkpoint, int]:
    """(checkpoint, time) if `note` carries a valid cosignature/v1 by the witness (name, public)."""
    cp, _sigs, _body = parse(note)
    want = cosignature_key_hash(name, public)
    pub = Ed25519PublicKey.from_public_bytes(public)
    for line in note.decode().partition("\n\n")[2].splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[1] != name:
            continue
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) != 76 or raw[:4] != want:
            continue
        timestamp = int.from_bytes(raw[4:12], "big")
        try:
            pub.verify(raw[12:], cosigned_message(cp, timestamp))
        except InvalidSignature:
            raise CheckpointError(f"the cosignature of {name} does not verify") from None
        return cp, timestamp
    raise CheckpointError(f"checkpoint is not cosigned by {name}")
