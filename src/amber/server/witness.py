"""The server as a witness of each repository's audit log (docs/SERVER.md §Witness).

A client posts its new checkpoint with a consistency proof from the last one this
server cosigned for that repository (the C2SP tlog-witness request body):

    old <size this server cosigned last, 0 the first time>
    <base64 proof hash>        one line each, none when old is 0
    <blank line>
    <the checkpoint note, signed with the repository's log key>

The server checks the log key's signature (the key is pinned from the
`X-Amber-Log-Key` header on first use), that `old` is its own size (else 409
`witness-size` with `X-Amber-Witness-Size`), and the RFC 9162 consistency proof;
a smaller size (a rollback) or another root (a fork) is refused with 409 and
journaled. It answers one C2SP cosignature/v1 line signed with the server key
under the name `amber-serve-<first 16 hex of SHA-256(public key)>`.

    DIR/.amber-server/witness/<repository>.json   {"log_key", "note", "cosignature"}
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from dataclasses import dataclass

from ..audit import checkpoint as cpfmt
from ..audit import merkle
from ..errors import CheckpointError, ProofError
from .key import ServerKey
from .state import ServerPaths, check_repo_name

MAX_BODY = 64 << 10
MAX_PROOF = 64  # hashes in a consistency proof of a tree below 2**63


class WitnessRefused(Exception):
    def __init__(self, status: int, code: str, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.size = status, code, message, size


@dataclass(frozen=True)
class Cosigned:
    note: bytes
    line: str
    old_size: int


class WitnessBook:
    """The last checkpoint cosigned for each repository, and the cosigning."""

    def __init__(self, paths: ServerPaths, key: ServerKey, now) -> None:
        self.folder = os.path.join(paths.state, "witness")
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        self.key = key
        self.name = cpfmt.server_witness_name(key.public_raw())
        self.now = now  # () -> seconds since the epoch, the server's clock
        self._lock = threading.Lock()

    def _path(self, repo: str) -> str:
        return os.path.join(self.folder, check_repo_name(repo) + ".json")

    def state(self, repo: str) -> dict | None:
        try:
            with open(self._path(repo), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def latest(self, repo: str) -> bytes | None:
        """The last cosigned checkpoint with its cosignature line, as a note."""
        st = self.state(repo)
        return None if st is None else st["note"].encode() + st["cosignature"].encode()

    def add(self, repo: str, body: bytes, log_key: str | None) -> Cosigned:
        """Cosign the checkpoint in `body` if it extends the last one cosigned (see above)."""
        old, proof, note = _parse(body)
        with self._lock:
            st = self.state(repo)
            pinned = st["log_key"] if st else log_key
            cp = self._verified(note, pinned)
            size, root = (0, b"") if st is None else _size_root(st["note"])
            if old != size:
                raise WitnessRefused(409, "witness-size", f"this server cosigned {size} events last", size)
            if cp.size < size:
                raise WitnessRefused(409, "rollback", f"checkpoint of {cp.size} events after one of {size}: a rollback")
            if size:
                try:
                    merkle.verify_consistency(size, cp.size, root, cp.root, proof)
                except ProofError as e:
                    raise WitnessRefused(
                        409, "fork", f"checkpoint of {cp.size} events does not extend the one of {size}: {e}"
                    ) from None
            return self._store(repo, pinned, note, cp, size)

    def reset(self, repo: str, note: bytes, log_key: str | None) -> Cosigned:
        """Cosign `note` whatever came before (an admin's `amber audit trust --reset`)."""
        with self._lock:
            st = self.state(repo)
            pinned = st["log_key"] if st else log_key
            cp = self._verified(note, pinned)
            size = 0 if st is None else _size_root(st["note"])[0]
            return self._store(repo, pinned, note, cp, size)

    def _verified(self, note: bytes, log_key: str | None) -> cpfmt.Checkpoint:
        if not log_key:
            raise WitnessRefused(400, "bad-request", "the first checkpoint needs the log's key in X-Amber-Log-Key")
        try:
            name, public = cpfmt.parse_verifier_key(log_key)
            cp = cpfmt.verify(note, name, public)
        except CheckpointError as e:
            raise WitnessRefused(409, "another-log", f"not a checkpoint of this repository's log: {e}") from None
        if cp.origin != name:
            raise WitnessRefused(409, "another-log", f"a checkpoint of another log ({cp.origin})")
        return cp

    def _store(self, repo: str, log_key: str, note: bytes, cp: cpfmt.Checkpoint, old: int) -> Cosigned:
        signed = note
        line = cpfmt.cosignature_line(cp, self.name, self.key.public_raw(), self.key.sign, int(self.now()))
        doc = {"log_key": log_key, "note": signed.decode(), "cosignature": line}
        tmp = self._path(repo) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(repo))
        return Cosigned(signed, line, old)


def _size_root(note: str) -> tuple[int, bytes]:
    cp = cpfmt.parse(note.encode())[0]
    return cp.size, cp.root


def _parse(body: bytes) -> tuple[int, list[bytes], bytes]:
    head, sep, note = body.partition(b"\n\n")
    lines = head.decode("ascii", errors="replace").split("\n")
    first = lines[0].split(" ")
    if not sep or len(first) != 2 or first[0] != "old" or not first[1].isdigit() or len(first[1]) > 19:
        raise WitnessRefused(400, "bad-request", "the body is `old N`, the proof lines, a blank line and the note")
    if len(lines) - 1 > MAX_PROOF:
        raise WitnessRefused(400, "bad-request", "the consistency proof is too long")
    try:
        proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
    except (binascii.Error, ValueError):
        raise WitnessRefused(400, "bad-request", "a proof line is not base64") from None
    return int(first[1]), proof, note
