"""Credentials that can only add: what a backup client needs, and no more.

A backup reads, puts new objects and extends retention; it never deletes,
never shortens or downgrades a lock, never bypasses governance and never
releases a legal hold. This wrapper refuses those calls before they reach
the storage (which refuses overwrites on its own: every put is
put-if-absent), so a client given it cannot destroy what it wrote, whoever
controls that client. Every refused call is recorded in `refused`.
"""

from __future__ import annotations

from ...errors import Locked
from ..base import COMPLIANCE, Retention, StorageWrapper


class AppendOnlyStorage(StorageWrapper):
    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.refused: list[str] = []

    def _refuse(self, what: str):
        self.refused.append(what)
        raise Locked(f"append-only access cannot {what}")

    def delete(self, key, *, bypass_governance=False):
        self._refuse(f"delete {key}")

    def set_retention(self, key, retention: Retention, *, bypass_governance=False):
        if bypass_governance:
            self._refuse(f"bypass governance on {key}")
        cur = self.inner.stat(key).retention
        if cur is not None and (
            retention.until < cur.until or (cur.mode == COMPLIANCE and retention.mode != COMPLIANCE)
        ):
            self._refuse(f"shorten the retention of {key}")
        return self.inner.set_retention(key, retention)

    def set_legal_hold(self, key, on):
        if not on:
            self._refuse(f"release the legal hold on {key}")
        return self.inner.set_legal_hold(key, on)
