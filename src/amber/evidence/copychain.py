"""The proof a copied snapshot carries back to its original (docs/AUDIT-LOG.md, the `copy` event).

`amber copy` puts into the destination's `copy` event the source repository's
`snapshot` event (its exact leaf bytes), the event's inclusion proof and the
signed checkpoint the proof is against, and the source log's public key.
`verify_copy_proof` checks that material with nothing but the material itself
(and, when given, a trusted key for the source): the checkpoint's signature,
the event's place in the source log, and that the event is the `snapshot`
event of the snapshot the copy names.
"""

from __future__ import annotations

import base64
import binascii

from ..audit import checkpoint as cpfmt
from ..audit import merkle
from ..audit.entry import parse_entry
from ..errors import CheckpointError, IntegrityError, ProofError
from ..repo.snapshots import Snapshot
from .export import EvidenceSource, log_proof

PROOF_FIELDS = (
    "source_repository",
    "source_snapshot",
    "source_event",
    "source_seq",
    "source_tree_size",
    "source_inclusion_proof",
    "source_checkpoint",
    "source_public_key",
)


def source_proof(repo: EvidenceSource, snap: Snapshot) -> dict:
    """The proof material of `snap` in its own repository's log, for a `copy` event: raises
    IntegrityError when the source's log holds no verifiable proof of it."""
    ev, raw_event, note, cp, proof, _warnings = log_proof(repo, snap)
    out = {
        "source_repository": repo.id,
        "source_snapshot": snap.id,
        "source_event": raw_event.decode("utf-8"),
        "source_seq": ev["seq"],
        "source_tree_size": cp.size,
        "source_inclusion_proof": [base64.b64encode(p).decode() for p in proof],
        "source_checkpoint": note.decode("utf-8"),
        "source_public_key": repo.audit.vkey(),
    }
    verify_copy_proof(out)  # what the destination records must verify on its own
    return out


def verify_copy_proof(details: dict, public_key: str | None = None) -> dict:
    """The source's `snapshot` event the copy proof in `details` proves, after checking the
    checkpoint's signature (by `public_key` when given, which must then be the key the proof
    names), the event's inclusion in the checkpoint's tree and that it is the `snapshot`
    event of `source_snapshot` in `source_repository`. IntegrityError naming what fails."""
    what = f"copy proof of snapshot {str(details.get('source_snapshot'))[:16]}"
    try:
        missing = [k for k in PROOF_FIELDS if k not in details]
        if missing:
            raise IntegrityError(f"{what}: no {', '.join(missing)}")
        named_key = details["source_public_key"]
        if public_key is not None and public_key.strip() != named_key:
            raise IntegrityError(f"{what}: signed by {named_key}, not by the key given")
        origin, public = cpfmt.parse_verifier_key(named_key)
        if origin != f"amber/{details['source_repository']}":
            raise IntegrityError(f"{what}: its key is named {origin!r}, not the source repository's log")
        cp = cpfmt.verify(details["source_checkpoint"].encode("utf-8"), origin, public)
        seq, size = details["source_seq"], details["source_tree_size"]
        if type(seq) is not int or type(size) is not int or cp.size != size or not 0 <= seq < size:
            raise IntegrityError(f"{what}: event {seq!r} is not inside the checkpoint's {cp.size} entries")
        raw = details["source_event"].encode("utf-8")
        proof = [base64.b64decode(p, validate=True) for p in details["source_inclusion_proof"]]
        merkle.verify_inclusion(merkle.leaf_hash(raw), seq, size, proof, cp.root)
        ev = parse_entry(raw, seq, f"{what}: source event")
    except (CheckpointError, ProofError) as e:
        raise IntegrityError(f"{what}: {e}") from None
    except (AttributeError, TypeError, ValueError, binascii.Error) as e:
        raise IntegrityError(f"{what}: malformed ({e})") from None
    if ev.get("type") != "snapshot" or ev.get("snapshot") != details["source_snapshot"]:
        raise IntegrityError(f"{what}: the source event is not the snapshot event of that snapshot")
    return ev


def copy_proof_problems(entries: list[tuple[dict, bytes]]) -> list[str]:
    """Every `copy` event among `entries` whose proof of the original does not verify."""
    out = []
    for ev, _raw in entries:
        if ev.get("type") != "copy":
            continue
        try:
            verify_copy_proof(ev.get("details") or {})
        except IntegrityError as e:
            out.append(f"log entry {ev.get('seq')} (copy {str(ev.get('snapshot'))[:8]}): {e}")
    return out
