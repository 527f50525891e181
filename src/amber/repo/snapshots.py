"""Snapshots: the model, and the store that lists, reads, writes and finds them."""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import blake3

from ..clock import from_iso, to_iso
from ..crypto import content as contentkeys
from ..crypto.aead import KIND_SNAPSHOT, KIND_SNAPSHOT_HEADER
from ..errors import IntegrityError, NotFound, UsageError
from ..format import layout
from ..format import snapshot as snapfmt
from ..storage.base import Retention
from . import records as rec


@dataclass(frozen=True, slots=True)
class Snapshot:
    id: str
    time: _dt.datetime
    hostname: str
    username: str
    paths: list
    tags: list
    tree: str
    content_root: str
    retention: dict | None
    summary: dict
    doc: dict = field(repr=False)
    readable: bool = True  # False: only its header was opened (a write-only key); tree and content root unknown

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @classmethod
    def from_doc(cls, sid: str, doc: dict, what: str) -> "Snapshot":
        """The snapshot of a document; every field is checked first (format/snapshot.validate)."""
        if not isinstance(doc, dict):
            raise IntegrityError(f"{what}: not an amber snapshot")
        snapfmt.validate(doc, what)
        try:
            return cls(
                id=sid,
                time=from_iso(doc["time"]),
                hostname=doc["hostname"],
                username=doc.get("username", ""),
                paths=list(doc["paths"]),
                tags=list(doc.get("tags", [])),
                tree=doc["tree"],
                content_root=doc["content_root"],
                retention=doc.get("retention"),
                summary=dict(doc.get("summary", {})),
                doc=doc,
            )
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
            raise IntegrityError(f"{what}: malformed snapshot ({e})") from None

    @classmethod
    def from_header(cls, sid: str, head: dict) -> "Snapshot":
        """What a write-only key sees of a format-2 snapshot: its header (checked when decoded)."""
        return cls(
            id=sid,
            time=from_iso(head["time"]),
            hostname=head["hostname"],
            username=head.get("username", ""),
            paths=list(head["paths"]),
            tags=list(head.get("tags", [])),
            tree="",
            content_root="",
            retention=head.get("retention"),
            summary={},
            doc=head,
            readable=False,
        )

    def to_json(self) -> dict:
        """What `snapshots --json` shows; of a snapshot only its header could be read (a
        write-only key), no tree, content root or summary, and `"sealed": true`."""
        out = {
            "id": self.id,
            "short_id": self.short_id,
            "time": to_iso(self.time),
            "hostname": self.hostname,
            "username": self.username,
            "paths": self.paths,
            "tags": self.tags,
            "retention": self.retention,
            "legal_hold": False,
            "lock_tier": self.doc.get("lock_tier"),
        }
        if not self.readable:
            return dict(out, sealed=True)
        return dict(out, tree=self.tree, content_root=self.content_root, summary=self.summary)


class ContentKeys(NamedTuple):
    """What seals and opens format-2 snapshot documents (crypto/content.py)."""

    public: bytes  # the repository's content public key
    opener: contentkeys.ContentOpener | None  # None for a write-only key


