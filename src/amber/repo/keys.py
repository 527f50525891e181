"""The key files of a repository: opening with a password, listing, adding, removing, revoking.

Each `keys/<id>` wraps the same master keys under one password (FORMAT.md
§5.2); `<id>` is the BLAKE3 of the key file's bytes. A revocation
(`revoked/<name>`, §5.3) names a key file's identity — the SHA-256 of its
KDF salt — so the same key file stored again under another name (or with
its plaintext fields changed) stays revoked.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Callable

from ..clock import Clock, to_iso
from ..crypto import keys as keyfile
from ..crypto.aead import KIND_CONFIG
from ..crypto.keys import MasterKeys
from ..errors import IntegrityError, NotFound, UsageError, WrongPassword
from ..format import canonical, layout
from ..format import records as recordfmt
from ..storage.base import Retention
from . import records as rec
from .events import user_name

REVOCATION: rec.RecordType[dict] = rec.RecordType(
    "revocation",
    KIND_CONFIG,
    canonical.sorted_json,
    lambda raw, what: recordfmt.validate_revocation(canonical.decode_object(raw, what, "a revocation"), what),
)

# Called with each key file the password unwraps: returns normally when it opens this repository,
# raises IntegrityError (not this repository's keys, config replaced) or WrongPassword (revoked).
Accept = Callable[[MasterKeys, str, bytes], None]


def identity(raw: bytes) -> str:
    """A key file's identity: SHA-256 of its KDF salt, what a revocation names. Changing
    the salt changes the key that seals the master keys: it needs the password, as a new key does."""
    return hashlib.sha256(base64.b64decode(keyfile.key_file_info(raw)["salt"])).hexdigest()


class KeyRing:
    def __init__(self, records: rec.Records) -> None:
        self.records = records

    def ids(self) -> list[str]:
        return [layout.last(info.key) for info in self.records.listing(layout.KEYS)]

    def keys(self) -> list[str]:
        """The storage keys of every key file (what every snapshot needs)."""
        return [info.key for info in self.records.listing(layout.KEYS)]

    def unlock(
        self,
        password: str,
        warn: Callable[[str], None] | None = None,
        accept: Accept | None = None,
        problems: list[str] | None = None,
    ) -> tuple[MasterKeys, str]:
        """(master keys, key id) from the first key file the password opens and `accept` takes.

        Every key file is read and checked first; the well-formed ones are tried cheapest
        first (each bounded by `keyfile.key_file_info`). An invalid key file, and one
        that unwraps but `accept` refuses (a planted key file wrapping other master keys, a
        revoked one), is reported through `warn` and in `problems`, naming it and why, and
        skipped: no planted key file can make the repository unopenable. When none opens:
        WrongPassword if a valid key file refused the password or was revoked, else an
        IntegrityError naming the others."""
        problems = problems if problems is not None else []
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError("the password is not UTF-8 text") from None
        ids = self.ids()
        if not ids:
            raise IntegrityError("repository has no key files")
        valid: list[tuple[int, str, bytes]] = []
        invalid: list[str] = []
        for kid in ids:
            key = layout.key_file(kid)
            try:
                raw = self.records.get(rec.KEY_FILE, key)
                valid.append((keyfile.cost(keyfile.key_file_info(raw)), kid, raw))
            except NotFound:
                continue  # removed since the listing
            except IntegrityError as e:
                problem = str(e) if str(e).startswith(key) else f"{key}: {e}"
                invalid.append(problem)
                _skip(warn, problems, "skipping an invalid key file", problem)
        refused: WrongPassword | None = None
        revoked: WrongPassword | None = None
        tampered: list[str] = []  # the password opens them, but what they hold is not a valid key
        for _cost, kid, raw in sorted(valid):
            try:
                keys = keyfile.unwrap(raw, password)
            except WrongPassword as e:
                refused = refused or e
                continue
            except IntegrityError as e:
                invalid.append(f"{layout.key_file(kid)}: {e}")
                tampered.append(invalid[-1])
                _skip(warn, problems, "skipping an invalid key file", invalid[-1])
                continue
            try:
                if accept is not None:
                    accept(keys, kid, raw)
                return keys, kid
            except WrongPassword as e:  # revoked: the message says so
                revoked = revoked or e
                _skip(warn, problems, "skipping a key file", f"{layout.key_file(kid)}: {e}")
            except IntegrityError as e:
                invalid.append(f"{layout.key_file(kid)}: {e}")
                _skip(warn, problems, "skipping a key file the password opens", invalid[-1])
        if tampered and revoked is None:  # the password is right: what it opens was edited or forged
            raise IntegrityError("the key file this password opens is not valid: " + "; ".join(tampered))
        if revoked is not None or refused is not None or not invalid:
            raise revoked or refused or WrongPassword("wrong password or no key found")
        raise IntegrityError("no key file opens this repository: " + "; ".join(invalid))

    def others_opened(self, password: str, keys: MasterKeys, skip: set[str]) -> list[str]:
        """Key files (but those in `skip`) that `password` opens but that hold other master keys
        than `keys`: planted ones an open never reached, as it stops at the first that opens."""
        problems = []
        for kid in self.ids():
            key = layout.key_file(kid)
            if key in skip:
                continue
            try:
                other = keyfile.unwrap(self.records.get(rec.KEY_FILE, key), password)
            except (IntegrityError, NotFound, WrongPassword):
                continue  # invalid ones were reported when opening; others are other passwords'
            if other != keys:
                problems.append(f"{key}: the password opens it, but it holds other master keys (planted?)")
        return problems

    def describe(self, current: str, revoked: dict[str, dict] | None = None) -> list[dict]:
        """Every key file; one whose identity is in `revoked` says when it was revoked."""
        out = []
        for kid in self.ids():
            try:
                raw = self.records.storage.get(layout.key_file(kid))
                doc = keyfile.key_file_info(raw)
            except (IntegrityError, NotFound) as e:
                out.append({"id": kid, "current": kid == current, "error": str(e)})
                continue
            item = {
                "id": kid,
                "current": kid == current,
                "created": doc.get("created"),
                "host": doc.get("host"),
                "user": doc.get("user"),
                "kdf": doc["kdf"],
                "role": doc.get("role", keyfile.FULL),
            }
            rev = (revoked or {}).get(identity(raw))
            if rev is not None:
                item["revoked"] = rev["time"]
            out.append(item)
        return out

    # -- revocations -----------------------------------------------------------------

    def revocations(self, errors: list[str] | None = None) -> dict[str, dict]:
        """identity -> the revocation that names it (the earliest); unreadable ones go to `errors`."""
        out: dict[str, dict] = {}
        for info, doc in self.records.scan(REVOCATION, layout.REVOKED, errors):
            cur = out.get(doc["revoked"])
            if cur is None or doc["time"] < cur["time"]:
                out[doc["revoked"]] = dict(doc, record=info.key)
        return out

    def revoke(
        self, kid: str, clock: Clock, *, by: str, retention: Retention | None = None, held: bool = False
    ) -> tuple[str, str]:
        """Store a revocation of key file `kid` (protected like a key file); (identity, its key)."""
        raw = self.records.get(rec.KEY_FILE, layout.key_file(kid))
        ident = identity(raw)
        doc = {
            "v": 1,
            "revoked": ident,
            "key": kid,
            "time": to_iso(clock.now()),
            "host": socket.gethostname(),
            "user": user_name(),
            "by": by,
        }
        name = self.records.put(REVOCATION, doc, layout.revocation, retention)
        if held:
            self.records.storage.set_legal_hold(layout.revocation(name), True)
        return ident, layout.revocation(name)

    def add(
        self,
        keys: MasterKeys,
        password: str,
        clock: Clock,
        *,
        retention: Retention | None = None,
        held: bool = False,
        kdf_n: int | None = None,
    ) -> str:
        raw = keyfile.wrap(keys, password, n=kdf_n, clock=clock)
        kid = self.records.put(rec.KEY_FILE, raw, layout.key_file, retention)
        if held:
            self.records.storage.set_legal_hold(layout.key_file(kid), True)
        return kid

    def resolve(self, ref: str) -> str:
        matches = [kid for kid in self.ids() if kid.startswith(ref)]
        if not matches:
            raise NotFound(f"no key {ref!r}")
        if len(matches) > 1:
            raise UsageError(f"key prefix {ref!r} is ambiguous")
        return matches[0]

    def remove(self, kid: str) -> None:
        self.records.storage.delete(layout.key_file(kid))


def _skip(warn: Callable[[str], None] | None, problems: list[str], why: str, problem: str) -> None:
    problems.append(problem)
    if warn is not None:
        warn(f"{why}: {problem}")
