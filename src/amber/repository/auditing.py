"""The audit log: appending events, verifying it, its witnesses and checkpoints, evidence.

Every change of the other modules records its event through `log_event`, after
the change is stored; the log's meaning cached for protection is dropped there,
since the new event may change it.
"""

from __future__ import annotations

import os

from ..audit.checkpoint import verify as verify_checkpoint
from ..audit.witness import fetch_server_key as witness_server_key
from ..audit.witness import parse_server_key
from ..audit.witness import tsa_chain as witness_tsa_chain
from ..check import verify_audit_log
from ..errors import CheckpointError, IntegrityError, UsageError
from ..evidence import export
from ..repo.snapshots import Snapshot
from ..storage.base import Retention
from .parts import RepositoryParts


class AuditOperations(RepositoryParts):
    """The audit log appended to, verified, witnessed and reset; evidence exported from it."""

    def log_event(self, kind: str, snapshot: str | None = None, lock: Retention | None = None, **details) -> dict:
        """Append one event to the audit log (after the change it records is stored)."""
        self._log_view = None
        return self.audit.append(kind, snapshot, lock, **details)

    def verify_audit_log(self, external: bytes | None = None, remember: bool = True, full: bool = False):
        """The log's own proofs (from the remembered checkpoint; every object when `full`), every
        snapshot against its event, and the config against its pin."""
        rep = verify_audit_log(self, external=external, remember=remember, full=full)
        rep.errors.extend(self.config_problems + self.pin_problems)
        return rep

    def add_witness(
        self,
        name: str,
        url: str,
        server_key: str | None = None,
        s3_endpoint: str | None = None,
        tsa_cert: bytes | None = None,
    ) -> dict:
        """Record a witness of the audit log (docs/AUDIT-LOG.md §Witnesses). An `amber serve`
        witness's key is pinned now: the one given, else the one the server shows (first use);
        so is a time-stamping authority's certificate chain (`tsa_cert`: PEM), which a token it
        makes now must verify under."""
        self.require_admin("add a witness")
        self.require_sound("add a witness")
        if url.startswith("rest:"):
            server_key = server_key or witness_server_key(url, self.audit.cacert)
            parse_server_key(server_key)
        pinned = None
        if url.startswith("tsa:"):
            pinned = witness_tsa_chain(url, tsa_cert, f"amber TSA probe {self.id}\n".encode(), self.audit.cacert)
        elif tsa_cert is not None:
            raise UsageError("--tsa-cert goes with --tsa URL")
        return self.audit.add_witness(name, url, server_key=server_key, s3_endpoint=s3_endpoint, tsa_cert=pinned)

    def witness_list(self) -> list[dict]:
        return [dict(doc, name=name) for name, doc in sorted(self.audit.witness_config().items())]

    def reset_trust(self, reason: str) -> tuple[dict, list[str]]:
        """Accept this repository's log as it is now after a restore from an older copy: a
        recorded `trust-reset` event naming the witness checkpoints it abandons."""
        self.require_admin("reset the trust in the audit log")
        self.require_sound("reset the trust in the audit log")
        return self.audit.reset_trust(reason)

    def latest_checkpoint(self) -> bytes:
        """The latest signed checkpoint of the audit log, verified against this repository's key."""
        note = self.audit.latest_checkpoint()
        if note is None:
            raise IntegrityError("the audit log has no checkpoint")
        try:
            verify_checkpoint(note, self.audit.origin, self.audit.public)
        except CheckpointError as e:
            raise IntegrityError(f"the latest checkpoint does not verify: {e}") from None
        return note

    def export_evidence(self, snap: Snapshot, paths: list[str], out_path: str) -> dict:
        """Write an evidence bundle for files of a snapshot to `out_path` (whole, or not at all);
        returns its manifest."""
        self.require_read("export evidence")
        tmp = out_path + ".tmp"
        try:
            manifest = export(self, snap, list(paths), tmp)
            os.replace(tmp, out_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return manifest