class SnapshotStore:
    """The repository's snapshots, read once and cached until one is written or removed."""

    def __init__(self, records: rec.Records, warn: Callable[[str], None], content: ContentKeys | None = None) -> None:
        self.records = records
        self.warn = warn
        self.content = content  # format 2: documents are sealed to the content key
        self.written: dict[str, dict] = {}  # documents a write-only client wrote: it cannot open them again
        self.packs: list[str] | None = None  # the packs of the next snapshot saved, for its header
        self.only_sealed = False  # a repository made in format 2 holds no snapshot of format 1
        self.errors: list[str] = []  # snapshots that could not be read (check reports them)
        self.bad: dict[str, str] = {}  # snapshot id -> why it could not be read
        self._cache: list[Snapshot] | None = None
        self._copies: str | None = None  # folder of local copies of the stored documents, while `cached`

    @contextlib.contextmanager
    def cached(self, folder: str) -> Iterator[None]:
        """Read snapshot documents through local copies of their stored bytes, kept in `folder`.

        A snapshot document never changes (its name is the hash of its stored bytes), so
        a backup need not fetch every one of them again each time: it keeps the sealed
        bytes as stored (encrypted at rest) and authenticates a copy exactly as it would
        the stored object, reading the object again when the copy fails. The listing is
        always fresh, and copies of snapshots no longer listed are removed. Only for
        readers that need the documents, not their state in storage: `check` reads storage."""
        previous, self._copies = self._copies, folder
        try:
            yield
        finally:
            self._copies = previous

    def all(self) -> list[Snapshot]:
        """Every readable snapshot, oldest first."""
        if self._cache is None:
            out, self.errors = self.scan()
            for e in self.errors:
                self.warn(f"skipping an unreadable snapshot: {e} (a check reports it)")
            out.sort(key=lambda s: (s.time, s.id))
            self._cache = out
        return list(self._cache)

    def scan(self) -> tuple[list[Snapshot], list[str]]:
        """Read every snapshot afresh: (the readable ones, in storage order; what was wrong with the others).

        One that vanishes between the listing and the read (a forget running beside) is
        no error: it is simply gone."""
        out, errors = [], []
        bad: dict[str, str] = {}
        listed = self.records.listing(layout.SNAPSHOTS)
        for info in listed:
            sid = layout.last(info.key)
            try:
                out.append(self._load_copy(sid) if self._copies else self.load(sid))
            except NotFound:
                continue
            except IntegrityError as e:
                msg = str(e) if str(e).startswith(info.key) else f"{info.key}: {e}"
                errors.append(msg)
                bad[sid] = msg
        self.bad = bad
        if self._copies:
            self._remove_copies({layout.last(info.key) for info in listed})
        return out, errors

    def load(self, sid: str) -> Snapshot:
        key = layout.snapshot(sid)
        if sid in self.written:
            return Snapshot.from_doc(sid, self.written[sid], key)
        return self.open(key, self.records.storage.get(key))

    def open(self, key: str, raw: bytes) -> Snapshot:
        """The snapshot stored as `raw` under `key`, of format 1 or 2 (FORMAT.md §12)."""
        sid = layout.last(key)
        head, doc = self.records.authenticate(key, raw, lambda b: self._open_any(key, b))
        if head is None:  # format 1
            return Snapshot.from_doc(sid, snapfmt.decode(doc, key), key)  # type: ignore[arg-type]
        if doc is None:
            return Snapshot.from_header(sid, head)
        if not snapfmt.header_matches(head, doc):
            raise IntegrityError(f"{key}: its header does not say what its sealed document says")
        return Snapshot.from_doc(sid, doc, key)

    def _open_any(self, key: str, raw: bytes):
        """(None, plaintext) of a format-1 snapshot's bytes, `_open_sealed` of a format-2 one:
        whichever the bytes are (an original under garbage may be of either)."""
        if not snapfmt.is_sealed(raw):
            if self.only_sealed:
                raise IntegrityError(f"{key}: a snapshot of format 1 in a repository made in format 2")
            return None, self.records._sealer().open(KIND_SNAPSHOT, raw, key)
        return self._open_sealed(key, raw)

    def _open_sealed(self, key: str, raw: bytes) -> tuple[dict, dict | None]:
        """(header, document) of a format-2 snapshot's bytes; the document is None without the
        content key (a write-only key). IntegrityError for anything that does not authenticate."""
        head_env, doc_env = snapfmt.split_sealed(raw, key)
        head = snapfmt.decode_header(self.records._sealer().open(KIND_SNAPSHOT_HEADER, head_env, key + " header"), key)
        if self.content is None:
            raise IntegrityError(f"{key}: a snapshot of format 2 in a repository of format 1")
        mine = contentkeys.fingerprint(self.content.public).hex()
        if head["recipient"] != mine:
            raise IntegrityError(
                f"{key}: sealed to content key {head['recipient']}, not this repository's ({mine}): "
                "a writer made up a key"
            )
        if self.content.opener is None:
            return head, None
        try:
            writer = base64.b64decode(head["writer"], validate=True)
        except ValueError:
            raise IntegrityError(f"{key}: the header's writer key is not base64") from None
        plain = self.content.opener.sealer(writer, key).open(KIND_SNAPSHOT, doc_env, key)
        return head, snapfmt.decode(plain, key)

    def seal(self, doc: dict) -> tuple[str, bytes]:
        """(id, stored bytes) of a new snapshot document: format 2 when the repository is."""
        if self.content is None:
            return self.records.seal(rec.SNAPSHOT, doc)
        writer = contentkeys.new_writer(self.content.public)
        head = snapfmt.header_of(
            doc,
            base64.b64encode(writer.public).decode(),
            contentkeys.fingerprint(self.content.public).hex(),
            self.packs,
        )
        raw = snapfmt.join_sealed(
            self.records._sealer().seal(KIND_SNAPSHOT_HEADER, snapfmt.encode(head)),
            writer.sealer().seal(KIND_SNAPSHOT, snapfmt.encode(doc)),
        )
        return blake3.blake3(raw).hexdigest(), raw

    def _load_copy(self, sid: str) -> Snapshot:
        """A snapshot read through its local copy (see `cached`)."""
        key = layout.snapshot(sid)
        path = os.path.join(self._copies or "", sid)
        if sid in self.written:
            return Snapshot.from_doc(sid, self.written[sid], key)
        try:
            with open(path, "rb") as f:
                return self.open(key, f.read())
        except (OSError, IntegrityError):
            pass  # no copy, or a damaged one: read the stored object
        raw = self.records.storage.get(key)
        snap = self.open(key, raw)
        _write_copy(self._copies or "", sid, raw)
        return snap

    def _remove_copies(self, listed: set[str]) -> None:
        try:
            names = os.listdir(self._copies or "")
        except OSError:
            return
        for name in names:
            if name not in listed:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self._copies or "", name))

    def save(self, doc: dict, retention: Retention | None = None) -> str:
        sid, raw = self.seal(doc)
        self.records.storage.put(layout.snapshot(sid), raw, retention=retention)
        if self._copies:  # keep the stored bytes: the writer need not fetch them back
            _write_copy(self._copies, sid, raw)
        if self.content is not None and self.content.opener is None:
            self.written[sid] = doc
        self._cache = None
        return sid

    def delete(self, sid: str, *, bypass_governance: bool = False) -> None:
        self.records.storage.delete(layout.snapshot(sid), bypass_governance=bypass_governance)
        self._cache = None

    def find(self, ref: str) -> Snapshot:
        """By full id, a prefix of at least 8 hex characters, or 'latest'.

        A stored snapshot that the reference names but that cannot be read (damaged, malformed,
        or swapped for another snapshot's bytes) is an IntegrityError, never "no snapshot"."""
        snaps = self.all()
        if ref == "latest":
            if not snaps:
                raise NotFound("the repository has no snapshots")
            return snaps[-1]
        ref = ref.lower()
        if len(ref) < 8 or any(c not in "0123456789abcdef" for c in ref):
            raise UsageError(f"snapshot {ref!r}: give a full id, a prefix of at least 8 hex characters, or 'latest'")
        matches = [s for s in snaps if s.id.startswith(ref)]
        bad = sorted(sid for sid in self.bad if sid.startswith(ref))
        if len(matches) + len(bad) > 1:
            raise UsageError(f"snapshot prefix {ref} is ambiguous")
        if bad:
            raise IntegrityError(f"snapshot {bad[0][:8]} cannot be read: {self.bad[bad[0]]}", remedy="check")
        if not matches:
            raise NotFound(f"no snapshot {ref}")
        return matches[0]

    def stored_at(self, sid: str) -> _dt.datetime | None:
        """When storage says the snapshot document was written (None if unknown or gone)."""
        try:
            return self.records.storage.stat(layout.snapshot(sid)).modified
        except NotFound:
            return None

    def forget(self) -> None:
        self._cache = None


def _write_copy(folder: str, sid: str, raw: bytes) -> None:
    """Keep a snapshot's stored bytes locally (a copy we cannot write only costs a read)."""
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".snapshot-")
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, os.path.join(folder, sid))
    except OSError:
        pass
