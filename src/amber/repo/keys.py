"""The key files of a repository: opening with a password, listing, adding, removing.

Each `keys/<id>` wraps the same master keys under one password (FORMAT.md
§5.2); `<id>` is the BLAKE3 of the key file's bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from ..clock import Clock
from ..crypto import keys as keyfile
from ..crypto.keys import MasterKeys
from ..errors import IntegrityError, NotFound, UsageError, WrongPassword
from ..format import layout
from ..storage.base import Retention
from . import records as rec


class KeyRing:
    def __init__(self, records: rec.Records) -> None:
        self.records = records

    def ids(self) -> list[str]:
        return [layout.last(info.key) for info in self.records.listing(layout.KEYS)]

    def keys(self) -> list[str]:
        """The storage keys of every key file (what every snapshot needs)."""
        return [info.key for info in self.records.listing(layout.KEYS)]

    def unlock(self, password: str, warn: Callable[[str], None] | None = None) -> tuple[MasterKeys, str]:
        """(master keys, key id) from the first key file the password opens.

        Every key file is read and checked first; the well-formed ones are tried cheapest
        first (each costs at most `keyfile.MAX_SCRYPT_COST`). An invalid key file is reported
        through `warn`, naming it and why. When none opens: WrongPassword if a valid key file
        refused the password, else an IntegrityError naming the invalid ones."""
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
                if warn is not None:
                    warn(f"skipping an invalid key file: {problem}")
        refused = False
        for _cost, kid, raw in sorted(valid):
            try:
                return keyfile.unwrap(raw, password), kid
            except WrongPassword:
                refused = True
            except IntegrityError as e:
                problem = f"{layout.key_file(kid)}: {e}"
                invalid.append(problem)
                if warn is not None:
                    warn(f"skipping an invalid key file: {problem}")
        if refused or not invalid:
            raise WrongPassword("wrong password or no key found")
        raise IntegrityError("no key file could be tried, every one is invalid: " + "; ".join(invalid))

    def describe(self, current: str) -> list[dict]:
        out = []
        for kid in self.ids():
            try:
                doc = keyfile.key_file_info(self.records.storage.get(layout.key_file(kid)))
            except (IntegrityError, NotFound) as e:
                out.append({"id": kid, "current": kid == current, "error": str(e)})
                continue
            out.append(
                {
                    "id": kid,
                    "current": kid == current,
                    "created": doc.get("created"),
                    "host": doc.get("host"),
                    "user": doc.get("user"),
                    "kdf": doc["kdf"],
                }
            )
        return out

    def add(
        self,
        keys: MasterKeys,
        password: str,
        clock: Clock,
        *,
        retention: Retention | None = None,
        held: bool = False,
        kdf_n: int = keyfile.SCRYPT_N,
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
