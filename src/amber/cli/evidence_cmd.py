"""`amber evidence export|verify`: bundles that prove files offline."""

import os

import click

from ..errors import IntegrityError, SignerUnverified
from ..repository import verify_bundle
from .options import command, group, json_option, snapshot_filter
from .output import Output, warn


@command("export")
@click.argument("snapshot")
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="the bundle (.zip) to write")
@snapshot_filter
def evidence_export(session, snapshot, paths, output, chosen):
    """Write the files at PATHS of SNAPSHOT, with their proofs, to one zip file."""
    r = session.open()
    snap = r.find_snapshot(snapshot, chosen)
    m = r.export_evidence(snap, list(paths), output)
    for w in getattr(m, "warnings", []):
        warn(f"{w} (run `amber audit verify`)")
    return Output(
        text=[
            f"wrote {output}: {len(m['files'])} file(s) of snapshot {snap.short_id}, event "
            f"{m['log']['seq']} of a log of {m['log']['tree_size']}",
            f"verify with: amber evidence verify {output} --public-key '{r.audit.vkey()}'",
        ]
    )


@command("verify")
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True))
@click.option(
    "--public-key",
    "public_key",
    metavar="KEY",
    help="the log's verifier key (or a file holding it), obtained independently of the bundle",
)
@click.option(
    "--witness-key",
    "witness_keys",
    multiple=True,
    metavar="ed25519:BASE64",
    help="require the checkpoint to be cosigned by this `amber serve` witness key (repeatable)",
)
@click.option(
    "--tsa-cert",
    "tsa_certs",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="require RFC 3161 timestamps of the checkpoint signed by this TSA certificate (PEM, then its issuers; "
    "repeatable)",
)
@click.option(
    "--source-public-key",
    metavar="KEY",
    help="for a copied snapshot: the original repository's log key (or a file holding it)",
)
@json_option
def evidence_verify(session, bundle, public_key, witness_keys, tsa_certs, source_public_key, as_json):
    """Check a bundle offline: no repository and no password needed."""
    if public_key and os.path.isfile(public_key):
        with open(public_key, encoding="utf-8") as f:
            public_key = f.read().strip()
    if source_public_key and os.path.isfile(source_public_key):
        with open(source_public_key, encoding="utf-8") as f:
            source_public_key = f.read().strip()
    pems = []
    for path in tsa_certs:
        with open(path, "rb") as f:
            pems.append(f.read(1 << 20))
    rep = verify_bundle(bundle, public_key, tuple(witness_keys), tuple(pems), source_public_key)
    s = rep.manifest.get("snapshot")
    s = s if isinstance(s, dict) else {}
    unverified = rep.ok and not rep.signer_verified
    from_bundle = (
        "the public key was taken from the bundle itself; pass --public-key with the repository's key "
        "obtained independently for the proof to mean anything"
    )
    # the copy event names the original's key, and this log (checked with --public-key) vouches for it
    source_note = (
        "the original repository's key is the one the copy event names; pass --source-public-key with its "
        "key obtained independently to check it too"
        if rep.ok and rep.copy_of and not rep.source_signer_verified
        else None
    )

    if source_note:
        click.echo(f"note: {source_note}", err=True)

    def text():
        if s:
            click.echo(f"snapshot {str(s.get('id'))[:8]} of {s.get('time')} on {s.get('hostname')}")
        for i, (ok, what) in enumerate(rep.checks):
            why = rep.problem(i)
            click.echo(f"  {'ok  ' if ok else 'FAIL'}  {what}" + (f" ({why})" if why and not ok else ""))
        if any(not t["verified"] for t in rep.timestamps):
            click.echo(
                "note: the timestamps were not checked against a trusted TSA certificate; "
                "pass --tsa-cert FILE with the TSA's certificate obtained independently",
                err=True,
            )
        if unverified:
            click.echo("evidence consistent, but its signer is unverified")
        elif rep.ok:
            click.echo("evidence verified")
        elif rep.key_from_bundle:
            click.echo(f"note: {from_bundle}", err=True)

    failed: Exception | None = None
    if not rep.ok:
        failed = IntegrityError("evidence does not verify:\n  " + "\n  ".join(rep.failures()))
    elif unverified:
        failed = SignerUnverified(f"evidence consistent, but its signer is unverified: {from_bundle}")
    return Output(
        {
            "ok": rep.ok,
            "signer_verified": rep.signer_verified,
            "key_from_bundle": rep.key_from_bundle,
            "snapshot_id": s.get("id"),
            "copy_of": rep.copy_of or None,
            "source_signer_verified": rep.source_signer_verified,
            "checks": [
                {"ok": ok, "check": what, **({"problem": rep.problem(i)} if rep.problem(i) else {})}
                for i, (ok, what) in enumerate(rep.checks)
            ],
            "snapshot": rep.manifest.get("snapshot"),
            "timestamps": rep.timestamps,
            "files": [
                {k: f.get(k) for k in ("path", "size", "sha256", "mode", "mtime_ns")}
                for f in rep.manifest.get("files", [])
                if isinstance(f, dict)
            ],
        },
        text,
        failed,
    )


evidence = group(
    "evidence",
    "Export and verify evidence bundles that prove files came from a snapshot.",
    [evidence_export, evidence_verify],
)
