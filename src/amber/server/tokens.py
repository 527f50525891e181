"""Tokens and roles: who may do what to which repository.

A token is `amber_<id>_<secret>`, shown once when it is made; the server keeps
only its id, repository, role, expiry and the SHA-256 of the whole token in
`tokens.json`. A presented token is looked up by its id and its hash compared in
constant time (`hmac.compare_digest`, also against a dummy for an unknown id).
The file is read again whenever it changes, so `token revoke` takes effect on a
running server at its next request.

Roles:
- `auditor`: read and list.
- `backup`: also add new objects (put-if-absent), lock new objects and extend
  locks, place holds. Never delete, overwrite, shorten, downgrade, release or
  bypass, and never write a key file, the config, a setting or a revocation.
- `admin`: also create the repository, delete objects whose lock has expired and
  that are not held, release holds, bypass governance. The storage rules still
  refuse every delete or overwrite of a locked or held object.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass

from ..clock import from_iso, to_iso
from ..errors import AmberError, NotFound, UsageError
from .state import ServerPaths, check_repo_name

READ, ADD, LOCK, HOLD, RELEASE, DELETE, BYPASS, CREATE, CONFIGURE = (
    "read",
    "add",
    "lock",
    "hold",
    "release",
    "delete",
    "bypass",
    "create",
    "configure",
)
ROLES: dict[str, frozenset[str]] = {
    "auditor": frozenset({READ}),
    "backup": frozenset({READ, ADD, LOCK, HOLD}),
    "admin": frozenset({READ, ADD, LOCK, HOLD, RELEASE, DELETE, BYPASS, CREATE, CONFIGURE}),
}
# Objects only an admin writes (as the S3 backup policy refuses them, docs/S3.md §6): a key
# file, the config, a setting or a revocation planted with a backup token is refused outright.
ADMIN_WRITTEN = ("config", "keys/", "settings/", "revoked/")


def right_to_put(key: str) -> str:
    return CONFIGURE if key == "config" or key.startswith(ADMIN_WRITTEN[1:]) else ADD


PREFIX = "amber_"
_DUMMY = hashlib.sha256(b"no such token").hexdigest()


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    repo: str
    role: str
    hash: str
    created: str
    expires: str | None = None
    revoked: str | None = None

    def may(self, right: str) -> bool:
        return right in ROLES[self.role]

    def public(self) -> dict:
        """What `token list` shows: everything but the hash."""
        return {k: v for k, v in asdict(self).items() if k != "hash"}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class TokenStore:
    """`tokens.json`, read again when it changes; changed under `flock` by one process at a time."""

    def __init__(self, paths: ServerPaths) -> None:
        self.paths = paths
        self._seen: tuple | None = None
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    # -- the server's side ----------------------------------------------------------

    def authenticate(self, presented: str, now: _dt.datetime) -> Token | None:
        """The live token `presented` is, or None (unknown, wrong, revoked or expired)."""
        tid = presented[len(PREFIX) :].split("_", 1)[0] if presented.startswith(PREFIX) else ""
        token = self._current().get(tid)
        ok = hmac.compare_digest(token_hash(presented), token.hash if token else _DUMMY)
        if not ok or token is None or token.revoked:
            return None
        if token.expires and from_iso(token.expires) <= now:
            return None
        return token

    def _current(self) -> dict[str, Token]:
        try:
            st = os.stat(self.paths.tokens)
            seen: tuple | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen != self._seen:
                self._tokens = self._read()
                self._seen = seen
            return self._tokens

    def _read(self) -> dict[str, Token]:
        try:
            with open(self.paths.tokens, "rb") as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise AmberError(f"cannot read {self.paths.tokens}: {e}") from None
        out = {}
        for t in doc.get("tokens", []):
            try:
                token = Token(**t)
            except TypeError:
                continue
            if token.role in ROLES:
                out[token.id] = token
        return out

    # -- the token commands' side -------------------------------------------------

    def add(self, repo: str, role: str, expires: _dt.datetime | None, now: _dt.datetime) -> tuple[Token, str]:
        """A new token: (its record, the token itself, shown once)."""
        check_repo_name(repo)
        if role not in ROLES:
            raise UsageError(f"unknown role {role!r}: backup, auditor or admin")
        if expires is not None and expires <= now:
            raise UsageError(f"--expires {to_iso(expires)} is not in the future")
        tid = secrets.token_hex(6)
        secret = f"{PREFIX}{tid}_{secrets.token_urlsafe(32)}"
        token = Token(tid, repo, role, token_hash(secret), to_iso(now), to_iso(expires) if expires else None)
        with self._changing() as tokens:
            tokens[tid] = token
        return token, secret

    def revoke(self, tid: str, now: _dt.datetime) -> Token:
        with self._changing() as tokens:
            if tid not in tokens:
                raise NotFound(f"no token with id {tid!r}")
            if tokens[tid].revoked:
                return tokens[tid]
            d = asdict(tokens[tid])
            d["revoked"] = to_iso(now)
            tokens[tid] = Token(**d)
            return tokens[tid]

    def list(self) -> list[Token]:
        return sorted(self._read().values(), key=lambda t: (t.repo, t.created, t.id))

    def _changing(self):
        return _Change(self)


class _Change:
    """Read, change and atomically replace `tokens.json` under an exclusive `flock`."""

    def __init__(self, store: TokenStore) -> None:
        self.store = store

    def __enter__(self) -> dict[str, Token]:
        self.store.paths.ensure()
        self.fd = os.open(self.store.paths.tokens + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.tokens = self.store._read()
        return self.tokens

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                path = self.store.paths.tokens
                tmp = f"{path}.tmp-{os.getpid()}"
                doc = {"tokens": [asdict(t) for t in self.tokens.values()]}
                with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                    json.dump(doc, f, indent=1, sort_keys=True)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
        finally:
            os.close(self.fd)
