"""Who wrote each audit event, and whether the log honours it (docs/AUDIT-LOG.md §4.4). Pure.

In a repository of format 2 a password no longer means full power: a backup key
(write-only) holds the data key and the checkpoint signing key, because a
backup must read the log and append to it. So the log itself says who wrote
each event: every event carries its author's Ed25519 public key and a
signature over its canonical bytes, bound to the log's origin (and, through
`seq`, to its position). The first event of format 2 (`init` of a new
repository, or `upgrade`) pins the admin key, which every full key file holds;
an admin-signed `key-add` of role `backup` registers a backup key's author
key, and an admin-signed `key-remove` or `key-revoke` of that key file ends it.

From the pin on, an event is honoured only when its author may write it: the
admin key anything, a registered backup key only what a backup client writes
(`BACKUP_EVENTS`; a lock only without a governance bypass). Everything else —
unsigned, a bad signature, an unknown or removed author, an admin event signed
by a backup key — is an error naming the event, and is left out of every
replay that forget, prune and release decide by (`honoured`), so a stolen
backup credential cannot free what the log says is locked or held.
Logs without an event of format 2 are judged as before: every event counts.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..format.canonical import utf8_json

CONTEXT = b"amber audit event v1\n"  # what an author signs: CONTEXT || origin || \n || event without sig
FORMAT2 = 2
PINNING = ("init", "upgrade")  # the events that may start format 2 and pin the admin key
# what a backup (write-only) client appends: its snapshots (backed up or copied in), longer locks,
# holds, its checks, the anomaly alarms its backups raise, and tags added
BACKUP_EVENTS = frozenset({"snapshot", "copy", "lock", "hold", "check", "anomaly", "tag"})
REMOVING = ("key-remove", "key-revoke")
FOLDING = frozenset({*PINNING, "key-add", *REMOVING})  # the only events that change who may write what


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def unb64(value: object, size: int) -> bytes | None:
    """The `size` bytes standard base64 `value` holds (canonical, padded), else None."""
    if not isinstance(value, str) or len(value) != 4 * ((size + 2) // 3):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size and b64(raw) == value else None


def public_key(author: Ed25519PrivateKey) -> str:
    """The author's public key as events name it: base64 of its 32 raw bytes."""
    return b64(author.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def signed_bytes(ev: dict, origin: str) -> bytes:
    """What the author signs: the event's canonical bytes without `sig`, after the context
    string and the log's origin (`amber/<repository id>`), so a signed event means nothing
    in another repository, and (its `seq` included) at another position."""
    return CONTEXT + origin.encode("utf-8") + b"\n" + utf8_json({k: v for k, v in ev.items() if k != "sig"})


def sign(ev: dict, author: Ed25519PrivateKey, origin: str) -> dict:
    """`ev` with `author` and `sig` added."""
    out = {**ev, "author": public_key(author)}
    out["sig"] = b64(author.sign(signed_bytes(out, origin)))
    return out


def signature_ok(ev: dict, origin: str) -> bool:
    """Whether `ev` carries a valid signature by the author it names."""
    pub, sig = unb64(ev.get("author"), 32), unb64(ev.get("sig"), 64)
    if pub is None or sig is None:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, signed_bytes(ev, origin))
        return True
    except (InvalidSignature, ValueError):
        return False


def _details(ev: dict) -> dict:
    d = ev.get("details")
    return d if isinstance(d, dict) else {}


def pinned_admin(ev: dict) -> str | None:
    """The admin key an event of format 2 pins (`init` or `upgrade` with `format` 2), else None."""
    d = _details(ev)
    if ev.get("type") not in PINNING or d.get("format") != FORMAT2:
        return None
    key = d.get("admin_key")
    return key if unb64(key, 32) is not None else None


