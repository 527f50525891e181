"""Witnesses: each new signed checkpoint of the audit log, kept outside the repository.

A witness is configured by a `witness` event (details: name, url, and for an
`amber serve` witness the pinned server key) and mirrored in the client state,

    $XDG_STATE_HOME/amber/<repository id>/witnesses.json

so a client whose repository was rolled back to before the event still knows it.
After every append the new checkpoint goes to every witness:

    dir:PATH or s3:BUCKET/PREFIX   put-if-absent `checkpoints/<size, 12 digits>-<root hex>`
                                   (never overwritten; the bucket's own Object Lock keeps it)
    rest:https://HOST:PORT/NAME    POST /NAME/witness/add-checkpoint: the server checks a
                                   consistency proof from the last checkpoint it cosigned and
                                   answers a C2SP cosignature/v1 line (docs/SERVER.md)
    tsa:http(s)://HOST/PATH        an RFC 3161 time-stamping authority: the note is timestamped
                                   and the token kept in the repository (timestamps.py, tsa.py)

`audit verify` compares the log with each witness's newest checkpoint
(`Witnessing.compare`, witnessing.py). A `trust-reset` event lists the witness checkpoints
a restore from an older copy abandons; they are no longer compared.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AlreadyExists, AmberError, CheckpointError, IntegrityError, UsageError
from ..repo import client_state
from ..storage.base import Storage
from ..storage.registry import open_storage
from . import checkpoint as cpfmt
from . import timestamps, tsa

EVENT = "witness"
RESET = "trust-reset"
CHECKPOINTS = "checkpoints/"
RESETS = "resets/"
SERVER_CHECKPOINT = "the server's cosigned checkpoint"
SERVING = "serving-server"  # the implicit witness of a repository stored on `amber serve`
MAX_LISTED = 1_000_000  # names a witness listing may hold before it is refused

Proof = Callable[[int], list[bytes]]  # the consistency proof from size m to the new checkpoint


def parse_server_key(text: str) -> bytes:
    """The raw Ed25519 key of `ed25519:<base64>` (what `GET /server-key` and key.pub hold)."""
    kind, _, b64 = text.strip().partition(":")
    try:
        raw = base64.b64decode(b64, validate=True)
    except ValueError:
        raw = b""
    if kind != "ed25519" or len(raw) != 32:
        raise UsageError(f"{text!r} is not a server key (ed25519:<base64 of 32 bytes>)")
    return raw


def serving_url(storage: Storage) -> str | None:
    """`rest:URL` when `storage` is an `amber serve` repository, else None."""
    from ..storage.rest import RestStorage

    while not isinstance(storage, RestStorage) and hasattr(storage, "inner"):
        storage = storage.inner
    return storage.describe() if isinstance(storage, RestStorage) else None


def fetch_server_key(url: str, cacert: str | None) -> str:
    """The key an `amber serve` shows at `GET /server-key` (pinned on first use)."""
    from ..storage.rest import RestStorage

    ans = RestStorage(url.removeprefix("rest:"), cacert=cacert).call("GET", "/server-key", what="/server-key")
    return str(ans.json().get("public_key", ""))


def object_name(size: int, root: bytes) -> str:
    return f"{size:012d}-{root.hex()}"


def _size_of(name: str) -> int | None:
    size, dash, root = name.partition("-")
    if not (dash and len(size) == 12 and size.isdigit() and len(root) == 64):
        return None
    try:
        bytes.fromhex(root)
    except ValueError:
        return None
    return int(size)


@dataclass(frozen=True)
class Held:
    """What a witness holds: its newest checkpoints (object name, note) and what is wrong."""

    notes: list[tuple[str, bytes]]
    errors: list[str]


class StorageWitness:
    """A directory or bucket that keeps every checkpoint write-once."""

    def __init__(self, name: str, url: str, storage: Storage) -> None:
        self.name = name
        self.url = url
        self.storage = storage
        self.rest = False

    def publish(self, note: bytes, cp: cpfmt.Checkpoint, proof: Proof) -> None:
        self._put(CHECKPOINTS + object_name(cp.size, cp.root), note)

    def reset(self, note: bytes, cp: cpfmt.Checkpoint) -> None:
        """Keep the checkpoint that follows a `trust-reset` event beside the checkpoints."""
        self._put(RESETS + object_name(cp.size, cp.root), note)

    def _put(self, key: str, note: bytes) -> None:
        try:
            self.storage.put(key, note)
        except AlreadyExists:
            if self.storage.get(key, 0, cpfmt.MAX_NOTE + 1) != note:
                raise IntegrityError(f"witness {self.name}: {key} already holds another checkpoint") from None

    def newest(self, abandoned: set[str]) -> Held:
        """The checkpoints of the largest size not abandoned (more than one: the witness saw a
        fork), and every object under `checkpoints/` that is not named like a checkpoint."""
        errors, sizes = [], {}
        for n, info in enumerate(self.storage.list(CHECKPOINTS)):
            if n > MAX_LISTED:
                raise IntegrityError(f"witness {self.name}: more than {MAX_LISTED} objects under {CHECKPOINTS}")
            size = _size_of(info.key[len(CHECKPOINTS) :])
            if size is None:
                errors.append(f"witness {self.name}: {info.key}: not a checkpoint's name (<size>-<root hex>)")
            elif info.key not in abandoned:
                sizes.setdefault(size, []).append(info.key)
        if not sizes:
            return Held([], errors)
        keys = sorted(sizes[max(sizes)])
        return Held([(k, self.storage.get(k, 0, cpfmt.MAX_NOTE + 1)) for k in keys], errors)


class RestWitness:
    """An `amber serve` that cosigns each checkpoint after checking it extends the last one."""

    def __init__(
        self, name: str, url: str, server_key: bytes, state_dir: str, cacert: str | None, log_key: str
    ) -> None:
        from ..storage.rest import RestStorage

        self.name = name
        self.url = url
        self.rest = True
        self.client = RestStorage(url.removeprefix("rest:"), cacert=cacert)
        self.key = server_key
        self.signer = cpfmt.server_witness_name(server_key)
        self.state_dir = state_dir
        self.headers = {"X-Amber-Log-Key": log_key}

    def _path(self, what: str) -> str:
        return f"/{self.client.name}/witness/{what}"

    def publish(self, note: bytes, cp: cpfmt.Checkpoint, proof: Proof) -> None:
        """Ask for a cosignature; when the server last cosigned another size than this client
        remembers, it answers 409 with that size and the request is made again from it."""
        old = self._cosigned_size()
        for _ in range(3):
            lines = [f"old {old}"] + [base64.b64encode(h).decode() for h in (proof(old) if 0 < old < cp.size else [])]
            body = ("\n".join(lines) + "\n\n").encode() + note
            ans = self.client.call(
                "POST",
                self._path("add-checkpoint"),
                what=f"witness {self.name}",
                ok=(200, 409),
                content=body,
                headers=self.headers,
            )
            if ans.status_code == 200:
                return self._keep(note + ans.content, cp)
            size = ans.headers.get("x-amber-witness-size")
            if ans.headers.get("x-amber-error") != "witness-size" or size is None or not size.isdigit():
                why = ans.headers.get("x-amber-message") or ans.text
                raise IntegrityError(f"witness {self.name} refused the checkpoint of {cp.size} events: {why}")
            old = int(size)
        raise IntegrityError(f"witness {self.name}: the server's size kept changing")

    def reset(self, note: bytes, cp: cpfmt.Checkpoint) -> None:
        """Make the server cosign the history after a `trust-reset` (an admin token's right)."""
        ans = self.client.call(
            "POST", self._path("reset"), what=f"witness {self.name}", content=note, headers=self.headers
        )
        self._keep(note + ans.content, cp)

    def _keep(self, cosigned: bytes, cp: cpfmt.Checkpoint) -> None:
        """Check the cosignature and keep the cosigned note in the client state."""
        try:
            got, _time = cpfmt.verify_cosignature(cosigned, self.signer, self.key)
        except CheckpointError as e:
            raise IntegrityError(f"witness {self.name}: {e}") from None
        if got != cp:
            raise IntegrityError(f"witness {self.name} cosigned another checkpoint than the one sent")
        os.makedirs(self.state_dir, exist_ok=True)
        _write(os.path.join(self.state_dir, f"{cp.size:012d}"), cosigned)
        _write(os.path.join(self.state_dir, "cosigned"), cosigned)

    def _cosigned_size(self) -> int:
        try:
            with open(os.path.join(self.state_dir, "cosigned"), "rb") as f:
                return cpfmt.parse(f.read(cpfmt.MAX_NOTE))[0].size
        except (OSError, CheckpointError):
            return 0

    def cosignature(self, cp: cpfmt.Checkpoint) -> str | None:
        """The cosignature line this client kept for exactly `cp`, checked; None if it has none."""
        try:
            with open(os.path.join(self.state_dir, f"{cp.size:012d}"), "rb") as f:
                note = f.read(cpfmt.MAX_NOTE)
            if cpfmt.verify_cosignature(note, self.signer, self.key)[0] != cp:
                return None
        except (OSError, CheckpointError):
            return None
        mine = f"{cpfmt.DASH} {self.signer} "
        return next(line + "\n" for line in note.decode().splitlines() if line.startswith(mine))

    def newest(self, abandoned: set[str]) -> Held:
        """The checkpoint the server cosigned last, its cosignature checked against the pinned key."""
        ans = self.client.call("GET", self._path("checkpoint"), what=f"witness {self.name}", ok=(200, 404))
        if ans.status_code == 404:
            return Held([], [])
        try:
            cpfmt.verify_cosignature(ans.content, self.signer, self.key)
        except CheckpointError as e:
            return Held([], [f"witness {self.name}: {SERVER_CHECKPOINT}: {e}"])
        return Held([(SERVER_CHECKPOINT, ans.content)], [])


class TsaWitness:
    """A time-stamping authority: it keeps nothing itself; each checkpoint note it timestamps
    (RFC 3161) is checked against its pinned certificate and kept in the repository."""

    def __init__(self, name: str, url: str, chain: tsa.Chain, storage: Storage, cacert: str | None) -> None:
        self.name = name
        self.url = url
        self.rest = False
        self.chain = chain
        self.storage = storage
        self.cacert = cacert

    def publish(self, note: bytes, cp: cpfmt.Checkpoint, proof: Proof | None = None) -> None:
        token, _chain = tsa.stamp(self.url.removeprefix("tsa:"), note, self.chain, self.cacert, f"TSA {self.name}")
        timestamps.keep(self.storage, self.name, cp.size, token, note, self.chain)

    def reset(self, note: bytes, cp: cpfmt.Checkpoint) -> None:
        """The checkpoint that follows a `trust-reset` is timestamped like any other."""
        self.publish(note, cp)

    def newest(self, abandoned: set[str]) -> Held:
        return Held([], [])  # no checkpoint of its own to compare: its tokens are checked in the log


Witness = StorageWitness | RestWitness | TsaWitness


def tsa_chain(url: str, given: bytes | None, probe: bytes, cacert: str | None) -> str:
    """The certificate chain to pin for the TSA at `tsa:URL` (PEM): the one `given`, which a
    token of `probe` from it must verify under, else the one it sends (trust on first use)."""
    chain = tsa.load_chain(given, "--tsa-cert") if given is not None else None
    _token, chain = tsa.stamp(url.removeprefix("tsa:"), probe, chain, cacert, "--tsa")
    return tsa.chain_pem(chain)


def open_witness(
    doc: dict, repository_id: str, log_key: str, cacert: str | None = None, storage: Storage | None = None
) -> Witness:
    """The witness a `witness` event's details describe (`log_key`: the log's verifier key,
    which an `amber serve` pins on first use; `storage`: the repository's, where a TSA's
    tokens are kept)."""
    name, url = doc["name"], doc["url"]
    if timestamps.is_tsa(doc):
        if storage is None:
            raise UsageError(f"TSA witness {name}: its tokens need the repository's storage")
        chain = tsa.load_chain(str(doc.get("tsa_cert") or ""), f"TSA witness {name}: its pinned certificate")
        return TsaWitness(name, url, chain, storage, cacert)
    if url.startswith("rest:"):
        key = parse_server_key(str(doc.get("server_key") or ""))
        state = client_state.state_file(repository_id, os.path.join("witness", name))
        return RestWitness(name, url, key, state, cacert, log_key)
    options = {"s3_endpoint": doc["s3_endpoint"]} if doc.get("s3_endpoint") else {}
    return StorageWitness(name, url, open_storage(url, create=url.startswith("local:"), options=options))


def target(directory: str | None, s3: str | None, url: str | None, tsa_url: str | None = None) -> str:
    """The witness URL of `--dir`, `--s3`, `--url` or `--tsa` (exactly one)."""
    given = [v for v in (directory, s3, url, tsa_url) if v]
    if len(given) != 1:
        raise UsageError(
            "give exactly one of --dir PATH, --s3 BUCKET[/PREFIX], --url rest:https://HOST:PORT/NAME or --tsa URL"
        )
    if tsa_url:
        if not tsa_url.startswith(("https://", "http://")):
            raise UsageError(f"--tsa {tsa_url}: a time-stamping authority's URL is https://HOST[:PORT]/PATH")
        return "tsa:" + tsa_url
    if directory:
        return "local:" + os.path.abspath(os.path.expanduser(directory))
    if s3:
        return "s3:" + s3.removeprefix("s3:")
    if not url.startswith("rest:https://") and not url.startswith("rest:http://"):
        raise UsageError(f"--url {url}: a witness URL is rest:https://HOST:PORT/NAME")
    return url


# -- the client's mirror ------------------------------------------------------------------


def mirror_path(repository_id: str) -> str:
    return client_state.state_file(repository_id, "witnesses.json")


def mirrored(repository_id: str) -> dict[str, dict]:
    try:
        with open(mirror_path(repository_id), encoding="utf-8") as f:
            doc = json.load(f)
        return {k: v for k, v in doc.items() if isinstance(v, dict) and isinstance(v.get("url"), str)}
    except (OSError, ValueError, AttributeError):
        return {}


def mirror(repository_id: str, witnesses: dict[str, dict]) -> None:
    """Keep the witnesses known to this client: a rolled-back log must not make it forget one."""
    known = mirrored(repository_id)
    if all(known.get(k) == v for k, v in witnesses.items()):
        return
    known.update(witnesses)
    path = mirror_path(repository_id)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write(path, json.dumps(known, sort_keys=True).encode())
    except OSError as e:
        raise AmberError(f"cannot keep the witness list in {path}: {e}") from None


def _write(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
