"""A repository of format 2 made through the library, until `amber init` makes one: a repository
of format 1 upgraded in place as `amber upgrade` does, with a backup (write-only) key."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from amber.audit import authors
from amber.audit.log import AuditLog
from amber.check import verify_audit_log
from amber.repository import FORMAT_VERSION

from sources import KDF_N, init_repo, open_repo

ADMIN_PASSWORD = "the admin's password"
BACKUP_PASSWORD = "the backup host's password"


class Upgraded:
    """A repository of format 2 with a backup key registered by an admin-signed `key-add`;
    `admin` and `backup` are clients of each. Where `init` makes format 2 it is made so;
    else (before format 2 is wired into `init`) a repository of format 1 is upgraded in place
    as `amber upgrade` does: a new full key file of format 2 for the admin, its admin key
    pinned by an `upgrade` event it signs."""

    def __init__(self, path, clock=None) -> None:
        self.path = os.fspath(path)
        if FORMAT_VERSION >= 2:
            self.admin_keys = init_repo(path, clock, password=ADMIN_PASSWORD).keys
        else:
            self._upgrade(init_repo(path, clock))
        self.admin = open_repo(path, clock, password=ADMIN_PASSWORD)
        self.backup_keys = self.admin_keys.backup_key()
        self.backup_id = self.admin.key_ring.add(self.backup_keys, BACKUP_PASSWORD, self.admin.clock, kdf_n=KDF_N)
        self.admin.log_event(
            "key-add", key=self.backup_id, role="backup", author_key=authors.public_key(self.backup_keys.author_key())
        )
        self.backup = open_repo(path, clock, password=BACKUP_PASSWORD)

    def _upgrade(self, first) -> None:
        """A key file of format 2 for the admin's password, and the `upgrade` event it signs."""
        self.admin_keys = first.keys.with_content()
        kid = first.key_ring.add(self.admin_keys, ADMIN_PASSWORD, first.clock, kdf_n=KDF_N)
        first.audit.author = self.admin_keys.author_key()
        first.log_event(
            "upgrade",
            format=2,
            admin_key=authors.public_key(self.admin_keys.author_key()),
            content_key=authors.b64(self.admin_keys.content_public),
            key=kid,
        )

    def as_backup(self, kind: str, sid: str, **details) -> dict:
        """An event about snapshot `sid` and its record under `locks/`, written as the backup
        host's library writes them: below any command (which refuse, or read trees)."""
        return write_with_record(self.backup, kind, sid, **details)

    def log_as(self, author: Ed25519PrivateKey) -> AuditLog:
        """The log as a client holding `author` (and the data and signing keys) writes it."""
        r = self.admin
        return AuditLog(r.storage, r.records.sealer, r.keys.signing_key(), r.config["id"], r.clock, "f" * 64, author)

    def verify(self, full: bool = True) -> list[str]:
        return verify_audit_log(open_repo(self.path, password=ADMIN_PASSWORD), remember=False, full=full).errors


def write_with_record(repo, kind: str, sid: str, **details) -> dict:
    """A lock, hold or release of snapshot `sid`: its record under `locks/`, then its event."""
    repo.event_store.write(sid, kind, None, **details)
    return repo.log_event(kind, sid, None, **details)
