"""Evidence bundles: files from a snapshot, with everything needed to prove offline,
without the password, that they are what was backed up.

A bundle is a zip file:

    manifest.json        what is claimed (see docs/EVIDENCE.md)
    files/<n>            the bytes of the n-th file in the manifest
    trees/<digest>.json  the canonical tree of every folder on a Merkle path
    event.json           the snapshot's audit-log event, as its exact canonical bytes
    checkpoint.txt       a signed checkpoint of the log that includes the event
    public-key.txt       the log's Ed25519 verifier key
    timestamps/<tsa>.tsr an RFC 3161 timestamp of the checkpoint by each TSA witness, if any

`verify_bundle` trusts nothing in the bundle but the public key given to it
(falling back to the bundle's own key, which it says it did).
"""

from .export import FORMAT, EvidenceSource, Manifest, export
from .verify import EvidenceReport, verify_bundle

__all__ = ["FORMAT", "EvidenceReport", "EvidenceSource", "Manifest", "export", "verify_bundle"]