@dataclass
class Authors:
    """The fold of who may write what, in log order (`judge` each event once)."""

    origin: str
    admin: str | None = None  # the admin key (base64), from the event that pinned it
    pinned_by: int | None = None  # that event's seq: events after it must be signed
    backup: dict[str, str] = field(default_factory=dict)  # author key -> its key file id, registered
    removed: dict[str, list] = field(default_factory=dict)  # author key -> [key file id, seq that removed it]

    def judge(self, ev: dict) -> tuple[bool, str | None]:
        """(honoured, problem): whether the replay may count `ev`, and the error that names it."""
        if self.admin is None:
            return self._pin(ev)
        what = _what(ev)
        if "sig" not in ev:
            return False, f"{what} is not signed, in a repository of format 2 (since event {self.pinned_by})"
        if not signature_ok(ev, self.origin):
            return False, f"{what}: its signature does not verify (altered, or signed for another log or position)"
        author = ev["author"]
        if author == self.admin:
            self._admin(ev)
            return True, None
        if author in self.backup:
            if backup_may_write(ev):
                return True, None
            kid = self.backup[author]
            return False, (
                f"{what} is signed by backup key {kid[:16]}, which may not write it: not honoured "
                "(only the admin key writes events other than snapshot, copy, lock, hold, check, anomaly "
                "and tags added)"
            )
        if author in self.removed:
            kid, seq = self.removed[author]
            return False, f"{what} is signed by backup key {kid[:16]}, removed by event {seq}: not honoured"
        return False, f"{what} is signed by a key this log does not know ({author}): not honoured"

    def _pin(self, ev: dict) -> tuple[bool, str | None]:
        """Before format 2 every event counts; the event that starts it pins the admin key, and
        if it is signed, it must be by that key."""
        admin = pinned_admin(ev)
        if admin is None:
            return True, None
        self.admin, self.pinned_by = admin, ev.get("seq")
        if "sig" in ev and (ev.get("author") != admin or not signature_ok(ev, self.origin)):
            return True, f"{_what(ev)}: pins admin key {admin} but is not validly signed by it"
        return True, None

    def _admin(self, ev: dict) -> None:
        """What an admin event changes: a backup key registered, or one removed."""
        d, kind = _details(ev), ev.get("type")
        kid = d.get("key")
        if not isinstance(kid, str):
            return
        if kind == "key-add" and d.get("role") == "backup":
            author = d.get("author_key")
            if unb64(author, 32) is not None and author != self.admin:
                self.backup[author] = kid
                self.removed.pop(author, None)
        elif kind in REMOVING:
            for author in [a for a, k in self.backup.items() if k == kid]:
                del self.backup[author]
                self.removed[author] = [kid, ev.get("seq")]

    def to_json(self) -> dict:
        return {
            "origin": self.origin,
            "admin": self.admin,
            "pinned_by": self.pinned_by,
            "backup": self.backup,
            "removed": self.removed,
        }

    @classmethod
    def from_json(cls, doc: dict) -> Authors:
        return cls(
            str(doc["origin"]),
            None if doc["admin"] is None else str(doc["admin"]),
            None if doc["pinned_by"] is None else int(doc["pinned_by"]),
            {str(a): str(k) for a, k in doc["backup"].items()},
            {str(a): [str(k), s] for a, (k, s) in doc["removed"].items()},
        )


def backup_may_write(ev: dict) -> bool:
    """A backup key adds: snapshots, holds, checks, locks that never bypass governance, and
    tags that remove none (removing one could free a snapshot from `forget --keep-tag`)."""
    if ev.get("type") not in BACKUP_EVENTS:
        return False
    if ev.get("type") == "tag":
        return _details(ev).get("remove", []) == []
    return not (ev.get("type") == "lock" and _details(ev).get("bypass_governance") is True)


def _what(ev: dict) -> str:
    sid = ev.get("snapshot")
    about = f" of snapshot {sid[:8]}" if isinstance(sid, str) else ""
    return f"event {ev.get('seq')} ({ev.get('type')}{about}, {ev.get('time')})"


def honoured(
    entries: Iterable[tuple[dict, bytes]], origin: str, kinds: frozenset[str] | None = None
) -> list[tuple[dict, bytes]]:
    """The entries the log honours, in order (the others are `audit verify`'s to report).
    Given `kinds`, only the honoured entries of those types: then only they and the events
    that change who may write what (`FOLDING`) are judged — no other event changes the fold,
    so the verdicts are the same, without checking every event's signature."""
    judge = Authors(origin).judge
    if kinds is None:
        return [(ev, raw) for ev, raw in entries if judge(ev)[0]]
    judged = FOLDING | kinds
    return [(ev, raw) for ev, raw in entries if _kind(ev) in judged and judge(ev)[0] and _kind(ev) in kinds]


def _kind(ev: dict) -> str:
    kind = ev.get("type")
    return kind if isinstance(kind, str) else ""


def labels(events: Iterable[dict], origin: str) -> list[str]:
    """Who wrote each event, for `amber audit log`: "" before format 2 (and for an unsigned
    pin), else the admin key, the backup key file the author key belongs to, or that the
    log does not honour the event."""
    a, out = Authors(origin), []
    for ev in events:
        honoured, problem = a.judge(ev)
        author = ev.get("author")
        if a.admin is None:
            out.append("")
        elif not honoured or problem is not None:
            out.append("NOT HONOURED (see `amber audit verify`)")
        elif author == a.admin:
            out.append("by the admin key")
        elif author in a.backup:
            out.append(f"by backup key {a.backup[author][:16]}")
        else:
            out.append("")
    return out
