"""The server's journal: every change, hash-chained and signed with the server's key.

One JSON object a line in `DIR/.amber-server/journal.jsonl`:

    {"seq": 0, "time": "2031-01-01T00:00:00Z", "op": "put", "repo": "office", "key": "data/ab/...",
     "token": "3f9a...", "role": "backup", "remote": "10.0.0.5", "details": {...},
     "prev": "<hex>", "hash": "<hex>", "sig": "<base64>"}

`hash` is SHA-256 of `amber-server-journal-v1\n` followed by the record without
`hash` and `sig` as canonical JSON (sorted keys, no spaces, ASCII); `prev` is the
previous record's `hash` (64 zeros for the first); `sig` is the server key's
Ed25519 signature of the 32 hash bytes. Removing, reordering or editing a record
breaks the chain or a signature, and only the server key can sign a new one.

Appends are serialised by a lock in the process and `flock` on the file (the
token commands append from another process) and fsynced before the change is
answered. A line torn by a crash is cut off at the next append, and the cut is
itself journaled (`journal-repair`).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

from ..clock import Clock, SystemClock, to_iso
from ..errors import IntegrityError
from .key import ServerKey, verify

DOMAIN = b"amber-server-journal-v1\n"
GENESIS = "0" * 64
_TAIL = 65536  # bytes read back from the end to find the last record


def record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k not in ("hash", "sig")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(DOMAIN + canonical.encode()).hexdigest()


class Journal:
    def __init__(self, path: str, key: ServerKey, clock: Clock | None = None) -> None:
        self.path = path
        self.key = key
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()

    def append(
        self,
        op: str,
        *,
        repo: str = "",
        key: str = "",
        token: str = "",
        role: str = "",
        remote: str = "",
        **details: Any,
    ) -> dict[str, Any]:
        """Add one signed record (fsynced before it returns) and return it."""
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                last = self._last(fd)
                if last is not None and last.get("torn"):
                    os.ftruncate(fd, last["end"])
                    last = self._write(
                        fd,
                        self._record(last["prev_record"], "journal-repair", details={"dropped_bytes": last["dropped"]}),
                    )
                rec = self._record(
                    last,
                    op,
                    repo=repo,
                    key=key,
                    token=token,
                    role=role,
                    remote=remote,
                    **({"details": details} if details else {}),
                )
                return self._write(fd, rec)
            finally:
                os.close(fd)

    def _record(self, last: dict | None, op: str, **fields: Any) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "seq": 0 if last is None else int(last["seq"]) + 1,
            "time": to_iso(self.clock.now()),
            "op": op,
            **{k: v for k, v in fields.items() if v not in ("", None)},
            "prev": GENESIS if last is None else last["hash"],
        }
        rec["hash"] = record_hash(rec)
        rec["sig"] = base64.b64encode(self.key.sign(bytes.fromhex(rec["hash"]))).decode()
        return rec

    @staticmethod
    def _write(fd: int, rec: dict[str, Any]) -> dict[str, Any]:
        line = (json.dumps(rec, sort_keys=True, ensure_ascii=True) + "\n").encode()
        os.write(fd, line)
        os.fsync(fd)
        return rec

    @staticmethod
    def _last(fd: int) -> dict | None:
        """The last record, or a note that the file ends in a torn line (where it should end,
        how many bytes go, and the last whole record before it)."""
        size = os.fstat(fd).st_size
        if size == 0:
            return None
        start = max(0, size - _TAIL)
        tail = os.pread(fd, size - start, start)
        lines = tail.split(b"\n")
        torn = tail[-1:] != b"\n"
        whole = lines[:-1]  # the part after the last newline is "" or a torn line
        prev = None
        for raw in reversed(whole):
            if raw.strip():
                try:
                    prev = json.loads(raw)
                except ValueError:
                    raise IntegrityError("the server journal's last record is not JSON: run `amber serve journal`")
                break
        if torn:
            end = size - len(lines[-1])
            return {"torn": True, "end": end, "dropped": size - end, "prev_record": prev}
        return prev

    def records(self) -> Iterator[tuple[int, bytes]]:
        """(line number, raw line) of every line, as stored."""
        try:
            with open(self.path, "rb") as f:
                yield from enumerate(f, 1)
        except FileNotFoundError:
            return


def verify_journal(journal: Journal, repo: str | None = None) -> list[dict[str, Any]]:
    """Every record (of `repo`, when given), after checking the whole chain and every signature
    with the server's key; `IntegrityError` names the first bad record."""
    out = []
    prev = GENESIS
    for expected_seq, (line_no, raw) in enumerate(journal.records()):
        where = f"server journal {journal.path}, line {line_no}"
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict):
                raise ValueError("not an object")
        except ValueError as e:
            raise IntegrityError(f"{where}: not a JSON record ({e})") from None
        where += f" (record {rec.get('seq')!r}, {rec.get('op')!r})"
        if rec.get("seq") != expected_seq:
            raise IntegrityError(f"{where}: expected record {expected_seq}: a record was removed or reordered")
        if rec.get("prev") != prev:
            raise IntegrityError(f"{where}: does not follow the record before it (hash chain broken)")
        if rec.get("hash") != record_hash(rec):
            raise IntegrityError(f"{where}: its content does not match its hash (edited)")
        try:
            sig = base64.b64decode(rec.get("sig", ""), validate=True)
        except (ValueError, TypeError):
            sig = b""
        if not verify(journal.key.public, sig, bytes.fromhex(rec["hash"])):
            raise IntegrityError(f"{where}: its signature does not verify with the server key")
        prev = rec["hash"]
        if repo is None or rec.get("repo") == repo:
            out.append(rec)
    return out
