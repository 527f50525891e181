"""Key files: listing, adding, revoking, a new password, the upgrade to format 2.

A key file is added locked as long as the longest snapshot lock, and held if
any snapshot is; every change is an audit-logged event. What the key this
session opened may do is its role, so those checks live here too:
`require_admin` (a write-only backup key changes no key, setting, lock release
or deletion) and `require_read` (it reads nothing back).
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .. import trust
from ..crypto import keys as keyfile
from ..crypto.keys import MasterKeys
from ..errors import IntegrityError, NotAllowed, UsageError
from ..format import layout
from ..repo import records as rec
from ..repo.blobs import require_full
from ..retention import locks
from .parts import RepositoryParts


class KeyManagement(RepositoryParts):
    """Key files and what the key this session opened may do."""

    def list_keys(self) -> list[dict]:
        """Every key file; revoked ones still stored (locked) say when they were revoked."""
        return self.key_ring.describe(self.key_id, self.key_ring.revocations())

    def add_key(self, password: str, *, kdf_n: int | None = None, role: str = keyfile.FULL) -> str:
        """Add a key file, protected as long as the longest lock, and held if any snapshot is.
        A `backup` key is write-only (crypto/keys.py): only a full key adds keys."""
        check_new_password(password)
        if role not in keyfile.ROLES:
            raise UsageError(f"the role must be one of {', '.join(keyfile.ROLES)}")
        self.require_admin("add a key")
        if role == keyfile.BACKUP and not self.keys.sealed_content:
            raise UsageError("write-only keys need a repository of format 2: run `amber upgrade` first")
        self.require_sound("add a key")
        self.audit.check_history()
        retention, held = locks.strongest_protection(self)
        keys = self.keys.backup_key() if role == keyfile.BACKUP else self.keys
        kid = self.key_ring.add(keys, password, self.clock, retention=retention, held=held, kdf_n=kdf_n)
        if keys.sealed_content:
            self.log_event("key-add", key=kid, role=role, author_key=b64(author_public(keys)))
        else:
            self.log_event("key-add", key=kid)
        return kid

    def require_admin(self, what: str) -> None:
        """NotAllowed (exit 13) unless this is a full key: a write-only key changes no key,
        setting, lock release or deletion."""
        if not self.keys.can_read:
            raise NotAllowed(f"refusing to {what}: this is a write-only (backup) key; it needs a full key")

    def require_read(self, what: str) -> None:
        """NotAllowed (exit 13) unless this key opens content: a write-only key reads nothing back."""
        require_full(self.keys, what)

    def upgrade(self, *, kdf_n: int | None = None) -> dict:
        """Upgrade a repository of format 1 to format 2 by adding objects only: a key file for the
        same password holding the content key pair and admin key (the one this session opened is
        revoked, replaced by it) and an `upgrade` event pinning both public keys. Data written
        before stays sealed under the data key, which every key holds; from now on content, trees
        and snapshots are sealed to the content key, and `key add --role backup` works."""
        self.require_admin("upgrade the repository")
        if self.keys.sealed_content:
            raise UsageError("the repository is already of format 2")
        if self._password is None:
            raise UsageError("upgrade needs the repository opened with its password")
        self.require_sound("upgrade the repository")
        self.audit.check_history()
        keys = self.keys.with_content()
        retention, held = locks.strongest_protection(self)
        kid = self.key_ring.add(keys, self._password, self.clock, retention=retention, held=held, kdf_n=kdf_n)
        self.audit.author = keys.author_key()  # from the upgrade on, this session signs with the admin key
        self.log_event(
            "upgrade", format=2, key=kid, admin_key=b64(author_public(keys)), content_key=b64(keys.content_public)
        )
        old = self.key_id
        others = [k for k in self.key_ring.ids() if k not in (old, kid)]
        trust.revoke(self, old, replaced_by=kid)
        return {"format": 2, "key": kid, "replaced": old, "other_keys": others}

    def remove_key(self, ref: str) -> str:
        """Revoke a key file (a record naming its identity, and a `key-revoke` event), then delete
        it. A locked key file stays until its lock ends (reported through `warn`), revoked."""
        self.require_admin("remove a key")
        kid = self.key_ring.resolve(ref)
        if kid == self.key_id:
            raise UsageError("refusing to remove the key this session was opened with (`key passwd` replaces it)")
        self.require_sound("remove a key")
        self.audit.check_history()
        try:
            self.key_ring.records.get(rec.KEY_FILE, layout.key_file(kid))
        except IntegrityError:  # not a key file at all: nothing to revoke, only to delete
            self.key_ring.remove(kid)
            self.log_event("key-remove", key=kid)
            return kid
        trust.revoke(self, kid)
        return kid

    def change_password(self, password: str, *, kdf_n: int | None = None) -> str:
        """A new key file for the same master keys (`key-add`), then the one this session opened
        revoked (`key-revoke` with `replaced_by`); returns the new key's id."""
        self.require_admin("change a password")
        check_new_password(password)
        self.require_sound("change the password")
        self.audit.check_history()
        retention, held = locks.strongest_protection(self)
        kid = self.key_ring.add(self.keys, password, self.clock, retention=retention, held=held, kdf_n=kdf_n)
        self.log_event("key-add", key=kid, replaces=self.key_id)
        old, self.key_id = self.key_id, kid
        trust.revoke(self, old, replaced_by=kid)
        return kid


def b64(raw: bytes | None) -> str:
    return base64.b64encode(raw or b"").decode()


def author_public(keys: MasterKeys) -> bytes:
    """The raw Ed25519 public key of `keys`' author key (format 2)."""
    author = keys.author_key()
    if author is None:
        raise ValueError("keys of format 1 have no author key")
    return author.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def check_new_password(password: str) -> None:
    """Refuse an empty password for a new repository or key (as restic does)."""
    if not isinstance(password, str) or password == "":
        raise UsageError("an empty password is not allowed")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("the password is not UTF-8 text") from None
