"""Sealed write-once records: the one round trip every named object of a repository takes.

    put:  encode → seal (its envelope kind) → name = BLAKE3(stored bytes) → put-if-absent
    get:  get → the name matches the bytes → open → decode (which checks types)

Snapshots, lock events, prune plans, tombstones and run markers, index files
and key files are records; so is the config, under its fixed name. Each kind
is a `RecordType`: its envelope kind (None for key files, which protect
themselves with the password) and its encoding, from format/. Decoders raise
`IntegrityError` and nothing else, so one bad object never stops a reader.
Bytes that do not authenticate are "replaced or damaged": someone wrote over
the name, or the storage lost bits; where storage keeps older versions (S3),
the message says whether the original underneath still authenticates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import blake3

from ..crypto import keys as keyfile
from ..crypto.aead import KIND_CONFIG, KIND_EVENT, KIND_INDEX, KIND_PRUNE, KIND_SNAPSHOT, Sealer
from ..errors import AmberError, IntegrityError, NotFound, StorageError
from ..format import canonical, layout
from ..format import compression as compressionfmt
from ..format import index as indexfmt
from ..format import records as recordfmt
from ..format import snapshot as snapfmt
from ..format.pack import PackEntry
from ..storage.base import ObjectInfo, Retention, Storage

T = TypeVar("T")
MAX_INDEX_RAW = 1 << 30  # an index file's plaintext, decompressed


@dataclass(frozen=True, slots=True)
class RecordType(Generic[T]):
    what: str  # names the kind in messages
    envelope: int | None  # AEAD kind; None: stored as encoded
    encode: Callable[[T], bytes]
    decode: Callable[[bytes, str], T]  # (plaintext, what) -> value; IntegrityError if malformed


def _json_record(kind: str, validate: Callable[[dict, str], dict]) -> Callable[[bytes, str], dict]:
    return lambda raw, what: validate(canonical.decode_object(raw, what, kind), what)


def _config(raw: bytes, what: str) -> dict:
    return recordfmt.validate_config(canonical.decode_object(raw, what, "an amber config"), what)


def _index(raw: bytes, what: str) -> list[tuple[bytes, list[PackEntry]]]:
    return list(indexfmt.decode(compressionfmt.decompress_bounded(raw, MAX_INDEX_RAW, what), what))


def _index_records(raw: bytes, what: str) -> list[indexfmt.PackRecords]:
    return indexfmt.decode_records(compressionfmt.decompress_bounded(raw, MAX_INDEX_RAW, what), what)


def _encode_index(packs: list[tuple[bytes, list[PackEntry]]]) -> bytes:
    return compressionfmt.compress_bounded(indexfmt.encode(packs))


def _key_file(raw: bytes, what: str) -> bytes:
    try:
        keyfile.key_file_info(raw)
    except IntegrityError as e:
        raise IntegrityError(f"{what}: {e}") from None
    return raw


CONFIG: RecordType[dict] = RecordType("config", KIND_CONFIG, canonical.ascii_json, _config)
SNAPSHOT: RecordType[dict] = RecordType("snapshot", KIND_SNAPSHOT, snapfmt.encode, snapfmt.decode)
EVENT: RecordType[dict] = RecordType(
    "event", KIND_EVENT, canonical.sorted_json, _json_record("an event", recordfmt.validate_event)
)
PRUNE: RecordType[dict] = RecordType(
    "prune record", KIND_PRUNE, canonical.sorted_json, _json_record("a prune record", recordfmt.validate_prune)
)
INDEX: RecordType[list] = RecordType("index file", KIND_INDEX, _encode_index, _index)
# the same records, decoded as loading the index reads them: each pack's entries as stored
INDEX_RECORDS: RecordType[list] = RecordType("index file", KIND_INDEX, _encode_index, _index_records)
KEY_FILE: RecordType[bytes] = RecordType("key file", None, lambda raw: raw, _key_file)


class Records:
    """Puts and gets records in one repository's storage, sealed with its data key."""

    def __init__(self, storage: Storage, sealer: Sealer | None) -> None:
        self.storage = storage
        self.sealer = sealer  # None until the repository is opened: only key files then

    def seal(self, rtype: RecordType[T], value: T) -> tuple[str, bytes]:
        """(name, stored bytes) of a record."""
        raw = rtype.encode(value)
        if rtype.envelope is not None:
            raw = self._sealer().seal(rtype.envelope, raw)
        return blake3.blake3(raw).hexdigest(), raw

    def put(
        self, rtype: RecordType[T], value: T, key_for: Callable[[str], str], retention: Retention | None = None
    ) -> str:
        """Store a record under the key its name gives (`key_for(name)`); returns the name."""
        name, raw = self.seal(rtype, value)
        self.storage.put(key_for(name), raw, retention=retention)
        return name

    def put_at(self, rtype: RecordType[T], value: T, key: str, retention: Retention | None = None) -> None:
        """Store a record under a fixed name (the config)."""
        _name, raw = self.seal(rtype, value)
        self.storage.put(key, raw, retention=retention)

    def get(self, rtype: RecordType[T], key: str, *, named: bool = True) -> T:
        """Read, authenticate and decode one record; `named`: its key carries its hash."""
        return self.open(rtype, key, self.storage.get(key), named=named)

    def open(self, rtype: RecordType[T], key: str, raw: bytes, *, named: bool = True) -> T:
        """Authenticate and decode a record's stored bytes. Bytes that do not authenticate
        (another object written over the name, or damage) are reported as such, with what
        storage keeps of the key's earlier versions; they are never read in its place."""
        if rtype.envelope is not None:
            self._sealer()  # a repository that is not open yet is no damage
        sealer = self._sealer() if rtype.envelope is not None else None
        plain = self.authenticate(
            key, raw, lambda b: sealer.open(rtype.envelope, b, key) if sealer is not None else b, named=named
        )
        return rtype.decode(plain, key)

    def authenticate(self, key: str, raw: bytes, opener: Callable[[bytes], T], *, named: bool = True) -> T:
        """`opener(raw)` (which raises IntegrityError for bytes that do not authenticate), after
        the name check; a failure is reported as "replaced or damaged", with what storage keeps
        of the key's earlier versions (whether the original opens with `opener`)."""
        try:
            return self._checked(key, raw, opener, named)
        except IntegrityError as e:
            detail = str(e).removeprefix(f"{key}: ")
            raise IntegrityError(
                f"{key}: content does not authenticate — replaced or damaged ({detail})"
                + self._earlier_versions(key, opener, named)
            ) from None

    @staticmethod
    def _checked(key: str, raw: bytes, opener: Callable[[bytes], T], named: bool) -> T:
        if named and blake3.blake3(raw).hexdigest() != layout.content_name(key):
            raise IntegrityError(f"{key}: does not match its name")
        return opener(raw)

    def _earlier_versions(self, key: str, opener: Callable[[bytes], object], named: bool) -> str:
        """What a versioned store (S3) keeps under `key` besides what a read returns: how many
        older versions, and whether the original (the oldest) authenticates."""
        versions = getattr(self.storage, "versions", None)
        get_version = getattr(self.storage, "get_version", None)
        if versions is None or get_version is None:
            return ""
        try:
            stored = versions(key)
            original = get_version(key, stored[0].version_id) if len(stored) > 1 else None
        except AmberError as e:
            return f"; its older versions could not be read ({e})"
        if original is None:
            return "; storage keeps no older version of it"
        kept = f"; storage keeps {len(stored) - 1} older version(s); the original version {stored[0].version_id}"
        try:
            self._checked(key, original, opener, named)
        except IntegrityError:
            return f"{kept} does not authenticate either"
        return f"{kept} authenticates: a new version was written over it"

    def listing(self, prefix: str) -> list[ObjectInfo]:
        """Every object under `prefix`, listed whole. An object deleted beside while the backend
        lists it (a forget or prune of another client) makes the listing start again."""
        return listing(self.storage, prefix)

    def scan(
        self, rtype: RecordType[T], prefix: str, errors: list[str] | None = None
    ) -> Iterator[tuple[ObjectInfo, T]]:
        """Every readable record under `prefix`; the others go to `errors` (or are skipped).
        One that vanishes between the listing and the read (deleted beside) is simply gone."""
        for info in self.listing(prefix):
            try:
                value = self.get(rtype, info.key)
            except NotFound:
                continue
            except IntegrityError as e:
                if errors is not None:
                    errors.append(str(e) if str(e).startswith(info.key) else f"{info.key}: {e}")
                continue
            yield info, value

    def _sealer(self) -> Sealer:
        if self.sealer is None:
            raise IntegrityError("the repository is not open: its records cannot be read")
        return self.sealer


LIST_ATTEMPTS = 5


def listing(storage: Storage, prefix: str) -> list[ObjectInfo]:
    """`storage.list(prefix)` read whole, again if an object vanished while it was being listed."""
    for attempt in range(LIST_ATTEMPTS):
        try:
            return list(storage.list(prefix))
        except (FileNotFoundError, NotFound):
            if attempt == LIST_ATTEMPTS - 1:
                raise StorageError(f"{prefix}: objects kept vanishing while they were listed") from None
    return []  # not reached
